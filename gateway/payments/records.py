"""The payment records the gateway keeps, and the rules for changing them.

A record is the unified Payment plus private fields (`_extra`: the gateway reference, the
player, the type). Statuses only move forward (`advance`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from gateway.payments.ids import PaymentRef
from policies.ports import StoreUnavailable

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway

log = logging.getLogger("gateway.payments")
RECORD_TTL_S = 30 * 24 * 3600
# Statuses only move forward: a late `processing` must never overwrite `succeeded`.
STATUS_RANK = {
    "pending": 0,
    "requires_action": 1,
    "processing": 2,
    "succeeded": 3,
    "failed": 3,
    "canceled": 3,
}


@dataclass
class Attempt:
    provider: str
    outcome: str
    error_code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "outcome": self.outcome, "error_code": self.error_code}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def payment_body(
    ref: PaymentRef,
    payment_id: str,
    status: str,
    provider_reference: str | None,
    next_action: dict[str, Any] | None,
    attempts: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "status": status,
        "amount": ref.amount,
        "currency": ref.currency,
        "provider": ref.provider,
        "provider_reference": provider_reference or None,
        "next_action": next_action,
        "attempts": attempts,
        "created_at": iso(ref.created_at),
    }


# ---- the payment records the gateway keeps --------------------------------------------


def _record_key(payment_id: str) -> str:
    return "payment:" + payment_id


def _ref_key(provider: str, provider_reference: str) -> str:
    return f"payref:{provider}:{provider_reference}"


async def save_payment(gw: Gateway, payment: dict[str, Any], extra: dict[str, Any]) -> None:
    try:
        await _save_payment(gw, payment, extra)
    except StoreUnavailable as exc:
        # The answer still goes out; GET falls back to asking the provider named in the id.
        log.error(
            "payment record not saved",
            extra={"payment_id": payment["payment_id"], "error": str(exc)},
        )


async def _save_payment(gw: Gateway, payment: dict[str, Any], extra: dict[str, Any]) -> None:
    record = {**payment, "_extra": extra}
    await gw.store.set(_record_key(payment["payment_id"]), orjson.dumps(record), RECORD_TTL_S)
    if payment.get("provider_reference"):
        await gw.store.set(
            _ref_key(payment["provider"], payment["provider_reference"]),
            payment["payment_id"].encode(),
            RECORD_TTL_S,
        )
    reference = extra.get("reference")
    if reference:
        await gw.store.set(
            f"payref:{payment['provider']}:{reference}",
            payment["payment_id"].encode(),
            RECORD_TTL_S,
        )


async def load_payment(gw: Gateway, payment_id: str) -> dict[str, Any] | None:
    try:
        raw = await gw.store.get(_record_key(payment_id))
    except StoreUnavailable:
        return None  # the id itself still names the provider to ask
    return orjson.loads(raw) if raw else None


async def find_payment_id(gw: Gateway, provider: str, reference: str) -> str | None:
    raw = await gw.store.get(_ref_key(provider, reference))
    return raw.decode() if raw else None


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


# `failed` is not among them: a Stripe intent whose card was declined can still succeed with
# another card.
TERMINAL = frozenset({"succeeded", "canceled"})


def advance(current: str, new: str) -> str:
    """Forward only, and a settled payment stays settled (a late `failed` after `succeeded`
    is news about something else, never a reason to show the player a failure)."""
    if current in TERMINAL:
        return current
    return new if STATUS_RANK.get(new, 0) >= STATUS_RANK.get(current, 0) else current
