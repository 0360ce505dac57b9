"""Provider refund events applied to refunds, each once, in one ledger transaction.

A refund event names the refund by the provider's id for it (Stripe `re_...`, Adyen's
refund pspReference), by the gateway's refund id the provider echoes (Stripe metadata,
Adyen merchantReference), or, for a provider that names neither (Trustly), by its payment
and amount: the oldest refund of that payment and amount still pending. The refund's status
moves forward only (`gateway.payments.status.advance_refund`) and each change is announced
(`refund.succeeded|failed|canceled`). When its payment's succeeded refunds reach the whole
amount, the payment becomes `refunded` in the same transaction, announced as
`payment.refunded`.

A successful refund the gateway did not ask for (made in the provider's dashboard) that
covers all that is left makes the payment `refunded`, as before refunds had records; one
that covers less is kept as an orphan, to reconcile by hand.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.base import PaymentEvent
from gateway.ledger import outbox
from gateway.ledger import refunds as ledger_refunds
from gateway.ledger.database import Tx
from gateway.ledger.payments import PaymentRecord, find_payment_id, get_payment, update_payment
from gateway.ledger.provider_events import Done, Duplicate
from gateway.ledger.refunds import RefundRecord
from gateway.obs.tracing import outgoing_headers
from gateway.payments.announcements import (
    Announcer,
    derived_event_id,
    payment_event,
    refund_event,
)
from gateway.payments.status import STATUS_OF_REFUND_EVENT, advance, advance_refund
from policies.ports import StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.runtime.gateway import Gateway

log = logging.getLogger("gateway.webhooks")


@dataclass(frozen=True, slots=True)
class RefundNews:
    refund: RefundRecord | None  # after the event, when it changed
    payment: PaymentRecord | None  # after the event, when it became refunded


def full_refund(tx: Tx, payment_id: str, source: str, now: float) -> PaymentRecord | None:
    """Mark the payment refunded when its succeeded refunds cover it; the record if changed."""
    payment = get_payment(tx, payment_id, lock=True)
    if payment is None or payment.status != "succeeded":
        return None
    if ledger_refunds.committed(tx, payment_id, ("succeeded",)) < payment.amount:
        return None
    changed = update_payment(
        tx, payment_id, lambda p: (p.replace(status=advance(p.status, "refunded")), None),
        source=source, now=now,
    )
    return changed[1] if changed and changed[1].status == "refunded" else None


def _find(tx: Tx, provider: str, event: PaymentEvent) -> tuple[RefundRecord | None, str | None]:
    refund = ledger_refunds.find_refund(
        tx, provider, event.refund_reference, event.merchant_reference
    )
    if refund is not None:
        return refund, refund.payment_id
    payment_id = find_payment_id(tx, provider, (event.provider_reference, event.merchant_reference))
    if payment_id is not None and event.refund_reference is None:
        # The provider names no refund of its own: the payment and the amount must do.
        return ledger_refunds.oldest_pending(tx, payment_id, event.amount), payment_id
    return None, payment_id


def _target(
    provider: str, event: PaymentEvent, event_id: str, deliver: bool, now: float
) -> Callable[[Tx], Any]:
    trace = outgoing_headers()  # read here, on the event loop: the transaction runs elsewhere

    def apply(tx: Tx) -> tuple[str, RefundNews] | None:
        applied = _apply(tx, provider, event, now)
        if applied is not None:
            write(tx, event_id, applied[1], deliver, now, trace, occurred_at=event.occurred_at)
        return applied

    return apply


def _apply(tx: Tx, provider: str, event: PaymentEvent, now: float) -> tuple[str, RefundNews] | None:
    wanted = STATUS_OF_REFUND_EVENT[event.type]
    source = f"webhook:{provider}:{event.type}"
    refund, payment_id = _find(tx, provider, event)
    if payment_id is None:
        return None
    if refund is None:
        return _outside(tx, payment_id, wanted, event, source, now)

    def change(current: RefundRecord) -> RefundRecord:
        return current.replace(
            status=advance_refund(current.status, wanted),
            provider_reference=current.provider_reference or event.refund_reference,
        )

    updated = ledger_refunds.update_refund(tx, refund.refund_id, change, now)
    assert updated is not None, "found under this transaction"
    before, after = updated
    changed = after if after.status != before.status else None
    payment = None
    if changed is not None and after.status == "succeeded":
        payment = full_refund(tx, payment_id, source, now)
    return payment_id, RefundNews(changed, payment)


def _outside(
    tx: Tx, payment_id: str, wanted: str, event: PaymentEvent, source: str, now: float
) -> tuple[str, RefundNews] | None:
    """A refund the gateway has no record of: made outside it."""
    payment = get_payment(tx, payment_id, lock=True)
    if wanted != "succeeded" or payment is None or payment.status != "succeeded":
        return None
    left = payment.amount - ledger_refunds.committed(tx, payment_id, ("succeeded",))
    if event.amount is not None and event.amount < left:
        return None
    changed = update_payment(
        tx, payment_id, lambda p: (p.replace(status=advance(p.status, "refunded")), None),
        source=source, now=now,
    )
    after = changed[1] if changed else None
    return payment_id, RefundNews(None, after if after and after.status == "refunded" else None)


async def handle_refund_event(
    gw: Gateway, provider: str, event: PaymentEvent, event_id: str, announcer: Announcer
) -> None:
    detail = {
        "provider_reference": event.provider_reference,
        "refund_reference": event.refund_reference,
        "merchant_reference": event.merchant_reference,
        "amount": event.amount,
        "currency": event.currency,
        "occurred_at": event.occurred_at,
    }
    outcome = await gw.ledger.apply_provider_event_with(
        provider, event.event_id, event_id, event.type, detail,
        _target(provider, event, event_id, announcer.delivers(), gw.ledger.clock()),
    )
    if isinstance(outcome, Duplicate):
        log.info("duplicate webhook event acknowledged", extra={"event_id": event_id})
        return
    if not isinstance(outcome, Done):
        log.warning(
            "refund event for no known refund recorded",
            extra={"event_id": event_id, "provider": provider, "type": event.type,
                   "provider_reference": event.provider_reference},
        )
        return
    news: RefundNews = outcome.note
    log.info(
        "refund event applied",
        extra={"event_id": event_id, "payment_id": outcome.payment_id, "type": event.type,
               "refund_id": news.refund.refund_id if news.refund else None},
    )
    await announced(gw, news, announcer)


def write(
    tx: Tx,
    event_id: str,
    news: RefundNews,
    deliver: bool,
    now: float,
    trace: dict[str, str],
    *,
    occurred_at: str | None = None,
) -> None:
    """Write a refund's new status, then its payment's full refund, if either happened, to
    the outbox (in the transaction that made them)."""
    events: list[outbox.Announcement] = []
    if news.refund is not None:
        payment = news.payment or get_payment(tx, news.refund.payment_id)
        player = payment.player_id if payment else None
        event = refund_event(event_id, news.refund, occurred_at=occurred_at)
        events.append(outbox.Announcement(event, player, trace))
    if news.payment is not None:
        # Its own id when a refund was announced by the same cause, else the cause's.
        payment_id = derived_event_id(event_id, "payment.refunded") if news.refund else event_id
        event = payment_event(payment_id, "payment.refunded", news.payment,
                              occurred_at=occurred_at)
        events.append(outbox.Announcement(event, news.payment.player_id, trace))
    outbox.append(tx, events, deliver, now)


async def announced(gw: Gateway, news: RefundNews, announcer: Announcer) -> None:
    """After the commit: forget the cached payment, wake the hub."""
    if news.payment is not None:
        with contextlib.suppress(StoreUnavailable):  # a cached payments.get lives 5 s at most
            await gw.cache.invalidate("payment:" + news.payment.payment_id)
    if news.refund is not None or news.payment is not None:
        announcer.written()
