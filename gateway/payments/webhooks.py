"""Provider webhooks applied to payments (received at POST /v1/webhooks/{provider}).

`{provider}` is a configured provider whose adapter verifies webhooks (Stripe, Adyen,
Trustly); any other name is a 404. The raw body (at most 1 MiB) is verified by the adapter
exactly as it arrived; a missing, wrong or stale signature, or a changed body, is a 401 problem
(`unauthorized`) and changes nothing. The policy step (`apply_policies`) asks no API key
here: the provider's signature is the authentication.

Each verified event, in one ledger transaction (`gateway.ledger.provider_events`):
- is named `evt_<hash of provider and the provider's event id>`, so a redelivery gets the
  same id, and is applied once: a redelivery only gets the acknowledgement;
- is matched to the payment by the provider's reference, else by the gateway reference the
  provider echoes (Stripe `metadata.gateway_reference`, Adyen `merchantReference`);
- for a payment the ledger does not know, is acknowledged and kept as an orphan with a log
  line, so it can be reconciled by hand, not refused (the provider would retry for days);
- moves the payment's status forward only (`gateway.payments.status`): a cancellation,
  refund or chargeback after `succeeded` is a new state, announced as a new event; a
  payout's event is read as the provider means it for payouts (`withdrawal_type`);
- when it is news for the payment, goes out as a normalized event
  (`gateway.payments.announcements`: `payment.*`, or `payout.*` for a withdrawal).

Refund events (`refund.*`) are applied to the refund they name by
`gateway.payments.refund_webhooks`, in the same way.

The answer is the provider's acknowledgement (Adyen needs the literal `[accepted]`, Trustly a
signed JSON-RPC result). When the ledger is unreachable the answer is 503, so the provider
delivers the event again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import TYPE_CHECKING, Any

from adapters.base import PaymentEvent
from gateway.ledger import outbox
from gateway.ledger.database import Tx
from gateway.ledger.payments import PaymentRecord
from gateway.ledger.provider_events import Applied, Duplicate
from gateway.obs.tracing import outgoing_headers
from gateway.payments.announcements import Announcer, gateway_event_id, payment_event
from gateway.payments.records import action_for
from gateway.payments.refund_webhooks import handle_refund_event
from gateway.payments.status import next_status, payout_event
from policies.ports import StoreUnavailable

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway

log = logging.getLogger("gateway.webhooks")

Locks = weakref.WeakValueDictionary[str, asyncio.Lock]


__all__ = ["Locks", "gateway_event_id", "handle_event"]


async def handle_event(
    gw: Gateway, provider: str, event: PaymentEvent, *, locks: Locks, announcer: Announcer
) -> None:
    """Apply one verified event once; when it is news, its normalized event is written to
    the outbox in the same transaction and `announcer` is told.

    Raises LedgerUnavailable when it could not be recorded (the provider then retries)."""
    event_id = gateway_event_id(provider, event.event_id)
    if event.type.startswith("refund."):
        lock = _lock(locks, f"{provider}:{event.provider_reference or event.merchant_reference}")
        async with lock:
            await handle_refund_event(gw, provider, event, event_id, announcer)
        return

    def change(current: PaymentRecord) -> tuple[PaymentRecord, tuple[bool, str]]:
        event_type = event.type
        if current.type == "withdrawal":
            event_type = payout_event(current.status, event.withdrawal_type or event.type)
        status, announce = next_status(current.status, event_type)
        updated = current.replace(
            status=status,
            # A payment whose create answer was lost (202 processing) learns its reference.
            provider_reference=current.provider_reference or event.provider_reference,
            next_action=action_for(status, current.next_action),
        )
        return updated, (announce, event_type)

    deliver = announcer.delivers()
    trace = outgoing_headers()  # the backend's delivery carries this request's trace

    def write(tx: Tx, applied: Applied[tuple[bool, str]]) -> None:
        announce, event_type = applied.note
        if announce:
            after = applied.after
            announcement = payment_event(
                event_id, event_type, after, amount=event.amount, currency=event.currency,
                occurred_at=event.occurred_at,
            )
            outbox.append(
                tx, [outbox.Announcement(announcement, after.player_id, trace)], deliver,
                gw.ledger.clock(),
            )

    # One payment's events are applied and announced one at a time, in arrival order.
    lock = _lock(locks, f"{provider}:{event.provider_reference or event.merchant_reference}")
    async with lock:
        outcome = await gw.ledger.apply_provider_event(
            provider,
            event.event_id,
            event_id,
            event.type,
            (event.provider_reference, event.merchant_reference),
            _detail(event),
            change,
            write,
        )
        if isinstance(outcome, Duplicate):
            log.info("duplicate webhook event acknowledged", extra={"event_id": event_id})
            return
        if not isinstance(outcome, Applied):
            log.warning(
                "webhook event for an unknown payment recorded",
                extra={
                    "event_id": event_id,
                    "provider": provider,
                    "type": event.type,
                    "provider_reference": event.provider_reference,
                },
            )
            return
        before, after = outcome.before, outcome.after
        if after is not before:
            with contextlib.suppress(StoreUnavailable):  # a cached payments.get lives 5 s at most
                await gw.cache.invalidate("payment:" + after.payment_id)
        log.info(
            "webhook event applied",
            extra={
                "event_id": event_id,
                "payment_id": after.payment_id,
                "type": event.type,
                "from_status": before.status,
                "to_status": after.status,
                "announced": outcome.note[0],
            },
        )
        if outcome.note[0]:
            announcer.written()


def _lock(locks: Locks, key: str) -> asyncio.Lock:
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


def _detail(event: PaymentEvent) -> dict[str, Any]:
    return {
        "provider_reference": event.provider_reference,
        "merchant_reference": event.merchant_reference,
        "amount": event.amount,
        "currency": event.currency,
        "occurred_at": event.occurred_at,
    }
