"""The Adyen adapter: its settings, the requests it builds, and its construction."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from adapters.adyen.answers import is_text, parse_payment_answer
from adapters.adyen.webhooks import verify_notifications
from adapters.base import (
    AdapterSpec,
    PaymentEvent,
    PaymentRequest,
    PaymentResult,
    ProviderError,
    UpstreamRequest,
    UpstreamResponse,
    WebhookRejected,
)

SPEC = AdapterSpec(
    kind="payments",
    credentials=("api_key", "merchant_account"),
    secrets=frozenset({"api_key", "hmac_key"}),
    optional=("hmac_key",),
    payment_types=frozenset({"deposit"}),
    payment_methods={"card": None, "ewallet": None, "bank_transfer": None},
)

API_VERSION = "v71"
PAYMENTS_PATH = f"/{API_VERSION}/payments"
PAYMENT_METHODS_PATH = f"/{API_VERSION}/paymentMethods"

PAYMENT_METHOD_TYPES: dict[str, str] = {
    "card": "scheme",
    "ewallet": "paypal",
    "bank_transfer": "bankTransfer_IBAN",
}

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
        return parse_payment_answer(response, request)

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

        `now` is unused: Adyen's signature covers no timestamp (see the package docstring).
        """
        if self._hmac_key is None:
            raise WebhookRejected("no hmac_key is configured for Adyen webhooks")
        return verify_notifications(self._hmac_key, body)

    def webhook_ack(self) -> tuple[int, str, bytes]:
        return WEBHOOK_ACK


def _refused_locally(message: str, code: str) -> ProviderError:
    # Nothing was sent, so another provider may take the payment.
    return ProviderError(message, provider_code=code, rejected=True, failover_safe=True)


def create(name: str, credentials: Mapping[str, Any]) -> AdyenAdapter:
    api_key = credentials.get("api_key")
    if not is_text(api_key):
        raise ValueError(f"provider {name!r}: api_key must be a non-empty string")
    merchant_account = credentials.get("merchant_account")
    if not is_text(merchant_account):
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
