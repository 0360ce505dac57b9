"""Reading a payment back: the stored record, refreshed from the provider that holds it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.base import PaymentResult
from gateway.payments import ids as payment_ids
from gateway.payments.records import advance, load_payment, payment_body, public, save_payment
from gateway.problems import ApiError
from gateway.upstream.calls import AttemptFailed, call_provider

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway, Runtime


async def get(gw: Gateway, rt: Runtime, payment_id: str) -> dict[str, Any]:
    try:
        ref = payment_ids.decode(payment_id, rt.config.payment_id_secret)
    except payment_ids.BadPaymentId:
        raise ApiError("not_found", f"no payment '{payment_id}'") from None
    record = await load_payment(gw, payment_id)
    provider_reference = (record or {}).get("provider_reference") or ref.provider_reference
    state = rt.providers.get(ref.provider)
    if record is None and (state is None or state.config.kind != "payments"):
        raise ApiError("not_found", f"no payment '{payment_id}'")
    request = None
    if state is not None and state.config.kind == "payments" and provider_reference:
        request = state.adapter.get_request(provider_reference)
    if request is None or state is None:
        if record is not None:
            return public(record)
        # Another instance made it and the provider cannot be asked: what the id knows.
        return payment_body(ref, payment_id, "processing", provider_reference, None, [])
    try:
        result: PaymentResult = await call_provider(
            gw, state, "payments.get", request, state.adapter.parse_get
        )
    except AttemptFailed as failed:
        if failed.status == 404:
            raise ApiError("not_found", f"no payment '{payment_id}'") from None
        if record is not None:
            return public(record)
        raise ApiError(
            "provider_unavailable",
            f"{failed.provider}: {failed.detail}",
            provider=failed.provider,
            provider_code=failed.provider_code,
        ) from None
    if (result.amount is not None and result.amount != ref.amount) or (
        result.currency is not None and result.currency != ref.currency
    ):
        # The id says one thing and the provider another: a forged or mangled id.
        raise ApiError("not_found", f"no payment '{payment_id}'")
    base = record or payment_body(ref, payment_id, result.status, provider_reference, None, [])
    status = advance(base["status"], result.status)
    payment = {
        **public(base),
        "status": status,
        "provider_reference": result.provider_reference or provider_reference,
        "next_action": (result.next_action.to_dict() if result.next_action else None)
        if status in ("requires_action", "pending")
        else None,
    }
    if record is None or public(record) != payment:
        await save_payment(gw, payment, (record or {}).get("_extra", {}))
    return payment
