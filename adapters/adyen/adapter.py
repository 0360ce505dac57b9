"""The Adyen adapter: its settings, the requests it builds, and its construction."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

from adapters.adyen.answers import error_of, is_text, parse_payment_answer
from adapters.adyen.payouts import (
    TRANSFERS_PATH,
    parse_transfer,
    transfer_payload,
    verify_transfer_webhook,
)
from adapters.adyen.webhooks import verify_notifications
from adapters.base import (
    MAX_SMALL_JSON_BYTES,
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
    decode_json,
    json_error_text,
)
from adapters.base import header as base_header

SPEC = AdapterSpec(
    kind="payments",
    credentials=("api_key", "merchant_account"),
    secrets=frozenset({"api_key", "hmac_key"}),
    optional=("hmac_key", "balance_account_id"),
    payment_types=frozenset({"deposit", "withdrawal"}),
    payment_methods={"card": None, "ewallet": None, "bank_transfer": None},
    # Payouts are bank transfers to the player's account (the Transfers API).
    payout_methods={"bank_transfer": None},
    # Adyen dedupes a refund sent again with the same Idempotency-Key.
    refunds=True,
    refunds_idempotent=True,
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
# The gateway's refund reasons as Adyen's merchantRefundReason.
REFUND_REASONS = {
    "requested_by_customer": "CUSTOMER REQUEST",
    "duplicate": "DUPLICATE",
    "fraudulent": "FRAUD",
}

_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


class AdyenAdapter:
    kind: Literal["payments"] = "payments"

    def __init__(
        self,
        name: str,
        api_key: str,
        merchant_account: str,
        hmac_key: bytes | None,
        balance_account_id: str | None = None,
    ) -> None:
        self.name = name
        self.merchant_account = merchant_account
        self.balance_account_id = balance_account_id
        self._api_key = api_key
        self._hmac_key = hmac_key

    def __repr__(self) -> str:
        # The API key and HMAC key never appear in logs or tracebacks.
        return f"AdyenAdapter(name={self.name!r}, merchant_account={self.merchant_account!r})"

    # ---- requests ----------------------------------------------------------------------

    def create_request(self, request: PaymentRequest) -> UpstreamRequest:
        if request.type == "withdrawal":
            return self._payout_request(request)
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

    def _payout_request(self, request: PaymentRequest) -> UpstreamRequest:
        if request.method_type != "bank_transfer":
            raise _refused_locally(
                f"Adyen pays players out by bank transfer only, not {request.method_type}",
                "unsupported_payment_method",
            )
        if not self.balance_account_id:
            raise _refused_locally(
                "Adyen payouts need credentials.balance_account_id (the balance account paid "
                "out from)",
                "unsupported_operation",
            )
        if request.bank_account is None:
            raise _refused_locally(
                "Adyen pays out to a bank account: send method.bank_account (iban, "
                "holder_name)",
                "missing_bank_account",
            )
        payload = transfer_payload(request, self.balance_account_id)
        return self._post(TRANSFERS_PATH, payload, {"Idempotency-Key": request.idempotency_key})

    def refund_request(self, request: RefundRequest) -> UpstreamRequest:
        payload: dict[str, Any] = {
            "amount": {"value": request.amount, "currency": request.currency},
            "merchantAccount": self.merchant_account,
            "reference": request.reference,
        }
        reason = REFUND_REASONS.get(request.reason or "")
        if reason:
            payload["merchantRefundReason"] = reason
        path = f"{PAYMENTS_PATH}/{quote(request.payment_reference, safe='')}/refunds"
        return self._post(path, payload, {"Idempotency-Key": request.idempotency_key})

    def parse_refund(self, response: UpstreamResponse, request: RefundRequest) -> RefundResult:
        if not 200 <= response.status < 300:
            raise error_of(response)
        try:
            data = decode_json(response.body, MAX_SMALL_JSON_BYTES)
        except ValueError:
            data = None
        psp = data.get("pspReference") if isinstance(data, dict) else None
        if not is_text(psp):
            raise ProviderError(
                f"Adyen answered {response.status} to a refund without its pspReference: "
                f"{json_error_text(response.body)}",
                status=response.status,
                retry_same=True,
            )
        # "received": Adyen has the request; the REFUND webhook tells how it ended.
        return RefundResult(status="pending", provider_reference=psp)

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
        if request.type == "withdrawal":
            if not 200 <= response.status < 300:
                raise error_of(response)
            return parse_transfer(response, request)
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
        """The events of one notification batch (or of one transfer webhook, signed in its
        HmacSignature header); WebhookRejected if anything fails to verify.

        `now` is unused: Adyen's signatures cover no timestamp (see the package docstring).
        """
        if self._hmac_key is None:
            raise WebhookRejected("no hmac_key is configured for Adyen webhooks")
        if base_header(headers, "HmacSignature") is not None:
            return verify_transfer_webhook(self._hmac_key, headers, body)
        return verify_notifications(self._hmac_key, body)

    def webhook_ack(self, body: bytes = b"") -> tuple[int, str, bytes]:
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
    balance_account = credentials.get("balance_account_id")
    if balance_account is not None and not is_text(balance_account):
        raise ValueError(f"provider {name!r}: balance_account_id must be a non-empty string")
    return AdyenAdapter(
        name,
        api_key=api_key.strip(),
        merchant_account=merchant_account.strip(),
        hmac_key=_hmac_key(name, credentials.get("hmac_key")),
        balance_account_id=balance_account.strip() if balance_account else None,
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
