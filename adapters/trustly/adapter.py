"""The Trustly adapter: its settings, what it can take, and its construction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import (
    AdapterSpec,
    NextAction,
    PaymentEvent,
    PaymentRequest,
    PaymentResult,
    ProviderError,
    RefundRequest,
    RefundResult,
    UpstreamRequest,
    UpstreamResponse,
)
from adapters.trustly.answers import signed_result, text_of
from adapters.trustly.notifications import notification_answer, verify_notification
from adapters.trustly.requests import RequestBuilder, call_uuid
from adapters.trustly.signing import load_private_key, load_public_key

# The currencies Trustly settles (all with two decimals, as its amounts are written).
CURRENCIES = frozenset({"EUR", "SEK", "NOK", "DKK", "GBP", "PLN", "CZK"})

SPEC = AdapterSpec(
    kind="payments",
    credentials=("username", "password", "private_key", "trustly_public_key", "notification_url"),
    secrets=frozenset({"password", "private_key"}),
    payment_types=frozenset({"deposit", "withdrawal"}),
    payment_methods={"bank_transfer": CURRENCIES},
    payout_methods={"bank_transfer": CURRENCIES},
    refunds=True,
    # A Refund call carries no key Trustly dedupes on: one sent twice may refund twice.
    refunds_idempotent=False,
)


class TrustlyAdapter:
    kind: Literal["payments"] = "payments"

    def __init__(
        self,
        name: str,
        builder: RequestBuilder,
        private_key: rsa.RSAPrivateKey,
        trustly_key: rsa.RSAPublicKey,
    ) -> None:
        self.name = name
        self._builder = builder
        self._private_key = private_key
        self._trustly_key = trustly_key

    def __repr__(self) -> str:
        # The password and the private key never reach a log line through repr().
        return f"TrustlyAdapter(name={self.name!r})"

    # ---- payments ----------------------------------------------------------------------

    def create_request(self, request: PaymentRequest) -> UpstreamRequest:
        refusal = SPEC.refusal(request.type, request.method_type, request.currency)
        if refusal is not None:
            raise ProviderError(
                f"trustly {refusal}",
                provider_code="unsupported_payment_method",
                rejected=True,
                failover_safe=True,
            )
        if request.type == "withdrawal":
            return self._builder.withdraw(request)
        return self._builder.deposit(request)

    def parse_create(self, response: UpstreamResponse, request: PaymentRequest) -> PaymentResult:
        method = "Withdraw" if request.type == "withdrawal" else "Deposit"
        data = signed_result(
            response, self._trustly_key, method, call_uuid(method, request.idempotency_key),
            "payment",
        )
        order_id, url = text_of(data.get("orderid")), data.get("url")
        if order_id is None or not isinstance(url, str) or not url:
            raise ProviderError(
                f"trustly answered {method} without orderid and url",
                status=response.status,
                retry_same=True,
            )
        # The player completes the payment at Trustly's URL; notifications tell the outcome.
        # A payout waits for the player too, but is not yet "requires_action" news: pending.
        status: Literal["pending", "requires_action"] = (
            "pending" if request.type == "withdrawal" else "requires_action"
        )
        return PaymentResult(
            status=status,
            provider_reference=order_id,
            amount=request.amount,
            currency=request.currency,
            next_action=NextAction(type="redirect", url=url),
        )

    def get_request(self, provider_reference: str) -> UpstreamRequest | None:
        return None  # notifications tell every outcome

    def parse_get(self, response: UpstreamResponse) -> PaymentResult:
        raise ProviderError("trustly payments are not read back", status=response.status)

    def health_request(self) -> UpstreamRequest:
        return self._builder.balance()

    # ---- refunds -----------------------------------------------------------------------

    def refund_request(self, request: RefundRequest) -> UpstreamRequest:
        return self._builder.refund(request)

    def parse_refund(self, response: UpstreamResponse, request: RefundRequest) -> RefundResult:
        data = signed_result(
            response, self._trustly_key, "Refund", call_uuid("Refund", request.idempotency_key),
            "refund",
        )
        if str(data.get("result")) != "1":
            raise ProviderError(
                "trustly did not accept the refund", rejected=True, failover_safe=True
            )
        # Accepted: Trustly refunds once the deposit has settled; notifications tell when.
        return RefundResult(status="pending", provider_reference=None)

    # ---- notifications -----------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: float
    ) -> list[PaymentEvent]:
        return verify_notification(self._trustly_key, body)

    def webhook_ack(self, body: bytes = b"") -> tuple[int, str, bytes]:
        return 200, "application/json", notification_answer(self._private_key, body)


def create(name: str, credentials: Mapping[str, Any]) -> TrustlyAdapter:
    texts: dict[str, str] = {}
    for key in SPEC.credentials:
        value = credentials.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"provider {name!r}: trustly needs credentials.{key}")
        texts[key] = value.strip()
    url = urlsplit(texts["notification_url"])
    if url.scheme not in ("http", "https") or not url.hostname or "?" in texts["notification_url"]:
        raise ValueError(
            f"provider {name!r}: trustly notification_url must be an http(s) URL without a "
            f"query: the gateway's POST /v1/webhooks/{name}"
        )
    try:
        private_key = load_private_key(texts["private_key"])
    except (ValueError, TypeError):
        # The value itself stays out of the message: it is a secret.
        raise ValueError(
            f"provider {name!r}: trustly private_key must be a PEM RSA private key"
        ) from None
    try:
        trustly_key = load_public_key(texts["trustly_public_key"])
    except (ValueError, TypeError):
        raise ValueError(
            f"provider {name!r}: trustly_public_key must be Trustly's PEM RSA public key"
        ) from None
    builder = RequestBuilder(
        texts["username"], texts["password"], private_key, texts["notification_url"]
    )
    return TrustlyAdapter(name, builder, private_key, trustly_key)
