"""Stripe PaymentIntents: deposits through the gateway's unified payments API.

The adapter creates a PaymentIntent server-side and hands the frontend either the
intent's `client_secret` (confirmed with Stripe.js, so card data never reaches the
gateway) or a redirect URL. Requests are form-encoded as Stripe requires, and every
call pins ``Stripe-Version: 2024-06-20``, the version these shapes were written against.

Method types map onto ``payment_method_types[]`` as follows:

=============  ===============  ======================================================
unified        Stripe           note
=============  ===============  ======================================================
card           card
ewallet        card             Apple Pay / Google Pay are wallets of the card method
bank_transfer  sepa_debit       Stripe accepts it for EUR only
crypto         crypto           Stripe accepts it for USD only
=============  ===============  ======================================================

``return_url`` is not sent: Stripe accepts it only together with ``confirm=true``, and
confirmation happens client-side, where the frontend passes its own return URL.

Withdrawals: a PaymentIntent collects money and cannot pay a player out, so
`create_request` raises ProviderError(provider_code="unsupported_operation",
rejected=True, failover_safe=True) for them; nothing was sent, so another provider
may be tried.

Error classification (first matching row wins):

=====================================  ==========================================================
answer                                 result
=====================================  ==========================================================
2xx PaymentIntent                      PaymentResult (unknown status -> "pending")
2xx not a PaymentIntent                ProviderError retry_same (Stripe may have acted)
5xx (api_error)                        ProviderError retry_same
409 (concurrent use of the key)        ProviderError retry_same
idempotency_error                      ProviderError rejected, not failover_safe, no retry
402 / card_error with payment_intent   PaymentResult status "failed", decline_code
402 / card_error without it            ProviderError rejected, not failover_safe
401, 403                               ProviderError rejected, failover_safe
429                                    ProviderError rejected, failover_safe, retry_after_s
404 resource_missing on a read         ProviderError status 404, rejected
400, 404, 422 in Stripe's error shape  ProviderError rejected, failover_safe
other 4xx, or a 4xx body that is not   ProviderError rejected, not failover_safe (it did not
  Stripe's error shape                   certainly come from Stripe before any money moved)
anything else (1xx, 3xx)               ProviderError retry_same
=====================================  ==========================================================

Webhooks: `verify_webhook` checks ``Stripe-Signature`` (HMAC-SHA256 of ``"{t}.{body}"``
with the endpoint secret, any of several ``v1`` values, 300 s tolerance either way) and
maps ``payment_intent.*`` events to PaymentEvent; other event types are acknowledged and
ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

from adapters import base
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
)

SPEC = AdapterSpec(
    kind="payments",
    credentials=("secret_key",),
    secrets=frozenset({"secret_key", "webhook_secret"}),
    optional=("webhook_secret",),
)

API_VERSION = "2024-06-20"
WEBHOOK_TOLERANCE_S = 300

PAYMENT_METHOD_TYPES: dict[str, str] = {
    "card": "card",
    "ewallet": "card",
    "bank_transfer": "sepa_debit",
    "crypto": "crypto",
}

# Keys the gateway writes itself; a caller's metadata must not overwrite them.
RESERVED_METADATA = ("gateway_reference", "player_id", "type")

_STATUS: dict[str, PaymentStatus] = {
    "requires_payment_method": "requires_action",
    "requires_confirmation": "requires_action",
    "requires_action": "requires_action",
    "processing": "processing",
    "requires_capture": "processing",
    "succeeded": "succeeded",
    "canceled": "canceled",
}

_EVENT_TYPES: dict[str, str] = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
    "payment_intent.canceled": "payment.canceled",
    "payment_intent.processing": "payment.processing",
    "payment_intent.requires_action": "payment.requires_action",
}

_SECRET_KEY_PREFIXES = ("sk_", "rk_")
_WEBHOOK_SECRET_PREFIX = "whsec_"

Operation = Literal["create", "get"]


class StripeAdapter:
    kind: Literal["payments"] = "payments"

    def __init__(self, name: str, secret_key: str, webhook_secret: str | None) -> None:
        self.name = name
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret

    def __repr__(self) -> str:
        # Never let the keys reach a log line through repr().
        return f"StripeAdapter(name={self.name!r})"

    # ---- requests ----------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._secret_key}",
            "Stripe-Version": API_VERSION,
            "Accept": "application/json",
        }

    def create_request(self, request: PaymentRequest) -> UpstreamRequest:
        if request.type != "deposit":
            raise ProviderError(
                f"stripe: payment intents collect money and cannot make a {request.type}",
                provider_code="unsupported_operation",
                rejected=True,
                failover_safe=True,
            )
        metadata = {str(k): str(v) for k, v in request.metadata.items()}
        for key in RESERVED_METADATA:
            metadata.pop(key, None)
        metadata["gateway_reference"] = request.reference
        metadata["player_id"] = request.player_id
        metadata["type"] = request.type
        fields: list[tuple[str, str]] = [
            ("amount", str(int(request.amount))),
            ("currency", request.currency.lower()),
            ("payment_method_types[]", PAYMENT_METHOD_TYPES.get(request.method_type, "card")),
            ("description", f"{request.type} {request.reference}"),
        ]
        fields.extend((f"metadata[{key}]", value) for key, value in metadata.items())
        headers = self._headers()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Idempotency-Key"] = request.idempotency_key
        return UpstreamRequest(
            method="POST",
            path="/v1/payment_intents",
            headers=headers,
            body=urlencode(fields).encode("ascii"),
        )

    def get_request(self, provider_reference: str) -> UpstreamRequest:
        # Quoted whole so a hostile reference cannot walk to another path.
        return UpstreamRequest(
            method="GET",
            path=f"/v1/payment_intents/{quote(provider_reference, safe='')}",
            headers=self._headers(),
        )

    def health_request(self) -> UpstreamRequest:
        return UpstreamRequest(
            method="GET", path="/v1/payment_intents?limit=1", headers=self._headers()
        )

    # ---- responses ---------------------------------------------------------------------

    def parse_create(self, response: UpstreamResponse, request: PaymentRequest) -> PaymentResult:
        return _parse(response, "create")

    def parse_get(self, response: UpstreamResponse) -> PaymentResult:
        return _parse(response, "get")

    # ---- webhooks ----------------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: float
    ) -> list[PaymentEvent]:
        if not self._webhook_secret:
            raise WebhookRejected("no webhook secret configured")
        signature_header = base.header(headers, "Stripe-Signature")
        if not signature_header:
            raise WebhookRejected("missing Stripe-Signature header")
        timestamp, signatures = _parse_signature_header(signature_header)
        signed = f"{timestamp}.".encode("ascii") + body
        expected = hmac.new(
            self._webhook_secret.encode("utf-8"), signed, hashlib.sha256
        ).hexdigest().encode("ascii")
        # Every candidate is compared, in constant time each, so timing says nothing.
        matched = False
        for candidate in signatures:
            if hmac.compare_digest(expected, candidate.encode("utf-8", errors="replace")):
                matched = True
        if not matched:
            raise WebhookRejected("signature mismatch")
        if not math.isfinite(now) or abs(now - timestamp) > WEBHOOK_TOLERANCE_S:
            raise WebhookRejected("timestamp outside tolerance")
        try:
            event = base.decode_json(body)
        except (ValueError, RecursionError):
            raise WebhookRejected("body is not JSON") from None
        return _events(event)

    def webhook_ack(self) -> tuple[int, str, bytes]:
        return 200, "application/json", b'{"received": true}'


# ---- parsing helpers (module level: pure functions of the answer) ------------------------


def _parse(response: UpstreamResponse, operation: Operation) -> PaymentResult:
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
    err_type = _str(error.get("type")) if error else None
    code = _str(error.get("code")) if error else None
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
            retry_after_s=_retry_after(response.headers),
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
        decline_code = _str(error.get("decline_code")) or _str(error.get("code"))
        intent = _payment_result(error.get("payment_intent"))
        if intent is not None:
            return PaymentResult(
                status="failed",
                provider_reference=intent.provider_reference,
                amount=intent.amount,
                currency=intent.currency,
                decline_code=decline_code,
            )
    # A decline without an intent to point at: refused, but not something to re-send elsewhere.
    raise _error(message, decline_code or provider_code, status, rejected=True)


def _decode(body: bytes) -> Any:
    try:
        return base.decode_json(body)
    except (ValueError, RecursionError):
        return None


def _payment_result(obj: Any) -> PaymentResult | None:
    if not isinstance(obj, dict):
        return None
    intent_id = _str(obj.get("id"))
    raw_status = _str(obj.get("status"))
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
        amount=_int(obj.get("amount")),
        currency=_currency(obj.get("currency")),
        next_action=next_action,
    )


def _next_action(obj: dict[str, Any]) -> NextAction | None:
    action = obj.get("next_action")
    if isinstance(action, dict):
        redirect = action.get("redirect_to_url")
        if isinstance(redirect, dict):
            url = _str(redirect.get("url"))
            if url:
                return NextAction(type="redirect", url=url)
    client_secret = _str(obj.get("client_secret"))
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
        text = _str(error.get("message")) or ""
        return f"stripe {status} {err_type or 'error'}: {text[:200]}"
    return f"stripe {status}: {base.json_error_text(raw)}"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = base.header(headers, "Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP-date; Stripe sends seconds
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _parse_signature_header(value: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:
            val = val.strip()
            # Bounded so a huge value cannot overflow the tolerance arithmetic.
            if not val.isascii() or not val.isdigit() or len(val) > 12:
                raise WebhookRejected("malformed Stripe-Signature timestamp")
            timestamp = int(val)
        elif key == "v1":
            signatures.append(val.strip())
    if timestamp is None:
        raise WebhookRejected("Stripe-Signature has no timestamp")
    if not signatures:
        raise WebhookRejected("Stripe-Signature has no v1 signature")
    return timestamp, signatures


def _events(event: Any) -> list[PaymentEvent]:
    if not isinstance(event, dict):
        raise WebhookRejected("event is not an object")
    event_id = _str(event.get("id"))
    event_type = _str(event.get("type"))
    if event_id is None or event_type is None:
        raise WebhookRejected("event has no id or type")
    unified = _EVENT_TYPES.get(event_type)
    if unified is None:
        return []
    data = event.get("data")
    intent = data.get("object") if isinstance(data, dict) else None
    intent_id = _str(intent.get("id")) if isinstance(intent, dict) else None
    if not isinstance(intent, dict) or intent_id is None:
        raise WebhookRejected("event carries no payment intent")
    metadata = intent.get("metadata")
    merchant_reference = (
        _str(metadata.get("gateway_reference")) if isinstance(metadata, dict) else None
    )
    return [
        PaymentEvent(
            event_id=event_id,
            type=unified,
            provider_reference=intent_id,
            merchant_reference=merchant_reference,
            amount=_int(intent.get("amount")),
            currency=_currency(intent.get("currency")),
            occurred_at=_iso_utc(event.get("created")),
        )
    ]


def _iso_utc(value: Any) -> str | None:
    seconds = _int(value)
    if seconds is None:
        return None
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    # bool is an int subclass; a JSON true is not an amount.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _currency(value: Any) -> str | None:
    text = _str(value)
    return text.upper() if text else None


def create(name: str, credentials: Mapping[str, Any]) -> StripeAdapter:
    secret_key = credentials.get("secret_key")
    if not isinstance(secret_key, str) or not secret_key:
        raise ValueError(f"{name}: stripe needs credentials.secret_key (an sk_... key)")
    if secret_key != secret_key.strip() or any(c.isspace() for c in secret_key):
        raise ValueError(f"{name}: stripe secret_key contains whitespace")
    if not secret_key.startswith(_SECRET_KEY_PREFIXES):
        # A publishable key (pk_...) is the usual mix-up; it can create nothing.
        raise ValueError(
            f"{name}: stripe secret_key must be a secret (sk_...) or restricted (rk_...) key"
        )
    webhook_secret = credentials.get("webhook_secret")
    if webhook_secret is not None:
        if not isinstance(webhook_secret, str) or not webhook_secret.startswith(
            _WEBHOOK_SECRET_PREFIX
        ):
            raise ValueError(
                f"{name}: stripe webhook_secret must be an endpoint secret (whsec_...)"
            )
        if any(c.isspace() for c in webhook_secret):
            raise ValueError(f"{name}: stripe webhook_secret contains whitespace")
    return StripeAdapter(name, secret_key, webhook_secret)
