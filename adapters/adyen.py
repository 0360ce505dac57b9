"""Adyen Checkout API v71: card, PayPal and bank-transfer deposits, and payment webhooks.

Requests: JSON with header `X-API-Key`; every `/payments` call carries `Idempotency-Key`
(Adyen keeps keys for at least 31 days, at most 64 characters).

Payment method names sent as `paymentMethod.type` (Adyen's own type names):
- card          -> ``scheme``: Adyen's card type; the shopper enters the card on Adyen's
                   pages (redirect or 3-D Secure), so card data never reaches the gateway.
- ewallet       -> ``paypal``.
- bank_transfer -> ``bankTransfer_IBAN``: the shopper pays into an IBAN Adyen gives.
                   ``sepadirectdebit`` is not used: it needs the shopper's IBAN and name in
                   the request, which the unified request does not carry.
- crypto        -> not offered by Adyen: `create_request` raises a failover-safe
                   ProviderError (provider_code ``unsupported_payment_method``).

Withdrawals: Checkout `/payments` only takes money in (payouts are a separate product), so
`create_request` raises ProviderError(rejected, failover_safe, provider_code
``unsupported_operation``) for them; nothing is sent. A missing return URL is refused the
same way (``missing_return_url``): Adyen requires `returnUrl` on every `/payments` call.

Reading back: Checkout has no endpoint that returns a payment by its pspReference, so
`get_request` returns None; the gateway keeps what `/payments` said and webhooks update it.

Error classification of a `/payments` answer (the double-charge rule):

=====================================  ===========  ===========  ========
answer                                 failover     retry same   rejected
=====================================  ===========  ===========  ========
2xx with pspReference and resultCode   a PaymentResult (Refused/Error -> status failed)
2xx without them, or not JSON          no           yes          no
2xx with an unknown resultCode         no           yes          no
errorCode 704 (idempotency key in use  no           yes          no
  or reused with another body)
400, 401, 403, 404, 405, 413, 415, 422 yes          no           yes
429 (retry_after_s from Retry-After)   yes          no           no
409, 5xx, any other status             no           yes          no
=====================================  ===========  ===========  ========

Webhooks ("standard notifications"): `{"live": "false", "notificationItems":
[{"NotificationRequestItem": {...}}]}`. Each item carries `additionalData.hmacSignature` =
base64(HMAC-SHA256(bytes.fromhex(hmac_key), payload)) where payload joins with ":"
pspReference, originalReference (or ""), merchantAccountCode, merchantReference, amount
value, amount currency, eventCode and success. Adyen's scheme has no timestamp, so there is
no replay window to check: duplicates are caught by the event id
(`pspReference:eventCode:success`, the triple that makes an Adyen notification unique).
Any item that fails verification rejects the whole batch (WebhookRejected), and so does
every webhook when no hmac_key is configured. Adyen expects the literal body `[accepted]` in
answer, or it retries the delivery.

Events: AUTHORISATION success "true" -> payment.succeeded, "false" -> payment.failed;
CANCELLATION "true" -> payment.canceled; REFUND "true" -> payment.refunded (both name the
payment in originalReference, used as provider_reference when present). Every other event,
and a failed cancellation or refund (the payment is unchanged), is verified and skipped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, TypeGuard

from adapters.base import (
    AdapterSpec,
    NextAction,
    PaymentEvent,
    PaymentRequest,
    PaymentResult,
    PaymentStatus,
    ProviderError,
    UpstreamRequest,
    UpstreamResponse,
    WebhookRejected,
    decode_json,
    header,
    json_error_text,
)

SPEC = AdapterSpec(
    kind="payments",
    credentials=("api_key", "merchant_account"),
    secrets=frozenset({"api_key", "hmac_key"}),
    optional=("hmac_key",),
)

API_VERSION = "v71"
PAYMENTS_PATH = f"/{API_VERSION}/payments"
PAYMENT_METHODS_PATH = f"/{API_VERSION}/paymentMethods"

PAYMENT_METHOD_TYPES: dict[str, str] = {
    "card": "scheme",
    "ewallet": "paypal",
    "bank_transfer": "bankTransfer_IBAN",
}

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

# eventCode -> (event type when success is "true", event type when "false"); None = skipped.
EVENT_TYPES: dict[str, tuple[str | None, str | None]] = {
    "AUTHORISATION": ("payment.succeeded", "payment.failed"),
    # A failed cancellation or refund leaves the payment as it was.
    "CANCELLATION": ("payment.canceled", None),
    "REFUND": ("payment.refunded", None),
}
# Modification events name the payment they modify in originalReference.
MODIFICATION_EVENTS = frozenset({"CANCELLATION", "REFUND"})

WEBHOOK_ACK: tuple[int, str, bytes] = (200, "text/plain", b"[accepted]")

_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


class AdyenAdapter:
    kind: Literal["payments"] = "payments"

    def __init__(
        self, name: str, api_key: str, merchant_account: str, hmac_key: bytes | None
    ) -> None:
        self.name = name
        self.merchant_account = merchant_account
        self._api_key = api_key
        self._hmac_key = hmac_key

    def __repr__(self) -> str:
        # The API key and HMAC key never appear in logs or tracebacks.
        return f"AdyenAdapter(name={self.name!r}, merchant_account={self.merchant_account!r})"

    # ---- requests ----------------------------------------------------------------------

    def create_request(self, request: PaymentRequest) -> UpstreamRequest:
        if request.type != "deposit":
            raise _refused_locally(
                f"Adyen Checkout takes payments in only; a {request.type} is not supported",
                "unsupported_operation",
            )
        method_type = PAYMENT_METHOD_TYPES.get(request.method_type)
        if method_type is None:
            raise _refused_locally(
                f"Adyen does not offer the payment method {request.method_type!r}",
                "unsupported_payment_method",
            )
        if not request.return_url:
            raise _refused_locally("Adyen requires a return URL", "missing_return_url")
        payload: dict[str, Any] = {
            "amount": {"value": request.amount, "currency": request.currency},
            "reference": request.reference,
            "merchantAccount": self.merchant_account,
            "paymentMethod": {"type": method_type},
            "returnUrl": request.return_url,
            "shopperReference": request.player_id,
        }
        if request.metadata:
            # Adyen's metadata is a map of strings (at most 20 keys, values up to 80 chars).
            payload["metadata"] = {str(k): str(v) for k, v in request.metadata.items()}
        return self._post(PAYMENTS_PATH, payload, {"Idempotency-Key": request.idempotency_key})

    def get_request(self, provider_reference: str) -> UpstreamRequest | None:
        return None

    def health_request(self) -> UpstreamRequest:
        # The cheapest authenticated call that also proves the merchant account is usable.
        return self._post(PAYMENT_METHODS_PATH, {"merchantAccount": self.merchant_account})

    def _post(
        self, path: str, payload: Mapping[str, Any], extra: Mapping[str, str] | None = None
    ) -> UpstreamRequest:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {"X-API-Key": self._api_key, "Content-Type": "application/json"}
        headers.update(extra or {})
        return UpstreamRequest(method="POST", path=path, headers=headers, body=body)

    # ---- responses ---------------------------------------------------------------------

    def parse_create(self, response: UpstreamResponse, request: PaymentRequest) -> PaymentResult:
        status = response.status
        if not 200 <= status < 300:
            raise _error(response)
        try:
            data = decode_json(response.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        psp, result_code = data.get("pspReference"), data.get("resultCode")
        if not (_text(psp) and _text(result_code)):
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
        return PaymentResult(
            status=payment_status,
            provider_reference=psp,
            # Adyen does not reliably echo the amount; it is the one that was asked for.
            amount=request.amount,
            currency=request.currency,
            next_action=action,
            decline_code=_decline_code(result_code, data),
        )

    def parse_get(self, response: UpstreamResponse) -> PaymentResult:
        raise ProviderError(
            "Adyen Checkout cannot read a payment back (not supported)",
            provider_code="unsupported_operation",
            status=response.status,
        )

    # ---- webhooks ----------------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: float
    ) -> list[PaymentEvent]:
        """The payment events of one notification batch; WebhookRejected if any item fails.

        `now` is unused: Adyen's signature covers no timestamp (see the module docstring).
        """
        if self._hmac_key is None:
            raise WebhookRejected("no hmac_key is configured for Adyen webhooks")
        try:
            data = decode_json(body)
        except ValueError:
            raise WebhookRejected("Adyen notification is not JSON") from None
        items = data.get("notificationItems") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise WebhookRejected("Adyen notification has no notificationItems")
        events: list[PaymentEvent] = []
        for wrapper in items:
            item = wrapper.get("NotificationRequestItem") if isinstance(wrapper, dict) else None
            if not isinstance(item, dict):
                raise WebhookRejected("Adyen notification item is malformed")
            fields = _signed_fields(item)
            if not self._signature_ok(item, fields):
                raise WebhookRejected("Adyen notification HMAC signature does not verify")
            event = _event(item, fields)
            if event is not None:
                events.append(event)
        return events

    def webhook_ack(self) -> tuple[int, str, bytes]:
        return WEBHOOK_ACK

    def _signature_ok(self, item: Mapping[str, Any], fields: list[str]) -> bool:
        assert self._hmac_key is not None
        additional = item.get("additionalData")
        given = additional.get("hmacSignature") if isinstance(additional, dict) else None
        if not isinstance(given, str) or not given:
            return False
        try:
            given_bytes = base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            return False
        payload = ":".join(fields).encode("utf-8")
        expected = hmac.new(self._hmac_key, payload, hashlib.sha256).digest()
        return hmac.compare_digest(expected, given_bytes)


# ---- parsing helpers -----------------------------------------------------------------------


def _refused_locally(message: str, code: str) -> ProviderError:
    # Nothing was sent, so another provider may take the payment.
    return ProviderError(message, provider_code=code, rejected=True, failover_safe=True)


def _text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _next_action(action: Any) -> NextAction:
    url = action.get("url") if isinstance(action, dict) else None
    if _text(url):
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
        if _text(value):
            return value.strip()
    return "refused"


def _error(response: UpstreamResponse) -> ProviderError:
    status = response.status
    try:
        data = decode_json(response.body)
    except ValueError:
        data = None
    fields = data if isinstance(data, dict) else {}
    code = _code(fields.get("errorCode"))
    message = fields.get("message") if _text(fields.get("message")) else None
    psp = fields.get("pspReference") if _text(fields.get("pspReference")) else None
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
            retry_after_s=_retry_after(response),
        )
    if status in REJECTED_STATUSES:
        return ProviderError(
            text, provider_code=code, status=status, rejected=True, failover_safe=True
        )
    return ProviderError(text, provider_code=code, status=status, retry_same=True)


def _code(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if _text(value) else None


def _retry_after(response: UpstreamResponse) -> float | None:
    # Only the delay-seconds form: an HTTP date would need a clock, and Adyen sends seconds.
    value = header(response.headers, "Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


# ---- webhook helpers -----------------------------------------------------------------------


def _signed_fields(item: Mapping[str, Any]) -> list[str]:
    """The eight values Adyen's HMAC covers, in order; WebhookRejected if one is malformed."""
    amount = item.get("amount")
    if not isinstance(amount, dict):
        raise WebhookRejected("Adyen notification item has no amount")
    value = amount.get("value")
    if isinstance(value, bool) or not isinstance(value, int):
        raise WebhookRejected("Adyen notification amount value is not an integer")
    fields = [
        _required(item, "pspReference"),
        _optional(item, "originalReference"),
        _required(item, "merchantAccountCode"),
        _optional(item, "merchantReference"),
        str(value),
        _required(amount, "currency"),
        _required(item, "eventCode"),
        _required(item, "success"),
    ]
    if fields[-1] not in ("true", "false"):
        raise WebhookRejected("Adyen notification success is neither 'true' nor 'false'")
    return fields


def _required(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise WebhookRejected(f"Adyen notification item has no {key}")
    return value


def _optional(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebhookRejected(f"Adyen notification {key} is not a string")
    return value


def _event(item: Mapping[str, Any], fields: list[str]) -> PaymentEvent | None:
    psp, original, _, merchant_reference, value, currency, event_code, success = fields
    types = EVENT_TYPES.get(event_code)
    event_type = None if types is None else types[0 if success == "true" else 1]
    if event_type is None:
        return None
    reference = original if event_code in MODIFICATION_EVENTS and original else psp
    event_date = item.get("eventDate")
    return PaymentEvent(
        event_id=f"{psp}:{event_code}:{success}",
        type=event_type,
        provider_reference=reference,
        merchant_reference=merchant_reference or None,
        amount=int(value),
        currency=currency,
        occurred_at=event_date if isinstance(event_date, str) and event_date else None,
    )


# ---- construction --------------------------------------------------------------------------


def create(name: str, credentials: Mapping[str, Any]) -> AdyenAdapter:
    api_key = credentials.get("api_key")
    if not _text(api_key):
        raise ValueError(f"provider {name!r}: api_key must be a non-empty string")
    merchant_account = credentials.get("merchant_account")
    if not _text(merchant_account):
        raise ValueError(f"provider {name!r}: merchant_account must be a non-empty string")
    return AdyenAdapter(
        name,
        api_key=api_key.strip(),
        merchant_account=merchant_account.strip(),
        hmac_key=_hmac_key(name, credentials.get("hmac_key")),
    )


def _hmac_key(name: str, value: Any) -> bytes | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not _HEX.match(value.strip()):
        # The value itself stays out of the message: it is a secret.
        raise ValueError(
            f"provider {name!r}: hmac_key must be the hex-encoded HMAC key from Adyen's "
            "webhook settings"
        )
    return bytes.fromhex(value.strip())
