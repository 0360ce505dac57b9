"""What one Adyen simulator remembers: payments, stored idempotent answers, webhook
deliveries, its settings and the tasks and HTTP session it owns; and the outcomes a payment
may move to.
"""

from __future__ import annotations

import asyncio
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

_PSP_ALPHABET = string.ascii_uppercase + string.digits

# outcome -> (states it may leave, new state, eventCode, success)
OUTCOMES: dict[str, tuple[frozenset[str], str, str, bool]] = {
    "authorised": (frozenset({"pending"}), "authorised", "AUTHORISATION", True),
    "refused": (frozenset({"pending"}), "refused", "AUTHORISATION", False),
    "cancelled": (frozenset({"pending", "authorised"}), "cancelled", "CANCELLATION", True),
    "refund": (frozenset({"authorised"}), "refunded", "REFUND", True),
}
MODIFICATIONS = frozenset({"CANCELLATION", "REFUND"})


@dataclass
class SimPayment:
    psp_reference: str
    reference: str
    merchant_account: str
    value: int
    currency: str
    method_type: str
    state: str  # pending | authorised | refused | cancelled | refunded
    refunded: int = 0  # minor units asked back by refunds not failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "pspReference": self.psp_reference,
            "merchantReference": self.reference,
            "merchantAccount": self.merchant_account,
            "amount": {"value": self.value, "currency": self.currency},
            "paymentMethodType": self.method_type,
            "state": self.state,
            "refunded": self.refunded,
        }


@dataclass
class SimRefund:
    psp_reference: str
    payment: SimPayment
    reference: str
    value: int
    state: str = "received"  # received | refunded | failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "pspReference": self.psp_reference,
            "paymentPspReference": self.payment.psp_reference,
            "reference": self.reference,
            "amount": {"value": self.value, "currency": self.payment.currency},
            "state": self.state,
        }


@dataclass
class SimTransfer:
    id: str
    reference: str
    value: int
    currency: str
    balance_account_id: str
    iban: str
    status: str = "received"  # received | booked | failed | returned
    sequence: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "amount": {"value": self.value, "currency": self.currency},
            "balanceAccountId": self.balance_account_id,
            "iban": self.iban,
            "status": self.status,
        }


@dataclass
class StoredAnswer:
    body: Any  # the request's decoded JSON, compared on a replay
    status: int
    answer: dict[str, Any]


@dataclass
class AdyenState:
    api_key: str
    merchant_account: str
    webhook_url: str | None
    hmac_key: bytes | None
    auto_complete_s: float | None
    payments: dict[str, SimPayment] = field(default_factory=dict)
    refunds: dict[str, SimRefund] = field(default_factory=dict)
    transfers: dict[str, SimTransfer] = field(default_factory=dict)
    idempotency: dict[str, StoredAnswer] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)  # keys whose first request still runs
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None


STATE = web.AppKey("adyen_state", AdyenState)


def new_psp_reference() -> str:
    return "".join(secrets.choice(_PSP_ALPHABET) for _ in range(16))
