"""The normalized events the gateway announces, built in this one place.

Payments announce `payment.<status>`; a withdrawal announces `payout.<status>` instead, so
a backend that credits a player on `payment.succeeded` can never credit a payout by
mistake. Refunds announce `refund.<status>` (succeeded, failed, canceled). Every event has
an `event_id` that is the same on every redelivery of what caused it, and the `payment_id`
its deliveries are ordered by.

Events are written to the ledger's outbox (`gateway.ledger.outbox.append`) inside the
transaction of the change that causes them; the `Announcer` (the event hub) is then told, so
its delivery worker and streams pick them up at once instead of at their next poll.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.ledger.payments import PaymentRecord, iso
from gateway.ledger.refunds import RefundRecord


class Announcer(Protocol):
    def delivers(self) -> bool:
        """Whether events are also for the casino backend (`events.webhook_url` is set)."""
        ...

    def written(self) -> None:
        """Events were committed to the outbox: deliver and stream them now."""
        ...


class Silent:
    """No event hub (an app built without one): events are kept, for streams only."""

    def delivers(self) -> bool:
        return False

    def written(self) -> None:
        pass


NOBODY = Silent()


def gateway_event_id(provider: str, provider_event_id: str) -> str:
    digest = hashlib.sha256(f"{provider}\x00{provider_event_id}".encode()).hexdigest()
    return "evt_" + digest[:32]


def derived_event_id(event_id: str, what: str) -> str:
    """A second event caused by one provider event (a refund that completes its payment's
    refunds): its own id, as stable as the first's."""
    digest = hashlib.sha256(f"{event_id}\x00{what}".encode()).hexdigest()
    return "evt_" + digest[:32]


def payment_event_type(payment: PaymentRecord, event_type: str) -> str:
    if payment.type == "withdrawal" and event_type.startswith("payment."):
        return "payout." + event_type.removeprefix("payment.")
    return event_type


def payment_event(
    event_id: str,
    event_type: str,
    payment: PaymentRecord,
    *,
    amount: int | None = None,
    currency: str | None = None,
    occurred_at: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": payment_event_type(payment, event_type),
        "payment_id": payment.payment_id,
        "provider": payment.provider,
        "provider_reference": payment.provider_reference,
        "amount": amount if amount is not None else payment.amount,
        "currency": (currency or payment.currency).upper(),
        "occurred_at": utc(occurred_at) or iso(time.time()),
    }


def refund_event(
    event_id: str, refund: RefundRecord, *, occurred_at: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": f"refund.{refund.status}",
        "refund_id": refund.refund_id,
        "payment_id": refund.payment_id,
        "provider": refund.provider,
        "provider_reference": refund.provider_reference,
        "amount": refund.amount,
        "currency": refund.currency,
        "occurred_at": utc(occurred_at) or iso(time.time()),
    }


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
