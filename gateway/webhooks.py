"""Provider webhooks: POST /v1/webhooks/{provider} (route name `webhooks.receive`).

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
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from adapters.base import PaymentEvent, WebhookRejected
from gateway import events
from gateway.context import CTX, GATEWAY
from gateway.errors import ApiError
from gateway.payments import advance, find_payment_id, iso, load_payment, public, save_payment
from gateway.runtime import Gateway
from gateway.store import StoreUnavailable

log = logging.getLogger("gateway.webhooks")

MAX_BODY_BYTES = 1024 * 1024
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
LOCKS: web.AppKey[Locks] = web.AppKey("webhook_locks", weakref.WeakValueDictionary)


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


# ---- the route -------------------------------------------------------------------------------


async def receive(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    name = request.match_info["provider"]
    state = ctx["runtime"].providers.get(name)
    verify = getattr(state.adapter, "verify_webhook", None) if state is not None else None
    if state is None or verify is None:
        raise ApiError("not_found", f"no webhook endpoint for '{name}'")
    ctx["provider"] = name
    body = await _read_body(request)
    try:
        verified: list[PaymentEvent] = verify(request.headers, body, time.time())
    except WebhookRejected as exc:
        log.warning(
            "webhook rejected",
            extra={"provider": name, "reason": str(exc), "request_id": ctx["request_id"]},
        )
        raise ApiError("unauthorized", "the webhook signature does not verify") from None
    try:
        for event in verified:
            await _handle(request.app, gw, name, event)
    except StoreUnavailable as exc:
        log.error("webhook not applied: store unreachable", extra={"error": str(exc)})
        raise ApiError(
            "unavailable",
            "the gateway cannot record the event now; deliver it again",
            headers={"Retry-After": "5"},
        ) from None
    status, content_type, ack = state.adapter.webhook_ack()
    return web.Response(status=status, body=ack, content_type=content_type)


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError("payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    # Read to the end: one read() may return only the part that has arrived so far.
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError("payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# ---- one event -------------------------------------------------------------------------------


async def _handle(app: web.Application, gw: Gateway, provider: str, event: PaymentEvent) -> None:
    event_id = gateway_event_id(provider, event.event_id)
    payment_id = await _find(gw, provider, event)
    if payment_id is None:
        await _orphan(gw, provider, event_id, event)
        return
    claim = DEDUPE_PREFIX + event_id
    if not await gw.store.set_if_absent(claim, b"1", DEDUPE_TTL_S):
        log.info("duplicate webhook event acknowledged", extra={"event_id": event_id})
        return
    locks = app[LOCKS]
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
                events.publish(app, announced, record.get("_extra", {}).get("player_id"))
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


def add_routes(app: web.Application) -> None:
    """Register the webhook route."""
    app[LOCKS] = weakref.WeakValueDictionary()
    app.router.add_post("/v1/webhooks/{provider}", receive, name="webhooks.receive")
