"""Reading a payment back: the ledger's record, refreshed from the provider that holds it.

The ledger is the source of truth for which payments exist: an id it does not know is a 404
and changes nothing, whatever the id says. A payment that has not settled is refreshed from
its provider, and what is learnt is merged forward-only under the record's lock. When the
ledger is down, a signed id (one the gateway made) is answered from its provider alone,
read-only; an unsigned one cannot be trusted without the ledger and is a 503.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from adapters.base import PaymentResult
from gateway.ledger.database import LedgerUnavailable
from gateway.ledger.payments import PaymentRecord, iso
from gateway.payments import ids as payment_ids
from gateway.payments.records import action_for
from gateway.payments.status import SETTLED, advance
from gateway.problems import ApiError
from gateway.upstream.calls import AttemptFailed, call_provider

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway, Runtime
    from gateway.upstream.providers import ProviderState

log = logging.getLogger("gateway.payments")


def _not_found(payment_id: str) -> ApiError:
    return ApiError("not_found", f"no payment '{payment_id}'")


async def get(gw: Gateway, rt: Runtime, payment_id: str) -> tuple[dict[str, Any], str | None]:
    """(the Payment, the player it belongs to; None when the ledger could not say)."""
    try:
        record = await gw.ledger.payment(payment_id)
    except LedgerUnavailable as exc:
        return await _without_ledger(gw, rt, payment_id, exc), None
    if record is None:
        raise _not_found(payment_id)
    return await _refreshed(gw, rt, record), record.player_id


async def _refreshed(gw: Gateway, rt: Runtime, record: PaymentRecord) -> dict[str, Any]:
    payment_id = record.payment_id
    state = rt.providers.get(record.provider)
    if record.status in SETTLED or not record.provider_reference or not _readable(state):
        return record.to_api()
    assert state is not None and record.provider_reference is not None
    request = state.adapter.get_request(record.provider_reference)
    if request is None:
        return record.to_api()
    try:
        result: PaymentResult = await call_provider(
            gw, state, "payments.get", request, state.adapter.parse_get
        )
    except AttemptFailed:
        return record.to_api()  # what the ledger knows is still true
    if _disagrees(record, result):
        log.error(
            "provider's payment does not match the ledger's; not applied",
            extra={"payment_id": payment_id, "provider": record.provider},
        )
        return record.to_api()

    if _merged(record, result) == record:
        # Nothing new: no write transaction (the ledger's one writer stays free for money).
        return record.to_api()

    def learn(current: PaymentRecord) -> tuple[PaymentRecord, None]:
        return _merged(current, result), None

    try:
        changed = await gw.ledger.update_payment(
            payment_id, learn, source=f"read:{record.provider}"
        )
    except LedgerUnavailable:
        return _merged(record, result).to_api()
    return (changed[1] if changed else record).to_api()


def _readable(state: ProviderState | None) -> bool:
    return state is not None and state.config.kind == "payments"


def _disagrees(record: PaymentRecord, result: PaymentResult) -> bool:
    return (result.amount is not None and result.amount != record.amount) or (
        result.currency is not None and result.currency != record.currency
    )


def _merged(current: PaymentRecord, result: PaymentResult) -> PaymentRecord:
    status = advance(current.status, result.status)
    action = result.next_action.to_dict() if result.next_action else None
    return current.replace(
        status=status,
        provider_reference=current.provider_reference or result.provider_reference,
        next_action=action_for(status, action),
    )


async def _without_ledger(
    gw: Gateway, rt: Runtime, payment_id: str, exc: LedgerUnavailable
) -> dict[str, Any]:
    secret = rt.config.payment_id_secret
    if not secret:
        raise ApiError(
            "unavailable",
            "payments cannot be read while the ledger is unreachable; retry shortly",
            headers={"Retry-After": "1"},
        ) from exc
    try:
        ref = payment_ids.decode(payment_id, secret)
    except payment_ids.BadPaymentId:
        raise _not_found(payment_id) from None
    state = rt.providers.get(ref.provider)
    request = None
    if state is not None and _readable(state) and ref.provider_reference:
        request = state.adapter.get_request(ref.provider_reference)
    body = {
        "payment_id": payment_id,
        "status": "processing",
        "amount": ref.amount,
        "currency": ref.currency,
        "provider": ref.provider,
        "provider_reference": ref.provider_reference or None,
        "next_action": None,
        "attempts": [],
        "created_at": iso(ref.created_at),
    }
    if request is None or state is None:
        return body
    try:
        result: PaymentResult = await call_provider(
            gw, state, "payments.get", request, state.adapter.parse_get
        )
    except AttemptFailed as failed:
        if failed.status == 404:
            raise _not_found(payment_id) from None
        raise ApiError(
            "provider_unavailable",
            failed.public_detail,
            provider=failed.provider,
            provider_code=failed.provider_code,
        ) from None
    status = result.status
    action = result.next_action.to_dict() if result.next_action else None
    return {**body, "status": status, "next_action": action_for(status, action)}
