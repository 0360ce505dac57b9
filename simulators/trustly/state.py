"""What one Trustly simulator remembers: orders (deposits and withdrawals), their refunds,
the MessageIDs used, notification deliveries, its keys and settings, and the tasks and HTTP
session it owns."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class SimRefund:
    amount: Decimal
    external_reference: str | None
    state: str = "queued"  # queued | done | failed


@dataclass
class Order:
    order_id: str
    kind: str  # Deposit | Withdraw
    message_id: str
    end_user_id: str
    notification_url: str
    currency: str
    amount: Decimal  # a withdrawal's: the pinned suggested amount
    state: str = "open"  # open | pending | credited | debited | sent | canceled | returned
    refunds: list[SimRefund] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "orderid": self.order_id,
            "method": self.kind,
            "messageid": self.message_id,
            "enduserid": self.end_user_id,
            "currency": self.currency,
            "amount": f"{self.amount:.2f}",
            "state": self.state,
            "refunds": [
                {"amount": f"{r.amount:.2f}", "external_reference": r.external_reference,
                 "state": r.state}
                for r in self.refunds
            ],
        }


@dataclass
class TrustlyState:
    username: str
    password: str
    merchant_key: rsa.RSAPublicKey
    trustly_key: rsa.RSAPrivateKey
    checkout_url: str
    auto_complete_s: float | None
    orders: dict[str, Order] = field(default_factory=dict)
    message_ids: set[str] = field(default_factory=set)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None
    order_numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1187741486))
    notification_numbers: itertools.count[int] = field(
        default_factory=lambda: itertools.count(4876513450)
    )

    def new_order_id(self) -> str:
        return str(next(self.order_numbers))


STATE = web.AppKey("trustly_state", TrustlyState)
