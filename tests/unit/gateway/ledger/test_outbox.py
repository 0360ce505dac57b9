"""The event outbox in the ledger: sequence, leases, order per payment, retention.

Run here on SQLite (in memory and in a file); tests/integration/test_ledger_postgres.py runs
the same tests on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.ledger import outbox
from gateway.ledger.ledger import Ledger
from gateway.ledger.outbox import Announcement


def event(event_id: str, payment_id: str, kind: str = "payment.succeeded") -> dict[str, Any]:
    return {"event_id": event_id, "type": kind, "payment_id": payment_id, "amount": 100}


async def write(
    ledger: Ledger, *items: tuple[str, str], player: str | None = "alice", deliver: bool = True
) -> list[int]:
    announcements = [Announcement(event(eid, pid), player) for eid, pid in items]
    return await ledger.run(outbox.append, announcements, deliver, ledger.clock())


async def test_events_get_one_increasing_sequence_and_are_written_once(ledger: Ledger):
    assert await write(ledger, ("e1", "p1"), ("e2", "p2")) == [1, 2]
    assert await write(ledger, ("e2", "p2"), ("e3", "p1")) == [3]  # e2 was written already
    bounds, rows = await ledger.events_after(0, 10)
    assert (bounds.last_seq, bounds.pruned_through) == (3, 0)
    assert [(r.seq, r.event_id, r.payment_id, r.player_id) for r in rows] == [
        (1, "e1", "p1", "alice"), (2, "e2", "p2", "alice"), (3, "e3", "p1", "alice")
    ]
    assert rows[0].body == b'{"event_id":"e1","type":"payment.succeeded","payment_id":"p1",' \
                           b'"amount":100}'
    _, rows = await ledger.events_after(1, 10, payment_id="p1")
    assert [r.seq for r in rows] == [3]
    await write(ledger, ("e4", "p9"), player="bob")
    _, rows = await ledger.events_after(0, 10, player_id="bob")
    assert [r.event_id for r in rows] == ["e4"]


async def test_a_failed_transaction_writes_no_event_and_takes_no_number(ledger: Ledger):
    def fails(tx: Any) -> None:
        outbox.append(tx, [Announcement(event("lost", "p1"), None)], True, 0.0)
        raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await ledger.run(fails)
    assert await write(ledger, ("e1", "p1")) == [1]
    _, rows = await ledger.events_after(0, 10)
    assert [r.event_id for r in rows] == ["e1"]


async def test_only_the_oldest_pending_event_of_a_payment_is_leased(ledger: Ledger, clock: Any):
    await write(ledger, ("a1", "pa"), ("b1", "pb"), ("a2", "pa"))
    first = await ledger.lease_deliveries("one", 10, 30)
    assert [item.row.event_id for item in first] == ["a1", "b1"]
    # Leased: nobody else gets them, and a2 waits behind a1.
    assert await ledger.lease_deliveries("two", 10, 30) == []
    await ledger.delivered(first[0].row.seq)
    assert [i.row.event_id for i in await ledger.lease_deliveries("two", 10, 30)] == ["a2"]


async def test_a_failed_delivery_waits_its_backoff_and_keeps_its_place(
    ledger: Ledger, clock: Any
):
    await write(ledger, ("a1", "pa"), ("a2", "pa"))
    (item,) = await ledger.lease_deliveries("one", 10, 30)
    await ledger.delivery_failed(item.row.seq, "one", "ConnectionError", 5.0, give_up=False)
    assert await ledger.lease_deliveries("one", 10, 30) == []  # a2 still waits behind a1
    clock.now += 5
    (again,) = await ledger.lease_deliveries("one", 10, 30)
    assert (again.row.event_id, again.attempts) == ("a1", 1)
    backlog = await ledger.delivery_backlog()
    assert (backlog.pending, backlog.failing) == (2, 1)
    # Given up: the payment's next event may go.
    await ledger.delivery_failed(again.row.seq, "one", "HTTP 500", 5.0, give_up=True)
    assert [i.row.event_id for i in await ledger.lease_deliveries("one", 10, 30)] == ["a2"]
    failing = await ledger.deliveries("failing", 10)
    assert [(d["event_id"], d["status"], d["attempts"]) for d in failing] == [
        ("a1", "given_up", 2)
    ]


async def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_undo(
    ledger: Ledger, clock: Any
):
    await write(ledger, ("a1", "pa"))
    (item,) = await ledger.lease_deliveries("dead", 10, 30)
    clock.now += 31  # the process holding it died mid-send
    (retaken,) = await ledger.lease_deliveries("alive", 10, 30)
    assert retaken.row.seq == item.row.seq
    await ledger.delivered(retaken.row.seq)
    # The old holder's late failure changes nothing.
    await ledger.delivery_failed(item.row.seq, "dead", "timeout", 1.0, give_up=False)
    assert (await ledger.delivery_backlog()).pending == 0
    (done,) = await ledger.deliveries("delivered", 10)
    assert done["event_id"] == "a1"


async def test_concurrent_leases_never_hand_one_event_to_two_owners(ledger: Ledger):
    await write(ledger, *[(f"e{i}", f"p{i}") for i in range(40)])
    rounds = await asyncio.gather(
        *[ledger.lease_deliveries(f"owner{n}", 5, 30) for n in range(8)]
    )
    leased = [item.row.seq for batch in rounds for item in batch]
    assert len(leased) == len(set(leased)) == 40


async def test_redeliver_sends_a_delivered_event_again(ledger: Ledger):
    await write(ledger, ("a1", "pa"))
    (item,) = await ledger.lease_deliveries("one", 10, 30)
    await ledger.delivered(item.row.seq)
    assert await ledger.redeliver("nope") is None
    again = await ledger.redeliver("a1")
    assert again is not None and (again["status"], again["attempts"]) == ("pending", 0)
    assert [i.row.event_id for i in await ledger.lease_deliveries("one", 10, 30)] == ["a1"]


async def test_retention_keeps_undelivered_events_and_marks_the_gap(ledger: Ledger, clock: Any):
    await write(ledger, ("old-stream-only", "p1"), deliver=False)
    await write(ledger, ("old-undelivered", "p2"))
    clock.now += 10 * 86400
    await write(ledger, ("new", "p3"), deliver=False)
    assert await ledger.prune_events(7 * 86400) == 1
    bounds, rows = await ledger.events_after(0, 10)
    assert [r.event_id for r in rows] == ["old-undelivered", "new"]
    assert (bounds.last_seq, bounds.pruned_through) == (3, 1)
