"""Provider webhook events in the ledger: each applied once, unknown ones kept as orphans.

An event is recorded by (provider, the provider's event id) in the same transaction that
applies it to its payment, so a redelivery (the providers retry for days) is acknowledged
without changing anything, and a crash between "applied" and "recorded" cannot happen.
An event for a payment the ledger does not know is kept as an orphan, to reconcile by hand;
a redelivery after the payment is known applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from gateway.ledger.database import Tx
from gateway.ledger.payments import Change, PaymentRecord, find_payment_id, update_payment

T = TypeVar("T")
_WHERE = "WHERE provider = ? AND provider_event_id = ?"


@dataclass(frozen=True, slots=True)
class Applied(Generic[T]):
    before: PaymentRecord
    after: PaymentRecord
    note: T


@dataclass(frozen=True, slots=True)
class Duplicate:
    pass


@dataclass(frozen=True, slots=True)
class Orphan:
    pass


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    payment_id: str
    note: T


# What an event does, inside its transaction: (the payment it concerned, a note for the
# caller), or None when the ledger knows nothing it names (an orphan).
Target = Callable[[Tx], tuple[str, T] | None]


def apply_event(
    tx: Tx,
    provider: str,
    provider_event_id: str,
    event_id: str,
    event_type: str,
    references: Sequence[str | None],
    detail: dict[str, Any],
    change: Change[T],
    now: float,
    then: Callable[[Tx, Applied[T]], None] | None = None,
) -> Applied[T] | Duplicate | Orphan:
    """A payment event: applied to the payment its references name; `then` runs in the same
    transaction once it is (it writes the events the change causes)."""

    def target(tx: Tx) -> tuple[str, Applied[T]] | None:
        payment_id = find_payment_id(tx, provider, references)
        if payment_id is None:
            return None
        result = update_payment(
            tx, payment_id, change, source=f"webhook:{provider}:{event_type}", now=now
        )
        if result is None:
            return None
        before, after, note = result
        applied = Applied(before, after, note)
        if then is not None:
            then(tx, applied)
        return payment_id, applied

    outcome = apply_with(
        tx, provider, provider_event_id, event_id, event_type, detail, target, now
    )
    return outcome.note if isinstance(outcome, Done) else outcome


def apply_with(
    tx: Tx,
    provider: str,
    provider_event_id: str,
    event_id: str,
    event_type: str,
    detail: dict[str, Any],
    target: Target[T],
    now: float,
) -> Done[T] | Duplicate | Orphan:
    """Record the event and apply it with `target`, once: a redelivery is a Duplicate."""
    body = orjson.dumps(detail).decode()
    inserted = tx.run(
        "INSERT INTO provider_events (provider, provider_event_id, event_id, state, type, "
        "detail, received_at) VALUES (?, ?, ?, 'received', ?, ?, ?) "
        "ON CONFLICT (provider, provider_event_id) DO NOTHING",
        provider,
        provider_event_id,
        event_id,
        event_type,
        body,
        now,
    )
    if not inserted:
        row = tx.one(f"SELECT state FROM provider_events {_WHERE}{tx.for_update}", provider,
                     provider_event_id)
        if row is not None and row[0] == "applied":
            return Duplicate()
    result = target(tx)
    if result is None:
        tx.run(
            f"UPDATE provider_events SET state = 'orphan', detail = ?, received_at = ? {_WHERE}",
            body,
            now,
            provider,
            provider_event_id,
        )
        return Orphan()
    payment_id, note = result
    tx.run(
        f"UPDATE provider_events SET state = 'applied', payment_id = ? {_WHERE}",
        payment_id,
        provider,
        provider_event_id,
    )
    return Done(payment_id, note)


def orphans(tx: Tx, provider: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    sql = (
        "SELECT provider, provider_event_id, event_id, type, detail, received_at "
        "FROM provider_events WHERE state = 'orphan'"
    )
    args: list[Any] = []
    if provider:
        sql += " AND provider = ?"
        args.append(provider)
    rows = tx.all(sql + " ORDER BY received_at DESC LIMIT ?", *args, limit)
    return [
        {
            "provider": r[0],
            "provider_event_id": r[1],
            "event_id": r[2],
            "type": r[3],
            "detail": orjson.loads(r[4]),
            "received_at": r[5],
        }
        for r in rows
    ]
