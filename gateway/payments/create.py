"""Creating a payment: idempotent, with double-charge-safe failover.

The rule, from `policies.failover`: the next provider is tried only after an attempt that
certainly took no money. A timeout or an ambiguous answer is retried on the same provider
with the same provider idempotency key, and if the outcome is still unknown the client gets
202 with status `processing` and the provider that holds the payment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from adapters.base import PaymentRequest, PaymentResult, ProviderError
from gateway.payments import ids as payment_ids
from gateway.payments.ids import PaymentRef
from gateway.payments.records import Attempt, payment_body, save_payment
from gateway.problems import ApiError
from gateway.upstream.calls import AttemptFailed, call_provider
from gateway.upstream.selection import no_provider
from policies.failover import Step, payment_step
from policies.idempotency import (
    Claimed,
    Conflict,
    LostClaim,
    Orphaned,
    Replay,
    fingerprint,
)
from policies.ports import StoreUnavailable

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway, Runtime
    from gateway.upstream.providers import ProviderState

log = logging.getLogger("gateway.payments")


async def create(
    gw: Gateway, rt: Runtime, client_id: str, idempotency_key: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any], bool]:
    """(HTTP status, Payment, replayed)."""
    fp = fingerprint(client_id, body)
    try:
        claim = await gw.idempotency.begin(client_id, idempotency_key, fp)
    except StoreUnavailable:
        # Without the shared record another replica could send the same payment again.
        raise ApiError(
            "idempotency_store_unavailable",
            "payments are paused while the idempotency store is unreachable; retry shortly",
            headers={"Retry-After": "1"},
        ) from None
    if isinstance(claim, Conflict):
        if claim.reason == "different_body":
            raise ApiError(
                "idempotency_conflict", "this Idempotency-Key was used with a different request"
            )
        raise _in_progress()
    if isinstance(claim, Replay):
        record = claim.record
        if record.unknown and record.owner:
            return await _resolve_unknown(
                gw, rt, client_id, idempotency_key, fp, body, record.owner, record.body
            )
        gw.metrics.idempotent_replays.inc()
        return record.status, record.body, True
    if isinstance(claim, Orphaned):
        owner = claim.record.owner
        assert owner is not None
        taken = await gw.idempotency.take_over(client_id, idempotency_key, claim)
        if taken is None:
            raise _in_progress()
        return await _resolve_unknown(
            gw, rt, client_id, idempotency_key, fp, body, owner, None, taken
        )
    assert isinstance(claim, Claimed)
    held = claim

    async def stamp(provider: str) -> None:
        try:
            await gw.idempotency.stamp_owner(client_id, idempotency_key, fp, provider, held)
        except StoreUnavailable as exc:
            log.error("provider not recorded on the claim", extra={"error": str(exc)})
        except LostClaim:
            # Another request holds the key now: sending would risk a second charge.
            raise _in_progress() from None

    try:
        status, payment, owner, unknown = await _attempt_all(
            gw, rt, client_id, idempotency_key, body, stamp
        )
    except ApiError:
        # Every error answer means no provider may hold the payment (an attempt that may
        # have reached one ends in 202 instead), so the key is free to be used again.
        await _record(gw.idempotency.abandon(client_id, idempotency_key, held))
        raise
    await _record(
        gw.idempotency.finish(
            client_id,
            idempotency_key,
            fp,
            status,
            payment,
            owner=owner,
            unknown=unknown,
            claim=held,
        )
    )
    return status, payment, False


def _in_progress() -> ApiError:
    return ApiError(
        "idempotency_conflict",
        "a request with this Idempotency-Key is still in progress; retry shortly",
        headers={"Retry-After": "1"},
    )


async def _record(write: Awaitable[None]) -> None:
    """Write an idempotency record; a store that fails now must not lose the answer.

    An unwritten claim expires after its lease, and a retry then reuses the same provider
    idempotency key, so the provider itself hands back this same payment.
    """
    try:
        await write
    except StoreUnavailable as exc:
        log.error("idempotency record not saved", extra={"error": str(exc)})
    except LostClaim:
        log.warning("idempotency record not saved: another request holds the key now")


def _payment_request(
    client_id: str, idempotency_key: str, provider: str, body: dict[str, Any]
) -> PaymentRequest:
    return PaymentRequest(
        type=body["type"],
        amount=body["amount"],
        currency=body["currency"],
        player_id=body["player_id"],
        method_type=body["method"]["type"],
        return_url=body.get("return_url"),
        metadata=body.get("metadata", {}),
        reference=payment_ids.gateway_reference(client_id, idempotency_key),
        idempotency_key=payment_ids.provider_idempotency_key(client_id, idempotency_key, provider),
    )


async def _attempt_all(
    gw: Gateway,
    rt: Runtime,
    client_id: str,
    idempotency_key: str,
    body: dict[str, Any],
    before_send: Callable[[str], Awaitable[None]],
) -> tuple[int, dict[str, Any], str | None, bool]:
    selection = gw.selection(rt, "payments.create")
    if not selection.candidates:
        raise no_provider("payments.create", selection)
    attempts: list[Attempt] = []
    failures: list[AttemptFailed] = []
    retries = rt.config.payment_retries
    for i, name in enumerate(selection.candidates):
        state = rt.providers[name]
        request = _payment_request(client_id, idempotency_key, name, body)
        retries_left = retries
        owned = False  # may an earlier attempt here have taken the money?
        await before_send(name)
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
                )
                owned = owned or (failed.maybe_delivered and not failed.failover_safe)
                if step is Step.RETRY_SAME:
                    retries_left -= 1
                    continue
                if step is Step.UNKNOWN:
                    payment = await _processing(gw, rt, request, name, attempts, body)
                    return 202, payment, name, True
                if step is Step.REJECT:
                    raise _rejected(failed) from None
                if i + 1 < len(selection.candidates):
                    gw.metrics.failovers.labels(
                        "payments.create", name, selection.candidates[i + 1]
                    ).inc()
                break
            attempts.append(Attempt(name, "ok"))
            payment = await _settled(gw, rt, request, name, result, attempts, body)
            return 201, payment, None, False
    raise _all_failed(failures)


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


def _new_ref(
    rt: Runtime, request: PaymentRequest, provider: str, provider_reference: str
) -> PaymentRef:
    return PaymentRef(
        provider,
        request.reference,
        provider_reference,
        request.amount,
        request.currency,
        int(time.time()),
    )


async def _settled(
    gw: Gateway,
    rt: Runtime,
    request: PaymentRequest,
    provider: str,
    result: PaymentResult,
    attempts: list[Attempt],
    body: dict[str, Any],
) -> dict[str, Any]:
    ref = _new_ref(rt, request, provider, result.provider_reference)
    payment_id = payment_ids.encode(ref, rt.config.payment_id_secret)
    payment = payment_body(
        ref,
        payment_id,
        result.status,
        result.provider_reference,
        result.next_action.to_dict() if result.next_action else None,
        [a.to_dict() for a in attempts],
    )
    await save_payment(gw, payment, _extra(request, body))
    return payment


async def _processing(
    gw: Gateway,
    rt: Runtime,
    request: PaymentRequest,
    provider: str,
    attempts: list[Attempt],
    body: dict[str, Any],
) -> dict[str, Any]:
    ref = _new_ref(rt, request, provider, "")
    payment_id = payment_ids.encode(ref, rt.config.payment_id_secret)
    payment = payment_body(
        ref, payment_id, "processing", None, None, [a.to_dict() for a in attempts]
    )
    await save_payment(gw, payment, _extra(request, body))
    return payment


def _extra(request: PaymentRequest, body: dict[str, Any]) -> dict[str, Any]:
    return {"reference": request.reference, "player_id": body["player_id"], "type": body["type"]}


async def _resolve_unknown(
    gw: Gateway,
    rt: Runtime,
    client_id: str,
    idempotency_key: str,
    fp: str,
    body: dict[str, Any],
    owner: str,
    stored: dict[str, Any] | None,
    claim: Claimed | None = None,
) -> tuple[int, dict[str, Any], bool]:
    """A replay of a payment whose outcome is unknown: ask its owner again, same key.

    The provider dedupes on the idempotency key, so this can only learn the outcome, never
    charge twice; no other provider is ever asked. Until the owner answers, the answer is
    202 `processing` (with `stored` the earlier 202; None when the earlier request stopped
    before answering anything).
    """
    request = _payment_request(client_id, idempotency_key, owner, body)
    if stored is None:
        stored = await _processing(gw, rt, request, owner, [], body)
        await _record(
            gw.idempotency.finish(
                client_id,
                idempotency_key,
                fp,
                202,
                stored,
                owner=owner,
                unknown=True,
                claim=claim,
            )
        )
    state = rt.providers.get(owner)
    if state is None:
        return 202, stored, True
    try:
        result = await _create_once(gw, state, request)
    except AttemptFailed:
        return 202, stored, True
    attempts = [*stored["attempts"], Attempt(owner, "ok").to_dict()]
    payment = {
        **stored,
        "status": result.status,
        "provider_reference": result.provider_reference,
        "next_action": result.next_action.to_dict() if result.next_action else None,
        "attempts": attempts,
    }
    await save_payment(gw, payment, _extra(request, body))
    await _record(gw.idempotency.finish(client_id, idempotency_key, fp, 201, payment, claim=claim))
    return 201, payment, True


def _rejected(failed: AttemptFailed) -> ApiError:
    return ApiError(
        "provider_rejected",
        f"{failed.provider} refused the payment: {failed.detail}",
        provider=failed.provider,
        provider_code=failed.provider_code,
    )


def _all_failed(failures: list[AttemptFailed]) -> ApiError:
    """Every provider failed and none may hold the payment: what to tell the client."""
    if all(f.outcome == "unsupported" for f in failures):
        return ApiError(
            "provider_rejected",
            "no provider of this route takes this payment: "
            + "; ".join(f"{f.provider}: {f.detail}" for f in failures),
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
        f"{last.provider}: {last.detail}",
        provider=last.provider,
        provider_code=last.provider_code,
    )
