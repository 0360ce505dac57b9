"""One verified wallet callback, settled: the ledger, the casino backend, the ledger again.

A balance look-up goes straight to the backend. A bet, win or rollback is recorded first
(`gateway.ledger.wallet.begin`: one write, which also decides whether it is a retry to
answer from the ledger, a refusal, or a call to make), then sent, then its answer is
recorded (`finish`: one write, made while the provider is answered). Nothing else touches
the database on the way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.wallet import BACKEND_ERRORS, WalletCall, WalletOutcome, WalletRequest
from gateway.config.wallet import WalletSettings
from gateway.ledger.database import LedgerUnavailable
from gateway.ledger.ledger import Ledger
from gateway.ledger.wallet import Proceed, Refused, Stored
from gateway.obs.metrics import Metrics
from gateway.wallet.backend import BackendAnswer, call_backend

log = logging.getLogger("gateway.wallet")
# Answers being recorded after their callback was answered (kept referenced until done).

@dataclass(frozen=True, slots=True)
class WalletContext:
    """What settling a callback needs of the running gateway."""

    provider: str
    settings: WalletSettings
    ledger: Ledger
    session: aiohttp.ClientSession
    metrics: Metrics
    game_id: Callable[[str | None], str | None]  # provider's game code -> canonical id


async def settle(ctx: WalletContext, request: WalletRequest) -> WalletOutcome:
    """The outcome of every call of the request; the first that is not `ok` wins."""
    outcome = WalletOutcome("unavailable")
    for call in request.calls:
        outcome = await _settle_one(ctx, call)
        if not outcome.ok:
            return outcome
    return outcome


async def _settle_one(ctx: WalletContext, call: WalletCall) -> WalletOutcome:
    if call.operation == "balance":
        answer = await _send(ctx, "balance", _common(ctx, call))
        return WalletOutcome(answer.outcome, answer.balance, answer.currency or call.currency)
    assert call.transaction_id is not None
    gateway_id = f"{ctx.provider}:{call.transaction_id}"
    game_id = ctx.game_id(call.game_code)
    try:
        decision = await ctx.ledger.wallet_begin(ctx.provider, call, game_id)
    except LedgerUnavailable as exc:
        log.error(
            "wallet transaction not recorded: the ledger is unreachable",
            extra={"provider": ctx.provider, "error": str(exc)},
        )
        return WalletOutcome("unavailable")
    if isinstance(decision, Stored):
        ctx.metrics.wallet_duplicates.labels(ctx.provider).inc()
        return WalletOutcome(
            decision.outcome,  # type: ignore[arg-type]  # written from an Outcome
            decision.balance,
            decision.currency,
            gateway_id,
        )
    if isinstance(decision, Refused):
        log.info(
            "wallet transaction refused",
            extra={"provider": ctx.provider, "outcome": decision.outcome},
        )
        return WalletOutcome(decision.outcome, None, call.currency)  # type: ignore[arg-type]
    answer = await _backend_call(ctx, call, decision, game_id)
    if answer.outcome == "invalid_session" and call.operation != "debit":
        # A win or rollback must never be refused for its token (the aggregator would
        # lose the player's money): a backend that does is answered as unavailable, so
        # the aggregator sends it again.
        log.error(
            "the wallet backend refused a %s for its session token",
            call.operation,
            extra={"provider": ctx.provider},
        )
        answer = BackendAnswer("unavailable")
    # The backend's own errors refuse it for good (the answer is replayed to retries);
    # anything else leaves it unknown.
    state = (
        "done"
        if answer.outcome == "ok"
        else "refused" if answer.outcome in BACKEND_ERRORS else "unknown"
    )
    if ctx.ledger.in_order:
        _record_later(ctx, call.transaction_id, state, answer)
    else:
        # PostgreSQL runs transactions side by side: a retry could overtake an unwaited
        # write and reach the backend again (which is idempotent, but the ledger promises
        # to answer retries itself).
        await _record(ctx, call.transaction_id, state, answer)
    return WalletOutcome(
        answer.outcome, answer.balance, answer.currency or call.currency, gateway_id
    )


def _record_later(
    ctx: WalletContext, transaction_id: str, state: str, answer: BackendAnswer
) -> None:
    """Record the backend's answer while the provider is answered, not before.

    Waiting for it would put a second durable commit on every bet's path, and nothing
    depends on it: until it is written the transaction reads as pending, and a retry of a
    pending transaction asks the backend again, which answers from its own idempotency on
    the transaction id. Only where the ledger runs transactions in order (SQLite's one
    thread): the write is then queued ahead of anything a later request asks of it, so a
    retry still finds it.
    """
    ctx.ledger.write_soon(_record(ctx, transaction_id, state, answer))


async def _record(
    ctx: WalletContext, transaction_id: str, state: str, answer: BackendAnswer
) -> None:
    try:
        await ctx.ledger.wallet_finish(
            ctx.provider, transaction_id, state, answer.outcome, answer.balance
        )
    except LedgerUnavailable as exc:
        log.error(
            "wallet answer not recorded: the ledger is unreachable; a retry asks the backend again",
            extra={"provider": ctx.provider, "error": str(exc)},
        )


async def _backend_call(
    ctx: WalletContext, call: WalletCall, decision: Proceed, game_id: str | None
) -> BackendAnswer:
    payload = _common(ctx, call)
    if not decision.forward:
        # Nothing to reverse: the backend is only asked for the balance to answer with.
        return await _send(ctx, "balance", payload)
    payload["transaction_id"] = f"{ctx.provider}:{call.transaction_id}"
    reference = (
        f"{ctx.provider}:{call.reference_transaction_id}" if call.reference_transaction_id else None
    )
    payload["reference_transaction_id"] = reference
    if call.operation == "rollback":
        payload["amount"] = decision.amount
        return await _send(ctx, "rollback", payload)
    payload.update(
        amount=call.amount,
        round_id=call.round_id,
        round_closed=call.round_closed,
        game_id=game_id,
        is_free=call.is_free,
    )
    return await _send(ctx, call.operation, payload)


def _common(ctx: WalletContext, call: WalletCall) -> dict[str, Any]:
    return {
        "player_id": call.player_id,
        "currency": call.currency,
        "provider": ctx.provider,
        "session_token": call.session_token,
        "request_id": call.request_id,
    }


async def _send(ctx: WalletContext, operation: str, payload: dict[str, Any]) -> BackendAnswer:
    return await call_backend(ctx.session, ctx.settings, ctx.metrics, operation, payload)
