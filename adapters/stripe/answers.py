"""Reading Stripe's answers: a PaymentIntent, or an error classified for failover.

The classification table is in the package docstring (`adapters.stripe`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from adapters import base
from adapters.base import (
    NextAction,
    PaymentResult,
    PaymentStatus,
    ProviderError,
    RefundResult,
    RefundStatus,
    UpstreamResponse,
)
from adapters.stripe.declines import classify

Operation = Literal["create", "get", "refund"]

# A refund Stripe is still waiting on (requires_action: the customer must give bank details)
# has taken nothing back yet: pending either way.
REFUND_STATUSES: dict[str, RefundStatus] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}


def parse_refund_answer(response: UpstreamResponse) -> RefundResult:
    """A Refund object, or an error classified as for payments (5xx: ask again with the
    same key; a refusal in Stripe's shape: nothing was refunded)."""
    if 200 <= response.status < 300:
        obj = _decode(response.body)
        refund = refund_of(obj)
        if refund is None:
            raise ProviderError(
                f"stripe {response.status}: answer is not a Refund: "
                f"{base.json_error_text(response.body)}",
                status=response.status,
                retry_same=True,
            )
        return refund
    parse_answer(response, "refund")
    # Only a card decline reaches here, which a refund never gets: treat it as unreadable.
    raise ProviderError(
        f"stripe {response.status}: unexpected answer to a refund", status=response.status,
        retry_same=True,
    )


def refund_of(obj: Any) -> RefundResult | None:
    if not isinstance(obj, dict) or obj.get("object") != "refund":
        return None
    refund_id = str_or_none(obj.get("id"))
    status = REFUND_STATUSES.get(str_or_none(obj.get("status")) or "")
    if refund_id is None or status is None:
        return None
    return RefundResult(status=status, provider_reference=refund_id)

_STATUS: dict[str, PaymentStatus] = {
    "requires_payment_method": "requires_action",
    "requires_confirmation": "requires_action",
    "requires_action": "requires_action",
    "processing": "processing",
    "requires_capture": "processing",
    "succeeded": "succeeded",
    "canceled": "canceled",
}


def parse_answer(response: UpstreamResponse, operation: Operation) -> PaymentResult:
    status = response.status
    body = _decode(response.body)
    if 200 <= status < 300:
        result = _payment_result(body)
        if result is None:
            raise ProviderError(
                f"stripe {status}: answer is not a PaymentIntent: "
                f"{base.json_error_text(response.body)}",
                status=status,
                retry_same=True,
            )
        return result
    error = _error_object(body)
    err_type = str_or_none(error.get("type")) if error else None
    code = str_or_none(error.get("code")) if error else None
    message = _error_message(status, err_type, error, response.body)
    provider_code = code or err_type

    if status >= 500 or status == 409:
        raise _error(message, provider_code, status, retry_same=True)
    if err_type == "idempotency_error":
        raise _error(message, provider_code, status, rejected=True)
    if status == 402 or err_type == "card_error":
        return _card_error(error, message, provider_code, status)
    if status in (401, 403):
        raise _error(message, provider_code, status, rejected=True, failover_safe=True)
    if status == 429:
        raise ProviderError(
            message,
            provider_code=provider_code,
            status=status,
            rejected=True,
            failover_safe=True,
            retry_after_s=base.retry_after(response.headers),
        )
    if status == 404 and operation == "get" and code == "resource_missing":
        raise _error(message, code, 404, rejected=True)
    if 400 <= status < 500:
        # Only Stripe's own error shape proves Stripe refused before acting.
        raise _error(
            message,
            provider_code,
            status,
            rejected=True,
            failover_safe=error is not None and status in (400, 404, 422),
        )
    raise _error(message, provider_code, status, retry_same=True)


def _error(
    message: str,
    provider_code: str | None,
    status: int,
    *,
    retry_same: bool = False,
    failover_safe: bool = False,
    rejected: bool = False,
) -> ProviderError:
    return ProviderError(
        message,
        provider_code=provider_code,
        status=status,
        retry_same=retry_same,
        failover_safe=failover_safe,
        rejected=rejected,
    )


def _card_error(
    error: dict[str, Any] | None, message: str, provider_code: str | None, status: int
) -> PaymentResult:
    decline_code = None
    if error is not None:
        decline_code = str_or_none(error.get("decline_code")) or str_or_none(error.get("code"))
        intent = _payment_result(error.get("payment_intent"))
        if intent is not None:
            return PaymentResult(
                status="failed",
                provider_reference=intent.provider_reference,
                amount=intent.amount,
                currency=intent.currency,
                decline_code=decline_code,
                decline=classify(decline_code),
            )
    if error is None:
        # Not Stripe's error shape: nothing proves Stripe refused before acting.
        raise _error(message, provider_code, status, rejected=True)
    # A decline in Stripe's own shape without an intent to point at: Stripe refused and took
    # no money. Only a soft decline may go on to another acquirer, where the route asks.
    raise ProviderError(
        message,
        provider_code=decline_code or provider_code,
        status=status,
        rejected=True,
        failover_safe=True,
        final=True,
        decline=classify(decline_code),
    )


def _decode(body: bytes) -> Any:
    try:
        return base.decode_json(body, base.MAX_SMALL_JSON_BYTES)
    except (ValueError, RecursionError):
        return None


def _payment_result(obj: Any) -> PaymentResult | None:
    if not isinstance(obj, dict):
        return None
    intent_id = str_or_none(obj.get("id"))
    raw_status = str_or_none(obj.get("status"))
    if intent_id is None or raw_status is None:
        return None
    if obj.get("object") not in (None, "payment_intent"):
        return None
    # A status Stripe added after this version: the intent exists, its outcome is unknown.
    status = _STATUS.get(raw_status, "pending")
    next_action = _next_action(obj) if status == "requires_action" else None
    return PaymentResult(
        status=status,
        provider_reference=intent_id,
        amount=int_or_none(obj.get("amount")),
        currency=currency_of(obj.get("currency")),
        next_action=next_action,
    )


def _next_action(obj: dict[str, Any]) -> NextAction | None:
    action = obj.get("next_action")
    if isinstance(action, dict):
        redirect = action.get("redirect_to_url")
        if isinstance(redirect, dict):
            url = str_or_none(redirect.get("url"))
            if url:
                return NextAction(type="redirect", url=url)
    client_secret = str_or_none(obj.get("client_secret"))
    if client_secret:
        return NextAction(type="sdk", provider="stripe", client_secret=client_secret)
    return None


def _error_object(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return error
    return None


def _error_message(
    status: int, err_type: str | None, error: dict[str, Any] | None, raw: bytes
) -> str:
    if error is not None:
        text = str_or_none(error.get("message")) or ""
        return f"stripe {status} {err_type or 'error'}: {text[:200]}"
    return f"stripe {status}: {base.json_error_text(raw)}"


def iso_utc(value: Any) -> str | None:
    seconds = int_or_none(value)
    if seconds is None:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def int_or_none(value: Any) -> int | None:
    # bool is an int subclass; a JSON true is not an amount.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def currency_of(value: Any) -> str | None:
    text = str_or_none(value)
    return text.upper() if text else None
