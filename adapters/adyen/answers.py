"""Reading Adyen's answers: a payment result, or an error classified for failover."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeGuard

from adapters.adyen.declines import classify
from adapters.base import (
    MAX_SMALL_JSON_BYTES,
    NextAction,
    PaymentRequest,
    PaymentResult,
    PaymentStatus,
    ProviderError,
    UpstreamResponse,
    decode_json,
    json_error_text,
    retry_after,
)

RESULT_STATUSES: dict[str, PaymentStatus] = {
    "Authorised": "succeeded",
    "Refused": "failed",
    "Cancelled": "canceled",
    "Error": "failed",
    "Pending": "processing",
    "Received": "processing",
    "PartiallyAuthorised": "processing",
    "RedirectShopper": "requires_action",
    "IdentifyShopper": "requires_action",
    "ChallengeShopper": "requires_action",
    "PresentToShopper": "requires_action",
}

# Adyen's "request already processed or in progress" (seen with HTTP 409): the key belongs
# to a request Adyen has or is acting on, so neither another provider nor a blind retry.
IDEMPOTENCY_ERROR_CODE = "704"

# Definite refusals before Adyen acts: authentication, permission, validation, wrong URL.
REJECTED_STATUSES = frozenset({400, 401, 403, 404, 405, 413, 415, 422})


def parse_payment_answer(response: UpstreamResponse, request: PaymentRequest) -> PaymentResult:
    status = response.status
    if not 200 <= status < 300:
        raise error_of(response)
    try:
        data = decode_json(response.body, MAX_SMALL_JSON_BYTES)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    psp, result_code = data.get("pspReference"), data.get("resultCode")
    if not (is_text(psp) and is_text(result_code)):
        # Adyen may have acted on the request; only the same key may ask again.
        raise ProviderError(
            f"Adyen answered {status} without pspReference and resultCode: "
            f"{json_error_text(response.body)}",
            status=status,
            retry_same=True,
        )
    payment_status = RESULT_STATUSES.get(result_code)
    if payment_status is None:
        raise ProviderError(
            f"Adyen answered with the unknown resultCode {result_code!r} for {psp}",
            provider_code=result_code,
            status=status,
            retry_same=True,
        )
    action = None
    if payment_status == "requires_action":
        action = _next_action(data.get("action"))
    decline_code = _decline_code(result_code, data)
    return PaymentResult(
        status=payment_status,
        provider_reference=psp,
        # Adyen does not reliably echo the amount; it is the one that was asked for.
        amount=request.amount,
        currency=request.currency,
        next_action=action,
        decline_code=decline_code,
        decline=classify(decline_code),
    )


def is_text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _next_action(action: Any) -> NextAction:
    url = action.get("url") if isinstance(action, dict) else None
    if is_text(url):
        return NextAction(type="redirect", url=url)
    # Actions without a URL (3-D Secure fingerprint, QR codes, voucher) need Adyen's SDK.
    return NextAction(type="sdk", provider="adyen", client_secret=None)


def _decline_code(result_code: str, data: Mapping[str, Any]) -> str | None:
    if result_code == "Error":
        return "error"
    if result_code != "Refused":
        return None
    for key in ("refusalReasonCode", "refusalReason"):
        value = data.get(key)
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            return str(value)
        if is_text(value):
            return value.strip()
    return "refused"


def error_of(response: UpstreamResponse) -> ProviderError:
    status = response.status
    try:
        data = decode_json(response.body, MAX_SMALL_JSON_BYTES)
    except ValueError:
        data = None
    fields = data if isinstance(data, dict) else {}
    code = _code(fields.get("errorCode"))
    # Checkout errors carry `message`; Balance Platform errors are problem details.
    message = next(
        (fields[key] for key in ("message", "detail", "title") if is_text(fields.get(key))), None
    )
    psp = fields.get("pspReference") if is_text(fields.get("pspReference")) else None
    text = f"Adyen answered HTTP {status}"
    if code or message:
        text += f": {code or '-'} {message or ''}".rstrip()
    else:
        text += f": {json_error_text(response.body)}"
    if psp:
        text += f" (pspReference {psp})"
    if code == IDEMPOTENCY_ERROR_CODE:
        # "Already processed or in progress": Adyen holds a request under this key, whose
        # outcome is unknown to us. Only asking again with the same key can learn it.
        return ProviderError(text, provider_code=code, status=status, retry_same=True)
    if status == 429:
        return ProviderError(
            text,
            provider_code=code,
            status=status,
            failover_safe=True,
            retry_after_s=retry_after(response.headers),
        )
    if status in REJECTED_STATUSES:
        return ProviderError(
            text, provider_code=code, status=status, rejected=True, failover_safe=True
        )
    return ProviderError(text, provider_code=code, status=status, retry_same=True)


def _code(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if is_text(value) else None
