"""Creating a payment: idempotent, with double-charge-safe failover, recorded in the ledger.

The order of things is what makes a double charge impossible:

1. the key is claimed in the ledger (one holder per key, under a fence token);
2. before each provider is sent anything, the ledger durably records that this claim now
   targets that provider; if that write fails or the claim was lost, nothing is sent;
3. the next provider is tried only after an attempt that certainly took no money
   (`policies.failover`); an outcome that may have taken money ends in 202 `processing`
   with that provider as the owner, and a replay of the key asks that provider only;
4. the answer and the payment are recorded in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from adapters.base import PaymentRequest, PaymentResult, ProviderError
from gateway.ledger.database import LedgerUnavailable
from gateway.ledger.payments import PaymentRecord
from gateway.payments import ids as payment_ids
from gateway.payments.records import Attempt, action_for, new_record
from gateway.payments.status import advance
from gateway.problems import ApiError
from gateway.upstream.calls import AttemptFailed, call_provider
from gateway.upstream.selection import Selection, no_provider
from policies.failover import Step, payment_step
from policies.idempotency import (
    Claimed,
    ClaimRecord,
    LostClaim,
    Replay,
    Verdict,
    fingerprint,
    judge,
)

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway, Runtime
    from gateway.upstream.providers import ProviderState

log = logging.getLogger("gateway.payments")
WAIT_S = 10.0  # a double-click waits this long for the first request's answer
POLL_S = 0.05


class _Refused(Exception):
    """No provider may hold the payment: the key is freed and the client gets `error`."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.detail)
        self.error = error


async def create(
    gw: Gateway, rt: Runtime, client_id: str, idempotency_key: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any], bool]:
    """(HTTP status, Payment, replayed)."""
    fp = fingerprint(client_id, body)
    # Chosen before the claim, so the claim itself names the provider asked first: one
    # ledger write fewer on every payment.
    selection = gw.selection(rt, "payments.create")
    candidates, unable = _able(gw, rt, selection.candidates, body)
    first = candidates[0] if candidates else None
    claim = await _claim(gw, client_id, idempotency_key, fp, first)
    if isinstance(claim, Replay):
        record = claim.record
        if record.unknown and record.owner:
            return await _resolve_unknown(gw, rt, client_id, idempotency_key, body, record)
        gw.metrics.idempotent_replays.inc()
        return int(record.http_status or 200), record.answer, True
    if claim.owner is not None:
        return await _resolve_orphan(gw, rt, claim, body)
    attempts: list[Attempt] = []
    try:
        status, payment, owner = await _attempt_all(
            gw, rt, claim, body, attempts, selection, candidates, unable
        )
    except _Refused as refused:
        try:
            await gw.ledger.abandon(claim, [a.to_dict() for a in attempts])
        except (LedgerUnavailable, LostClaim) as exc:
            # The claim lapses after its lease; its owner (if any) refused for certain.
            log.error("idempotency claim not released", extra={"error": str(exc)})
        raise refused.error from None
    await _finish(gw, claim, status, payment, owner=owner, unknown=status == 202)
    return status, payment.to_api(), False


# ---- the claim -------------------------------------------------------------------------


async def _claim(
    gw: Gateway, client_id: str, key: str, fp: str, first: str | None
) -> Claimed | Replay:
    """Claim the key, or the answer to replay; a request arriving while another holds the
    key waits for it (up to WAIT_S), so a double-clicked deposit gets the first answer."""
    deadline = time.monotonic() + WAIT_S
    lease_s = gw.ledger.settings.claim_lease_s
    try:
        while True:
            outcome = await gw.ledger.claim(client_id, key, fp, first)
            if isinstance(outcome, Claimed | Replay):
                return outcome
            if outcome.reason == "different_body":
                raise ApiError(
                    "idempotency_conflict",
                    "this Idempotency-Key was used with a different request",
                )
            # In progress elsewhere: watch it with reads, claim again only when it changed.
            while True:
                if time.monotonic() >= deadline:
                    raise _in_progress()
                await asyncio.sleep(POLL_S)
                current = await gw.ledger.claim_record(client_id, key)
                if judge(current, fp, time.time(), lease_s=lease_s) is not Verdict.WAIT:
                    break
    except LedgerUnavailable as exc:
        raise _store_unavailable(exc) from None


def _store_unavailable(exc: Exception) -> ApiError:
    log.error("payment refused: the ledger is unavailable", extra={"error": str(exc)})
    return ApiError(
        "idempotency_store_unavailable",
        "payments are paused while the ledger is unreachable; retry shortly",
        headers={"Retry-After": "1"},
    )


def _in_progress() -> ApiError:
    return ApiError(
        "idempotency_conflict",
        "a request with this Idempotency-Key is still in progress; retry shortly",
        headers={"Retry-After": "1"},
    )


async def _finish(
    gw: Gateway,
    held: Claimed,
    status: int,
    payment: PaymentRecord,
    *,
    owner: str | None,
    unknown: bool,
) -> None:
    """Record the answer; a ledger that fails now must not lose the client's answer.

    The claim then still names its owner: after its lease a replay asks that provider again
    with the same provider key, which hands back this same payment.
    """
    try:
        await gw.ledger.finish(
            held, status, payment.to_api(), payment, owner=owner, unknown=unknown
        )
    except LedgerUnavailable as exc:
        log.error(
            "payment answered but not recorded",
            extra={"payment_id": payment.payment_id, "error": str(exc)},
        )
    except LostClaim:
        log.warning("payment not recorded: another request holds the key now")


# ---- sending -------------------------------------------------------------------------


def _payment_request(held: Claimed, provider: str, body: dict[str, Any]) -> PaymentRequest:
    return PaymentRequest(
        type=body["type"],
        amount=body["amount"],
        currency=body["currency"],
        player_id=body["player_id"],
        method_type=body["method"]["type"],
        return_url=body.get("return_url"),
        metadata=body.get("metadata", {}),
        reference=payment_ids.gateway_reference(held.client_id, held.key),
        idempotency_key=payment_ids.provider_idempotency_key(held.client_id, held.key, provider),
    )


async def _stamp(gw: Gateway, held: Claimed, provider: str) -> None:
    """The ledger says where the money is going before it goes; else nothing is sent."""
    try:
        await gw.ledger.stamp_owner(held, provider)
    except LedgerUnavailable as exc:
        raise _Refused(_store_unavailable(exc)) from None
    except LostClaim:
        raise _Refused(_in_progress()) from None


async def _attempt_all(
    gw: Gateway,
    rt: Runtime,
    held: Claimed,
    body: dict[str, Any],
    attempts: list[Attempt],
    selection: Selection,
    candidates: tuple[str, ...],
    unable: list[tuple[str, str]],
) -> tuple[int, PaymentRecord, str | None]:
    if not selection.candidates:
        raise _Refused(no_provider("payments.create", selection))
    if not candidates:
        raise _Refused(_nobody_takes(body, unable))
    failures: list[AttemptFailed] = []
    secret = rt.config.payment_id_secret
    for i, name in enumerate(candidates):
        state = rt.providers[name]
        request = _payment_request(held, name, body)
        retries_left = rt.config.payment_retries
        owned = False  # may an earlier attempt here have taken the money?
        if not (i == 0 and held.stamped == name):
            await _stamp(gw, held, name)
        while True:
            try:
                result = await _create_once(gw, state, request)
            except AttemptFailed as failed:
                failures.append(failed)
                attempts.append(Attempt(name, failed.outcome, failed.provider_code))
                step = payment_step(
                    succeeded=False,
                    maybe_delivered=failed.maybe_delivered,
                    failover_safe=failed.failover_safe,
                    retry_same=failed.retry_same,
                    retries_left=retries_left,
                    owned=owned,
                    final=failed.final,
                )
                owned = owned or (failed.maybe_delivered and not failed.failover_safe)
                if step is Step.RETRY_SAME:
                    retries_left -= 1
                    continue
                if step is Step.UNKNOWN:
                    record = new_record(
                        held, request, name, status="processing", provider_reference=None,
                        next_action=None, attempts=attempts, id_secret=secret,
                    )
                    return 202, record, name
                if step is Step.REJECT:
                    raise _Refused(_rejected(failed)) from None
                if i + 1 < len(candidates):
                    gw.metrics.failovers.labels("payments.create", name, candidates[i + 1]).inc()
                break
            attempts.append(Attempt(name, "ok"))
            record = new_record(
                held, request, name, status=result.status,
                provider_reference=result.provider_reference, next_action=result.next_action,
                attempts=attempts, id_secret=secret,
            )
            return 201, record, None
    raise _Refused(_all_failed(failures))


def _able(
    gw: Gateway, rt: Runtime, names: tuple[str, ...], body: dict[str, Any]
) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """The providers that can take this kind of payment, and why the others cannot.

    A provider that cannot is never sent the payment (its refusal is the gateway's own
    knowledge, declared by its adapter), and the skip is counted."""
    able: list[str] = []
    unable: list[tuple[str, str]] = []
    for name in names:
        spec = rt.providers[name].config.spec
        refusal = spec.refusal(body["type"], body["method"]["type"], body["currency"])
        if refusal is None:
            able.append(name)
        else:
            unable.append((name, refusal))
            gw.metrics.provider_skips.labels(name, "unsupported").inc()
    return tuple(able), unable


def _nobody_takes(body: dict[str, Any], unable: list[tuple[str, str]]) -> ApiError:
    what = f"{body['type']} by {body['method']['type']} in {body['currency']}"
    return ApiError(
        "provider_rejected",
        f"no provider of this route takes a {what}: "
        + "; ".join(f"{name} {why}" for name, why in unable),
        provider_code="unsupported_payment_method",
    )


async def _create_once(gw: Gateway, state: ProviderState, request: PaymentRequest) -> PaymentResult:
    adapter = state.adapter
    try:
        upstream_request = adapter.create_request(request)
    except ProviderError as exc:
        # Refused before sending (e.g. an operation this provider does not offer).
        raise AttemptFailed(
            state.name,
            "unsupported",
            exc.message,
            maybe_delivered=False,
            failover_safe=True,
            provider_code=exc.provider_code,
        ) from None

    def parse(response: Any) -> PaymentResult:
        result: PaymentResult = adapter.parse_create(response, request)
        return result

    return await call_provider(gw, state, "payments.create", upstream_request, parse)


# ---- replays of payments whose outcome was unknown -----------------------------------------


async def _resolve_orphan(
    gw: Gateway, rt: Runtime, held: Claimed, body: dict[str, Any]
) -> tuple[int, dict[str, Any], bool]:
    """The request holding this key stopped after naming `held.owner` and before any answer
    was recorded: ask that provider again, same provider key, and no other one, ever."""
    owner = held.owner
    assert owner is not None
    request = _payment_request(held, owner, body)
    secret = rt.config.payment_id_secret
    state = rt.providers.get(owner)
    attempts: list[Attempt] = []
    result = None
    if state is not None:
        try:
            result = await _create_once(gw, state, request)
            attempts.append(Attempt(owner, "ok"))
        except AttemptFailed as failed:
            attempts.append(Attempt(owner, failed.outcome, failed.provider_code))
    if result is None:
        record = new_record(
            held, request, owner, status="processing", provider_reference=None,
            next_action=None, attempts=attempts, id_secret=secret,
        )
        await _finish(gw, held, 202, record, owner=owner, unknown=True)
        return 202, record.to_api(), True
    record = new_record(
        held, request, owner, status=result.status, provider_reference=result.provider_reference,
        next_action=result.next_action, attempts=attempts, id_secret=secret,
    )
    await _finish(gw, held, 201, record, owner=None, unknown=False)
    return 201, record.to_api(), True


async def _resolve_unknown(
    gw: Gateway,
    rt: Runtime,
    client_id: str,
    key: str,
    body: dict[str, Any],
    claim: ClaimRecord,
) -> tuple[int, dict[str, Any], bool]:
    """A replay of a payment answered 202: learn its outcome from its owner, same key.

    The provider dedupes on the key, so this can only learn the outcome, never charge again,
    and no other provider is ever asked. What the ledger learnt meanwhile (a webhook, a
    read-back) is kept: statuses only move forward.
    """
    owner = claim.owner
    assert owner is not None
    stored: dict[str, Any] = claim.answer
    try:
        payment = await gw.ledger.payment(claim.payment_id) if claim.payment_id else None
    except LedgerUnavailable:
        return 202, stored, True
    if payment is not None and (payment.provider_reference or payment.status != "processing"):
        return await _settled(gw, client_id, key, payment)  # a webhook or a read-back knew
    state = rt.providers.get(owner)
    if state is None or payment is None:
        return 202, stored, True
    request = _payment_request(Claimed(client_id, key, claim.fingerprint, ""), owner, body)
    try:
        result = await _create_once(gw, state, request)
    except AttemptFailed:
        return 202, payment.to_api(), True

    def learn(current: PaymentRecord) -> tuple[PaymentRecord, None]:
        status = advance(current.status, result.status)
        action = result.next_action.to_dict() if result.next_action else current.next_action
        return current.replace(
            status=status,
            provider_reference=current.provider_reference or result.provider_reference,
            next_action=action_for(status, action),
            attempts=(*current.attempts, Attempt(owner, "ok").to_dict()),
        ), None

    try:
        changed = await gw.ledger.update_payment(payment.payment_id, learn, source="replay")
    except LedgerUnavailable:
        return 201, learn(payment)[0].to_api(), True
    if changed is None:
        return 202, payment.to_api(), True
    return await _settled(gw, client_id, key, changed[1])


async def _settled(
    gw: Gateway, client_id: str, key: str, payment: PaymentRecord
) -> tuple[int, dict[str, Any], bool]:
    answer = payment.to_api()
    try:
        await gw.ledger.settle_unknown(client_id, key, answer)
    except LedgerUnavailable as exc:
        log.error("replay answer not recorded", extra={"error": str(exc)})
    return 201, answer, True


# ---- what to tell the client when no provider holds the payment ----------------------------


def _rejected(failed: AttemptFailed) -> ApiError:
    return ApiError(
        "provider_rejected",
        failed.public_detail,
        provider=failed.provider,
        provider_code=failed.provider_code,
    )


def _all_failed(failures: list[AttemptFailed]) -> ApiError:
    """Every provider failed and none may hold the payment: what to tell the client."""
    if all(f.outcome == "unsupported" for f in failures):
        return ApiError(
            "provider_rejected",
            "no provider of this route takes this payment: "
            + "; ".join(f.public_detail for f in failures),
            provider=failures[-1].provider,
            provider_code=failures[-1].provider_code,
        )
    refusals = [f for f in failures if f.outcome == "rejected" and f.status != 429]
    if refusals:
        return _rejected(refusals[-1])
    if all(
        f.skipped or f.outcome in ("refused", "timeout", "rejected", "unsupported")
        for f in failures
    ):
        retry = max(1, round(min((f.retry_after_s or 1) for f in failures)))
        return ApiError(
            "no_provider_available",
            "no payment provider could take the payment: "
            + "; ".join(f"{f.provider} {f.outcome}" for f in failures),
            headers={"Retry-After": str(retry)},
            extra={"retry_after_s": retry},
        )
    last = failures[-1]
    return ApiError(
        "provider_unavailable",
        last.public_detail,
        provider=last.provider,
        provider_code=last.provider_code,
    )
