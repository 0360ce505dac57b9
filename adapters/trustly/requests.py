"""Trustly JSON-RPC 1.1 requests: Deposit, Withdraw, Refund and Balance, signed.

Every call is `POST /api/1` with `{"method", "params": {"Signature", "UUID", "Data"},
"version": "1.1"}`; the API credentials travel inside `Data` (`Username`, `Password`), so the
signature covers them too. Amounts are decimal strings with the currency's decimals
("25.00"). The UUID of a payment's or a refund's call is derived from its idempotency key:
a retry is the same request, and the answer can be matched to it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import PaymentRequest, RefundRequest, UpstreamRequest
from adapters.money import to_decimal
from adapters.trustly.signing import sign

API_PATH = "/api/1"
_NAMESPACE = uuid.UUID("6f1c3d4e-8a57-4c1e-9d0a-2b7e5f3a9c11")

# Trustly shows its pages in the player's language; a country's usual locale, else English.
LOCALES = {
    "SE": "sv_SE",
    "FI": "fi_FI",
    "NO": "nb_NO",
    "DK": "da_DK",
    "DE": "de_DE",
    "AT": "de_AT",
    "NL": "nl_NL",
    "EE": "et_EE",
    "LV": "lv_LV",
    "LT": "lt_LT",
    "PL": "pl_PL",
    "ES": "es_ES",
    "CZ": "cs_CZ",
    "SK": "sk_SK",
}


def call_uuid(method: str, idempotency_key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{method}\0{idempotency_key}"))


def amount_text(minor: int, currency: str) -> str:
    return str(to_decimal(minor, currency))


class RequestBuilder:
    def __init__(
        self, username: str, password: str, key: rsa.RSAPrivateKey, notification_url: str
    ) -> None:
        self._username = username
        self._password = password
        self._key = key
        self.notification_url = notification_url

    def rpc(self, method: str, call_id: str, data: Mapping[str, Any]) -> UpstreamRequest:
        signed_data = {"Username": self._username, "Password": self._password, **data}
        payload = {
            "method": method,
            "params": {
                "Signature": sign(self._key, method, call_id, signed_data),
                "UUID": call_id,
                "Data": signed_data,
            },
            "version": "1.1",
        }
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return UpstreamRequest(
            method="POST",
            path=API_PATH,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
        )

    def deposit(self, request: PaymentRequest) -> UpstreamRequest:
        attributes = _player_attributes(request)
        attributes.update(
            Amount=amount_text(request.amount, request.currency),
            Currency=request.currency,
        )
        return self.rpc("Deposit", call_uuid("Deposit", request.idempotency_key), {
            "NotificationURL": self.notification_url,
            "EndUserID": request.player_id,
            "MessageID": request.reference,
            "Attributes": attributes,
        })

    def withdraw(self, request: PaymentRequest) -> UpstreamRequest:
        # The player confirms the amount in Trustly's flow; bounding it both ways leaves
        # only the amount the casino approved.
        amount = amount_text(request.amount, request.currency)
        attributes = _player_attributes(request)
        attributes.update(SuggestedMinAmount=amount, SuggestedMaxAmount=amount)
        return self.rpc("Withdraw", call_uuid("Withdraw", request.idempotency_key), {
            "NotificationURL": self.notification_url,
            "EndUserID": request.player_id,
            "MessageID": request.reference,
            "Currency": request.currency,
            "Attributes": attributes,
        })

    def refund(self, request: RefundRequest) -> UpstreamRequest:
        return self.rpc("Refund", call_uuid("Refund", request.idempotency_key), {
            "OrderID": request.payment_reference,
            "Amount": amount_text(request.amount, request.currency),
            "Currency": request.currency,
            "Attributes": {"ExternalReference": request.reference},
        })

    def balance(self) -> UpstreamRequest:
        return self.rpc("Balance", str(uuid.uuid4()), {"Attributes": None})


def _player_attributes(request: PaymentRequest) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "Locale": LOCALES.get(request.country or "", "en_GB"),
    }
    if request.country:
        attributes["Country"] = request.country
    if request.return_url:
        attributes["SuccessURL"] = request.return_url
        attributes["FailURL"] = request.return_url
    return attributes
