"""The event outbox: every normalized event, written in the transaction that causes it.

A webhook that moves a payment, a refund answer, a refund that completes its payment: each
appends its events here before it commits, so an event exists exactly when its state change
does, whichever process (or host) made it and whatever happens to that process next.

Each row gets the next number of one per-ledger sequence (`event_sequence`), taken under
that counter's row lock and held to the commit: rows become visible in sequence order, with
no holes, so a reader that has seen row N has seen every row before it. The sequence is the
SSE stream's event id (`GET /v1/events`), the same on every replica and across restarts.

Delivery to the casino backend (`delivery`): `pending` rows are leased by one process at a
time (`lease_owner`, `lease_until`; on PostgreSQL the lease is taken with
`FOR UPDATE SKIP LOCKED`, so processes never wait on each other's leases) and become
`delivered`, or `given_up` after `events.max_attempts`. Only the oldest pending row of a
payment may be leased: a payment's events reach the backend in order. Rows written while no
backend is configured are `none` (streams only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.ledger.database import Tx

_ROW = "seq, event_id, payment_id, player_id, type, body, created_at"
_DELIVERY = (
    "seq, event_id, payment_id, type, delivery, attempts, next_attempt_at, last_error, "
    "created_at, delivered_at, lease_until"
)
STATUSES = ("pending", "failing", "given_up", "delivered")


@dataclass(frozen=True, slots=True)
class Announcement:
    """One normalized event and the player it concerns (streams are filtered by player)."""

    event: dict[str, Any]
    player_id: str | None
    trace: dict[str, str] = field(default_factory=dict)  # traceparent of its cause


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    event_id: str
    payment_id: str
    player_id: str | None
    type: str
    body: bytes  # the event's JSON, the same bytes on every delivery and stream
    created_at: float


@dataclass(frozen=True, slots=True)
class Leased:
    row: OutboxRow
    attempts: int  # tries made before this one
    trace: dict[str, str]


@dataclass(frozen=True, slots=True)
class Bounds:
    last_seq: int  # the newest row's sequence (0: none yet)
    pruned_through: int  # rows up to this one may have been pruned


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int
    failing: int  # pending after a failed try, or given up
    oldest_pending_at: float | None


def _row(r: Sequence[Any]) -> OutboxRow:
    body = r[5]
    return OutboxRow(
        int(r[0]), r[1], r[2], r[3], r[4],
        body.encode() if isinstance(body, str) else bytes(body), float(r[6]),
    )


# ---- writing ---------------------------------------------------------------------------


def append(tx: Tx, announcements: Sequence[Announcement], deliver: bool, now: float) -> list[int]:
    """Write `announcements` in this transaction; their sequence numbers. An event whose id
    is already written is not written again (the cause was applied once already)."""
    if not announcements:
        return []
    # The counter's row lock orders the commits of every transaction that writes events.
    tx.run("UPDATE event_sequence SET last_seq = last_seq WHERE id = 1")
    written: list[int] = []
    for item in announcements:
        event = item.event
        event_id = str(event["event_id"])
        if tx.one("SELECT 1 FROM event_outbox WHERE event_id = ?", event_id) is not None:
            continue
        row = tx.one("UPDATE event_sequence SET last_seq = last_seq + 1 WHERE id = 1 "
                     "RETURNING last_seq")
        assert row is not None, "migration 4 inserts the counter row"
        seq = int(row[0])
        tx.run(
            "INSERT INTO event_outbox (seq, event_id, payment_id, player_id, type, body, "
            "created_at, delivery, attempts, next_attempt_at, trace) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            seq, event_id, str(event["payment_id"]), item.player_id, str(event["type"]),
            orjson.dumps(event).decode(), now, "pending" if deliver else "none", now,
            orjson.dumps(item.trace).decode() if item.trace else None,
        )
        written.append(seq)
    return written


# ---- reading (streams) --------------------------------------------------------------------


def bounds(tx: Tx) -> Bounds:
    row = tx.one("SELECT last_seq, pruned_through FROM event_sequence WHERE id = 1")
    return Bounds(int(row[0]), int(row[1])) if row else Bounds(0, 0)


def after(
    tx: Tx,
    seq: int,
    limit: int,
    player_id: str | None = None,
    payment_id: str | None = None,
) -> tuple[Bounds, list[OutboxRow]]:
    """Rows after `seq`, oldest first (those of one player and/or payment when given)."""
    sql = f"SELECT {_ROW} FROM event_outbox WHERE seq > ?"
    args: list[Any] = [seq]
    if player_id is not None:
        sql += " AND player_id = ?"
        args.append(player_id)
    if payment_id is not None:
        sql += " AND payment_id = ?"
        args.append(payment_id)
    rows = tx.all(sql + " ORDER BY seq LIMIT ?", *args, limit)
    return bounds(tx), [_row(r) for r in rows]


# ---- delivery ------------------------------------------------------------------------------


def due(tx: Tx, now: float) -> bool:
    """Whether any delivery may be due: a read, so an idle worker never takes the write lock."""
    row = tx.one(
        "SELECT 1 FROM event_outbox WHERE delivery = 'pending' AND next_attempt_at <= ? "
        "AND (lease_until IS NULL OR lease_until < ?) LIMIT 1",
        now, now,
    )
    return row is not None


def lease(tx: Tx, owner: str, limit: int, lease_s: float, now: float) -> list[Leased]:
    """Up to `limit` rows due for delivery, each the oldest pending row of its payment,
    now leased to `owner` for `lease_s`."""
    skip = " FOR UPDATE OF o SKIP LOCKED" if tx.dialect == "postgres" else ""
    rows = tx.all(
        f"SELECT o.seq, o.event_id, o.payment_id, o.player_id, o.type, o.body, o.created_at, "
        f"o.attempts, o.trace FROM event_outbox o WHERE o.delivery = 'pending' "
        f"AND o.next_attempt_at <= ? AND (o.lease_until IS NULL OR o.lease_until < ?) "
        f"AND NOT EXISTS (SELECT 1 FROM event_outbox e WHERE e.payment_id = o.payment_id "
        f"AND e.delivery = 'pending' AND e.seq < o.seq) ORDER BY o.seq LIMIT ?{skip}",
        now, now, limit,
    )
    leased = [Leased(_row(r), int(r[7]), orjson.loads(r[8]) if r[8] else {}) for r in rows]
    tx.many(
        "UPDATE event_outbox SET lease_owner = ?, lease_until = ? WHERE seq = ?",
        [(owner, now + lease_s, item.row.seq) for item in leased],
    )
    return leased


def delivered(tx: Tx, seq: int, now: float) -> None:
    # Whoever sent it, the backend has it now: a late failure of another sender's lease
    # (matched on lease_owner below) can no longer undo this.
    tx.run(
        "UPDATE event_outbox SET delivery = 'delivered', delivered_at = ?, "
        "attempts = attempts + 1, lease_owner = NULL, lease_until = NULL, last_error = NULL "
        "WHERE seq = ? AND delivery = 'pending'",
        now, seq,
    )


def failed(
    tx: Tx, seq: int, owner: str, error: str, retry_at: float, give_up: bool
) -> None:
    tx.run(
        "UPDATE event_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
        "lease_owner = NULL, lease_until = NULL, delivery = ? "
        "WHERE seq = ? AND lease_owner = ? AND delivery = 'pending'",
        error[:500], retry_at, "given_up" if give_up else "pending", seq, owner,
    )


def release(tx: Tx, owner: str) -> int:
    """Give back every lease of `owner` (a process stopping), untried."""
    return tx.run(
        "UPDATE event_outbox SET lease_owner = NULL, lease_until = NULL "
        "WHERE lease_owner = ? AND delivery = 'pending'",
        owner,
    )


def backlog(tx: Tx) -> Backlog:
    row = tx.one(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0), "
        "MIN(created_at) FROM event_outbox WHERE delivery = 'pending'"
    )
    given_up = tx.one("SELECT COUNT(*) FROM event_outbox WHERE delivery = 'given_up'")
    pending, failing, oldest = row if row else (0, 0, None)
    return Backlog(
        int(pending), int(failing) + int(given_up[0] if given_up else 0),
        float(oldest) if oldest is not None else None,
    )


def _delivery(r: Sequence[Any], now: float) -> dict[str, Any]:
    seq, event_id, payment_id, type_, state, attempts, next_at, error, created, done, held = r
    if state == "pending" and attempts:
        state = "failing"
    return {
        "seq": int(seq),
        "event_id": event_id,
        "payment_id": payment_id,
        "type": type_,
        "status": state,
        "attempts": int(attempts),
        "last_error": error,
        "next_attempt_at": float(next_at) if state in ("pending", "failing") else None,
        "in_flight": held is not None and float(held) >= now,
        "created_at": float(created),
        "delivered_at": float(done) if done is not None else None,
    }


def deliveries(tx: Tx, status: str | None, limit: int, now: float) -> list[dict[str, Any]]:
    """Rows for the admin API, newest first; `failing` also lists the given-up ones."""
    where = {
        None: "delivery <> 'none'",
        "pending": "delivery = 'pending' AND attempts = 0",
        "failing": "(delivery = 'pending' AND attempts > 0) OR delivery = 'given_up'",
        "given_up": "delivery = 'given_up'",
        "delivered": "delivery = 'delivered'",
    }[status]
    rows = tx.all(
        f"SELECT {_DELIVERY} FROM event_outbox WHERE {where} ORDER BY seq DESC LIMIT ?", limit
    )
    return [_delivery(r, now) for r in rows]


def redeliver(tx: Tx, event_id: str, now: float) -> dict[str, Any] | None:
    """Send the event to the backend again, now (after its payment's earlier events);
    None if no such event is kept. One in flight is left to finish."""
    tx.run(
        "UPDATE event_outbox SET delivery = 'pending', attempts = 0, next_attempt_at = ?, "
        "last_error = NULL, delivered_at = NULL WHERE event_id = ? "
        "AND (lease_until IS NULL OR lease_until < ?)",
        now, event_id, now,
    )
    row = tx.one(f"SELECT {_DELIVERY} FROM event_outbox WHERE event_id = ?", event_id)
    return _delivery(row, now) if row else None


# ---- retention ----------------------------------------------------------------------------


def prune(tx: Tx, cutoff: float) -> int:
    """Drop rows older than `cutoff` that no delivery waits for; streams resuming from
    before the newest dropped row are told of a gap."""
    row = tx.one(
        "SELECT MAX(seq) FROM event_outbox WHERE created_at < ? AND delivery <> 'pending'", cutoff
    )
    if row is None or row[0] is None:
        return 0
    tx.run(
        "UPDATE event_sequence SET pruned_through = ? WHERE id = 1 AND pruned_through < ?",
        int(row[0]), int(row[0]),
    )
    return tx.run(
        "DELETE FROM event_outbox WHERE created_at < ? AND delivery <> 'pending'", cutoff
    )
