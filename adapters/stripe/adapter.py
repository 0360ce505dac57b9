"""The Stripe adapter: its settings, the requests it builds, and its construction."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote, urlencode

from adapters import base
from adapters.base import (
    AdapterSpec,
    PaymentEvent,
    PaymentRequest,
    PaymentResult,
    ProviderError,
    RefundRequest,
    RefundResult,
    UpstreamRequest,
    UpstreamResponse,
    WebhookRejected,
)
from adapters.stripe.answers import parse_answer, parse_refund_answer
from adapters.stripe.webhooks import events_of, parse_signature_header

SPEC = AdapterSpec(
    kind="payments",
    credentials=("secret_key",),
    secrets=frozenset({"secret_key", "webhook_secret"}),
    optional=("webhook_secret",),
    payment_types=frozenset({"deposit"}),
    # Stripe takes SEPA Direct Debit in EUR only and crypto in USD only.
    payment_methods={
        "card": None,
        "ewallet": None,
        "bank_transfer": frozenset({"EUR"}),
        "crypto": frozenset({"USD"}),
    },
    # Stripe dedupes a refund sent again with the same Idempotency-Key.
    refunds=True,
    refunds_idempotent=True,
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
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})


_SECRET_KEY_PREFIXES = ("sk_", "rk_")
_WEBHOOK_SECRET_PREFIX = "whsec_"


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
        refusal = SPEC.refusal(request.type, request.method_type, request.currency)
        if refusal is not None:
            raise ProviderError(
                f"stripe {refusal}",
                provider_code="unsupported_payment_method",
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

    def refund_request(self, request: RefundRequest) -> UpstreamRequest:
        fields: list[tuple[str, str]] = [
            ("payment_intent", request.payment_reference),
            ("amount", str(int(request.amount))),
            ("metadata[gateway_refund_id]", request.reference),
        ]
        if request.reason in REFUND_REASONS:
            fields.append(("reason", request.reason))
        headers = self._headers()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Idempotency-Key"] = request.idempotency_key
        return UpstreamRequest(
            method="POST", path="/v1/refunds", headers=headers, body=urlencode(fields).encode()
        )

    def parse_refund(self, response: UpstreamResponse, request: RefundRequest) -> RefundResult:
        return parse_refund_answer(response)

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
        return parse_answer(response, "create")

    def parse_get(self, response: UpstreamResponse) -> PaymentResult:
        return parse_answer(response, "get")

    # ---- webhooks ----------------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: float
    ) -> list[PaymentEvent]:
        if not self._webhook_secret:
            raise WebhookRejected("no webhook secret configured")
        signature_header = base.header(headers, "Stripe-Signature")
        if not signature_header:
            raise WebhookRejected("missing Stripe-Signature header")
        timestamp, signatures = parse_signature_header(signature_header)
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
            event = base.decode_json(body, base.MAX_SMALL_JSON_BYTES)
        except (ValueError, RecursionError):
            raise WebhookRejected("body is not JSON") from None
        return events_of(event)

    def webhook_ack(self, body: bytes = b"") -> tuple[int, str, bytes]:
        return 200, "application/json", b'{"received": true}'


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
