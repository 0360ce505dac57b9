"""Payment records in the ledger: the payment, its status history, its provider references.

A record changes only through `update_payment`: the caller's function sees the current
record under a row lock and returns the new one, so a provider answer, a replay, a read-back
refresh and a webhook can never overwrite each other's news (each write is compare-and-set
on the stored record). Every status change is kept in `payment_status_history`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from gateway.ledger.database import Tx

T = TypeVar("T")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    payment_id: str
    client_id: str
    idem_key: str
    player_id: str
    type: str
    amount: int
    currency: str
    provider: str
    provider_reference: str | None
    reference: str  # the gateway's reference, echoed by providers in their webhooks
    status: str
    next_action: dict[str, Any] | None
    attempts: tuple[dict[str, Any], ...]
    created_at: float
    updated_at: float = 0.0
    version: int = 1

    def to_api(self) -> dict[str, Any]:
        """The unified Payment the API answers with."""
        return {
            "payment_id": self.payment_id,
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "provider": self.provider,
            "provider_reference": self.provider_reference or None,
            "next_action": self.next_action,
            "attempts": [dict(a) for a in self.attempts],
            "created_at": iso(self.created_at),
        }

    def replace(self, **changes: Any) -> PaymentRecord:
        return dataclasses.replace(self, **changes)


_COLUMNS = (
    "payment_id, client_id, idem_key, player_id, type, amount, currency, provider, "
    "provider_reference, reference, status, next_action, attempts, created_at, updated_at, version"
)


def _record(row: Sequence[Any]) -> PaymentRecord:
    (pid, client, key, player, type_, amount, currency, provider, pref, ref, status, action,
     attempts, created, updated, version) = row
    return PaymentRecord(
        payment_id=pid,
        client_id=client,
        idem_key=key,
        player_id=player,
        type=type_,
        amount=int(amount),
        currency=currency,
        provider=provider,
        provider_reference=pref,
        reference=ref,
        status=status,
        next_action=orjson.loads(action) if action else None,
        attempts=tuple(orjson.loads(attempts)),
        created_at=float(created),
        updated_at=float(updated),
        version=int(version),
    )


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _history(tx: Tx, payment_id: str, old: str | None, new: str, source: str, now: float) -> None:
    tx.run(
        "INSERT INTO payment_status_history (payment_id, from_status, to_status, source, at) "
        "VALUES (?, ?, ?, ?, ?)",
        payment_id,
        old,
        new,
        source,
        now,
    )


def insert_payment(tx: Tx, record: PaymentRecord, *, source: str) -> None:
    now = record.updated_at or record.created_at
    tx.run(
        f"INSERT INTO payments ({_COLUMNS}) VALUES ({', '.join('?' * 16)})",
        record.payment_id,
        record.client_id,
        record.idem_key,
        record.player_id,
        record.type,
        record.amount,
        record.currency,
        record.provider,
        record.provider_reference,
        record.reference,
        record.status,
        _dumps(record.next_action),
        orjson.dumps(list(record.attempts)).decode(),
        record.created_at,
        now,
        record.version,
    )
    _history(tx, record.payment_id, None, record.status, source, now)


def get_payment(tx: Tx, payment_id: str, *, lock: bool = False) -> PaymentRecord | None:
    row = tx.one(
        f"SELECT {_COLUMNS} FROM payments WHERE payment_id = ?{tx.for_update if lock else ''}",
        payment_id,
    )
    return _record(row) if row else None


def find_payment_id(tx: Tx, provider: str, references: Sequence[str | None]) -> str | None:
    """The payment a provider means by its reference, or by the gateway reference it echoes.

    A provider reference names one payment; the gateway reference of a reused (expired)
    key may name several, and then the newest is meant."""
    for reference in references:
        if not reference:
            continue
        row = tx.one(
            "SELECT payment_id FROM payments WHERE provider = ? AND provider_reference = ? "
            "ORDER BY created_at DESC LIMIT 1",
            provider,
            reference,
        ) or tx.one(
            "SELECT payment_id FROM payments WHERE provider = ? AND reference = ? "
            "ORDER BY created_at DESC LIMIT 1",
            provider,
            reference,
        )
        if row:
            return str(row[0])
    return None


Change = Callable[[PaymentRecord], tuple[PaymentRecord, T]]


def update_payment(
    tx: Tx, payment_id: str, change: Change[T], *, source: str, now: float
) -> tuple[PaymentRecord, PaymentRecord, T] | None:
    """Apply `change` to the current record under a row lock: (before, after, change's note).

    None when the ledger has no such payment. Nothing is written when the record is unchanged.
    """
    before = get_payment(tx, payment_id, lock=True)
    if before is None:
        return None
    after, note = change(before)
    if _same(before, after):
        return before, before, note
    after = after.replace(updated_at=now, version=before.version + 1)
    changed = tx.run(
        "UPDATE payments SET provider_reference = ?, status = ?, next_action = ?, attempts = ?, "
        "updated_at = ?, version = ? WHERE payment_id = ? AND version = ?",
        after.provider_reference,
        after.status,
        _dumps(after.next_action),
        orjson.dumps(list(after.attempts)).decode(),
        now,
        after.version,
        payment_id,
        before.version,
    )
    if not changed:  # cannot happen under the lock; refuse rather than write over news
        raise RuntimeError(f"payment {payment_id} changed under its lock")
    if after.status != before.status:
        _history(tx, payment_id, before.status, after.status, source, now)
    return before, after, note


def _same(a: PaymentRecord, b: PaymentRecord) -> bool:
    return (
        a.status == b.status
        and a.provider_reference == b.provider_reference
        and a.next_action == b.next_action
        and a.attempts == b.attempts
    )


def status_history(tx: Tx, payment_id: str) -> list[tuple[str | None, str, str]]:
    rows = tx.all(
        "SELECT from_status, to_status, source FROM payment_status_history "
        "WHERE payment_id = ? ORDER BY at",
        payment_id,
    )
    return [(r[0], r[1], r[2]) for r in rows]
