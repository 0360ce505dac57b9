"""Refunding a deposit: on the provider that holds it, never more than was captured.

1. the refund is reserved in the ledger under the payment's lock: the amount left is checked
   there, and the refund row is also the Idempotency-Key's record (`gateway.ledger.refunds`);
2. it is sent to the payment's own provider, never another;
3. a refusal that certainly refunded nothing releases the reservation (and the key); an
   answer that never came leaves it `pending`, to be settled by the provider's webhook,
   and is asked again with the same key only where the provider dedupes refunds
   (`AdapterSpec.refunds_idempotent`); Trustly's are never sent twice;
4. the answer is recorded (and, when it completes the payment's refunds, the payment becomes
   `refunded`) in one transaction, and what changed is announced.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from adapters.base import RefundRequest, RefundResult
from gateway.ledger import refunds as ledger_refunds
from gateway.ledger.database import LedgerUnavailable, Tx
from gateway.ledger.payments import PaymentRecord
from gateway.ledger.refunds import (
    LostRefund,
    RefundAsk,
    RefundConflict,
    RefundRecord,
    RefundRefused,
    RefundReplay,
    Reserved,
)
from gateway.obs.tracing import outgoing_headers
from gateway.payments import ids as payment_ids
from gateway.payments.announcements import Announcer, derived_event_id
from gateway.payments.refund_webhooks import RefundNews, announced, full_refund, write
from gateway.payments.sending import in_progress, store_unavailable
from gateway.payments.status import advance_refund
from gateway.problems import ApiError
from gateway.upstream.calls import AttemptFailed, call_provider
from policies.failover import Step, payment_step
from policies.idempotency import fingerprint

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway, Runtime
    from gateway.upstream.providers import ProviderState

log = logging.getLogger("gateway.payments")
WAIT_S = 10.0  # a double-clicked refund waits this long for the first request's answer
POLL_S = 0.05


def _not_found(payment_id: str) -> ApiError:
    return ApiError("not_found", f"no payment '{payment_id}'")


async def owned_payment(gw: Gateway, payment_id: str, player: str | None) -> PaymentRecord:
    """The payment, if it exists and the request's player (when scoped) owns it; else 404."""
    try:
        payment = await gw.ledger.payment(payment_id)
    except LedgerUnavailable as exc:
        raise store_unavailable(exc) from None
    if payment is None or (player is not None and payment.player_id != player):
        # Another player's payment does not exist for this one.
        raise _not_found(payment_id)
    return payment


async def get_refund(
    gw: Gateway, payment_id: str, refund_id: str, player: str | None
) -> dict[str, Any]:
    await owned_payment(gw, payment_id, player)
    try:
        refund = await gw.ledger.refund(refund_id)
    except LedgerUnavailable as exc:
        raise store_unavailable(exc) from None
    if refund is None or refund.payment_id != payment_id:
        raise ApiError("not_found", f"no refund '{refund_id}' of payment '{payment_id}'")
    return refund.to_api()


async def create_refund(
    gw: Gateway,
    rt: Runtime,
    client_id: str,
    key: str,
    payment_id: str,
    body: dict[str, Any],
    player: str | None,
    announcer: Announcer,
) -> tuple[int, dict[str, Any], bool]:
    """(HTTP status, Refund, replayed)."""
    await owned_payment(gw, payment_id, player)
    ask = RefundAsk(
        refund_id="rf_" + secrets.token_hex(12),
        payment_id=payment_id,
        client_id=client_id,
        idem_key=key,
        fingerprint=fingerprint(client_id, {"payment_id": payment_id, **body}),
        amount=body.get("amount"),
        currency=body.get("currency"),
        reason=body.get("reason"),
        token=secrets.token_hex(16),
    )
    held = await _reserve(gw, ask)
    if isinstance(held, RefundReplay):
        gw.metrics.idempotent_replays.inc()
        replayed = held.refund
        # Still waiting on an answer that never came: 202 until a webhook tells.
        unknown = replayed.state == "unknown" and replayed.status == "pending"
        return 202 if unknown else 201, replayed.to_api(), True
    refund, payment = held.refund, held.payment
    state = rt.providers.get(refund.provider)
    spec = state.config.spec if state is not None else None
    if held.resumed and (spec is None or not spec.refunds_idempotent):
        # The request that held it stopped after it may have sent it: never send it twice.
        stored = await _record(gw, refund, None, 202, announcer)
        return 202, stored.to_api(), True
    if state is None or spec is None or not spec.refunds or not payment.provider_reference:
        await _release(gw, refund)
        raise _cannot_refund(refund, state is None)
    status, result = await _send(gw, rt, state, payment, refund)
    stored = await _record(gw, refund, result, status, announcer)
    return status, stored.to_api(), held.resumed


async def _reserve(gw: Gateway, ask: RefundAsk) -> Reserved | RefundReplay:
    deadline = time.monotonic() + WAIT_S
    try:
        while True:
            outcome = await gw.ledger.reserve_refund(ask)
            if isinstance(outcome, Reserved | RefundReplay):
                return outcome
            if isinstance(outcome, RefundRefused):
                raise ApiError(outcome.code, outcome.detail)
            assert isinstance(outcome, RefundConflict)
            if outcome.reason == "different_body":
                raise ApiError(
                    "idempotency_conflict",
                    "this Idempotency-Key was used with a different request",
                )
            if time.monotonic() >= deadline:
                raise in_progress()
            await asyncio.sleep(POLL_S)
    except LedgerUnavailable as exc:
        raise store_unavailable(exc) from None


async def _send(
    gw: Gateway, rt: Runtime, state: ProviderState, payment: PaymentRecord, refund: RefundRecord
) -> tuple[int, RefundResult | None]:
    """(201, the answer), or (202, None) when it may have been refunded and nobody can say;
    raises the client's error after releasing a refund that certainly refunded nothing."""
    assert payment.provider_reference is not None
    adapter = state.adapter
    request = RefundRequest(
        payment_reference=payment.provider_reference,
        amount=refund.amount,
        currency=refund.currency,
        reference=refund.refund_id,
        idempotency_key=payment_ids.provider_idempotency_key(
            refund.client_id, f"refund\0{refund.idem_key}", refund.provider
        ),
        reason=refund.reason,
    )
    idempotent = state.config.spec.refunds_idempotent
    retries_left = rt.config.payment_retries if idempotent else 0
    upstream = adapter.refund_request(request)

    def parse(response: Any) -> RefundResult:
        result: RefundResult = adapter.parse_refund(response, request)
        return result

    while True:
        try:
            result = await call_provider(gw, state, "payments.refund", upstream, parse)
        except AttemptFailed as failed:
            step = payment_step(
                succeeded=False,
                maybe_delivered=failed.maybe_delivered,
                failover_safe=failed.failover_safe,
                retry_same=failed.retry_same and idempotent,
                retries_left=retries_left,
            )
            if step is Step.RETRY_SAME:
                retries_left -= 1
                continue
            if step is Step.UNKNOWN:
                gw.metrics.refunds.labels(refund.provider, "unknown").inc()
                return 202, None
            gw.metrics.refunds.labels(refund.provider, "refused").inc()
            await _release(gw, refund)
            raise _refused(failed) from None
        gw.metrics.refunds.labels(refund.provider, result.status).inc()
        return 201, result


async def _release(gw: Gateway, refund: RefundRecord) -> None:
    try:
        await gw.ledger.release_refund(refund.refund_id, refund.token)
    except (LedgerUnavailable, LostRefund) as exc:
        # It stays reserved (pending): that can only refuse a later refund, never overpay.
        log.error("refund not released", extra={"refund_id": refund.refund_id,
                                                 "error": str(exc)})


async def _record(
    gw: Gateway,
    refund: RefundRecord,
    result: RefundResult | None,
    status: int,
    announcer: Announcer,
) -> RefundRecord:
    """Record the answer (merged into what a webhook may have told first) and announce what
    changed; a ledger that fails now must not lose the client's answer."""
    now = gw.ledger.clock()
    source = f"refund:{refund.provider}"

    def change(current: RefundRecord) -> RefundRecord:
        if result is None:
            return current.replace(state="unknown", http_status=status)
        return current.replace(
            state="sent",
            http_status=status,
            status=advance_refund(current.status, result.status),
            provider_reference=current.provider_reference or result.provider_reference,
        )

    def settle(tx: Tx) -> tuple[RefundRecord, RefundNews]:
        before = ledger_refunds.get_refund(tx, refund.refund_id, lock=True)
        after = ledger_refunds.record_answer(tx, refund.refund_id, refund.token, change, now)
        payment = None
        if after.status == "succeeded" and (before is None or before.status != "succeeded"):
            payment = full_refund(tx, refund.payment_id, source, now)
        moved = before is not None and before.status != after.status
        news = RefundNews(after if moved else None, payment)
        event_id = derived_event_id(refund.refund_id, f"answer:{after.status}")
        write(tx, event_id, news, deliver, now, trace)
        return after, news

    deliver = announcer.delivers()
    trace = outgoing_headers()  # the backend's delivery carries this request's trace

    try:
        stored, news = await gw.ledger.run(settle)
    except (LedgerUnavailable, LostRefund) as exc:
        log.error("refund answered but not recorded",
                  extra={"refund_id": refund.refund_id, "error": str(exc)})
        return change(refund)
    await announced(gw, news, announcer)
    return stored


def _cannot_refund(refund: RefundRecord, gone: bool) -> ApiError:
    if gone:
        return ApiError(
            "no_provider_available",
            f"the payment's provider '{refund.provider}' is not configured; a refund can only "
            "go to the provider that holds the payment",
            headers={"Retry-After": "5"},
        )
    return ApiError(
        "payment_not_refundable",
        f"'{refund.provider}' cannot refund this payment through the gateway",
        provider=refund.provider,
    )


def _refused(failed: AttemptFailed) -> ApiError:
    if failed.outcome == "rejected" and failed.status != 429:
        return ApiError(
            "provider_rejected", failed.public_detail, provider=failed.provider,
            provider_code=failed.provider_code,
        )
    if failed.skipped or failed.outcome in ("refused", "timeout", "rejected"):
        retry = max(1, round(failed.retry_after_s or 1))
        return ApiError(
            "no_provider_available", f"the refund was not sent: {failed.public_detail}",
            headers={"Retry-After": str(retry)}, extra={"retry_after_s": retry},
        )
    return ApiError(
        "provider_unavailable", failed.public_detail, provider=failed.provider,
        provider_code=failed.provider_code,
    )
