"""Provider webhooks applied to payments (received at POST /v1/webhooks/{provider}).

`{provider}` is a configured provider whose adapter verifies webhooks (Stripe, Adyen); any
other name is a 404. The raw body (at most 1 MiB) is verified by the adapter exactly as it
arrived; a missing, wrong or stale signature, or a changed body, is a 401 problem
(`unauthorized`) and changes nothing. The policy step (`apply_policies`) asks no API key here: the
provider's signature is the authentication.

Each verified event:
- is named `evt_<hash of provider and the provider's event id>`, so a redelivery gets the
  same id, and is applied once: a `whevent:<id>` record (7 days) is claimed with
  `set_if_absent` before applying, and a redelivery only gets the acknowledgement;
- is matched to the payment by the provider's reference, else by the gateway reference the
  provider echoes (Stripe `metadata.gateway_reference`, Adyen `merchantReference`);
- for an unknown payment, is acknowledged and kept as `whorphan:<id>` (7 days) with a log
  line, so it can be reconciled by hand, not refused (the provider would retry for days);
- moves the payment's status forward only; `succeeded` and `canceled` are final, and a
  refund keeps `succeeded` (the Payment status has no `refunded`) but is still announced;
- when it is news for the payment, goes out as a normalized event (`gateway.events`).

The answer is the provider's acknowledgement (Adyen needs the literal `[accepted]`). When
the store is unreachable the answer is 503, so the provider delivers the event again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from adapters.base import PaymentEvent
from gateway.payments.records import (
    advance,
    find_payment_id,
    iso,
    load_payment,
    public,
    save_payment,
)
from policies.ports import StoreUnavailable

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway

log = logging.getLogger("gateway.webhooks")

DEDUPE_TTL_S = 7 * 24 * 3600
ORPHAN_TTL_S = 7 * 24 * 3600
DEDUPE_PREFIX = "whevent:"
ORPHAN_PREFIX = "whorphan:"

STATUS_OF_EVENT = {
    "payment.succeeded": "succeeded",
    "payment.failed": "failed",
    "payment.canceled": "canceled",
    "payment.processing": "processing",
    "payment.requires_action": "requires_action",
}
REFUNDED = "payment.refunded"
# Neither Stripe nor Adyen moves a payment out of these; a late event must not either.
FINAL = frozenset({"succeeded", "canceled"})

Locks = weakref.WeakValueDictionary[str, asyncio.Lock]
Publish = Callable[[Mapping[str, Any], str | None], None]


def gateway_event_id(provider: str, provider_event_id: str) -> str:
    digest = hashlib.sha256(f"{provider}\x00{provider_event_id}".encode()).hexdigest()
    return "evt_" + digest[:32]


def next_status(current: str, event_type: str) -> tuple[str, bool]:
    """(the payment's status after the event, whether the event is announced)."""
    wanted = STATUS_OF_EVENT.get(event_type)
    if wanted is None:
        return current, event_type == REFUNDED
    if current in FINAL and wanted != current:
        return current, False
    status = advance(current, wanted)
    # Announced also when the status already was `wanted` (a GET may have read it from the
    # provider first): the backend hears of every outcome from an event.
    return status, status == wanted


# ---- one event -------------------------------------------------------------------------------


async def handle_event(
    gw: Gateway, provider: str, event: PaymentEvent, *, locks: Locks, publish: Publish
) -> None:
    """Apply one verified event once; `publish` announces it when it is news."""
    event_id = gateway_event_id(provider, event.event_id)
    payment_id = await _find(gw, provider, event)
    if payment_id is None:
        await _orphan(gw, provider, event_id, event)
        return
    claim = DEDUPE_PREFIX + event_id
    if not await gw.store.set_if_absent(claim, b"1", DEDUPE_TTL_S):
        log.info("duplicate webhook event acknowledged", extra={"event_id": event_id})
        return
    lock = locks.get(payment_id)
    if lock is None:
        lock = locks[payment_id] = asyncio.Lock()
    try:
        # One payment's events are applied and announced one at a time, in arrival order.
        async with lock:
            record = await load_payment(gw, payment_id)
            if record is None:
                await gw.store.delete(claim)  # the record expired meanwhile
                await _orphan(gw, provider, event_id, event)
                return
            announced = await _apply(gw, provider, event_id, payment_id, record, event)
            if announced is not None:
                publish(announced, record.get("_extra", {}).get("player_id"))
    except BaseException:
        # Not applied: a redelivery must find the event unclaimed.
        try:
            await gw.store.delete(claim)
        except StoreUnavailable:
            log.error("dedupe claim left behind", extra={"event_id": event_id})
        raise


async def _find(gw: Gateway, provider: str, event: PaymentEvent) -> str | None:
    for reference in (event.provider_reference, event.merchant_reference):
        if reference:
            payment_id = await find_payment_id(gw, provider, reference)
            if payment_id is not None:
                return payment_id
    return None


async def _apply(
    gw: Gateway,
    provider: str,
    event_id: str,
    payment_id: str,
    record: dict[str, Any],
    event: PaymentEvent,
) -> dict[str, Any] | None:
    """Update the record; the normalized event when it is to be announced."""
    current = record["status"]
    status, announce = next_status(current, event.type)
    updated = {**public(record), "status": status}
    if not updated.get("provider_reference"):
        # A payment whose create answer was lost (202 processing) learns its reference here.
        updated["provider_reference"] = event.provider_reference
    if status not in ("requires_action", "pending"):
        updated["next_action"] = None
    if updated != public(record):
        await save_payment(gw, updated, record.get("_extra", {}))
        with contextlib.suppress(StoreUnavailable):  # a cached payments.get lives 5 s at most
            await gw.cache.invalidate("payment:" + payment_id)
    log.info(
        "webhook event applied",
        extra={
            "event_id": event_id,
            "payment_id": payment_id,
            "type": event.type,
            "from_status": current,
            "to_status": status,
            "announced": announce,
        },
    )
    if not announce:
        return None
    return {
        "event_id": event_id,
        "type": event.type,
        "payment_id": payment_id,
        "provider": provider,
        "provider_reference": updated["provider_reference"],
        "amount": event.amount if event.amount is not None else record["amount"],
        "currency": (event.currency or record["currency"]).upper(),
        "occurred_at": utc(event.occurred_at) or iso(time.time()),
    }


async def _orphan(gw: Gateway, provider: str, event_id: str, event: PaymentEvent) -> None:
    record = {
        "event_id": event_id,
        "provider": provider,
        "provider_event_id": event.event_id,
        "type": event.type,
        "provider_reference": event.provider_reference,
        "merchant_reference": event.merchant_reference,
        "amount": event.amount,
        "currency": event.currency,
        "occurred_at": event.occurred_at,
        "received_at": iso(time.time()),
    }
    # Not claimed as applied: a redelivery after the payment is known still applies it.
    await gw.store.set(ORPHAN_PREFIX + event_id, orjson.dumps(record), ORPHAN_TTL_S)
    log.warning(
        "webhook event for an unknown payment recorded",
        extra={
            "event_id": event_id,
            "provider": provider,
            "type": event.type,
            "provider_reference": event.provider_reference,
        },
    )


def utc(value: str | None) -> str | None:
    """An ISO 8601 time as `YYYY-MM-DDTHH:MM:SSZ` (the API's form), None if unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
