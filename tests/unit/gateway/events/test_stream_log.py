"""The stream buffer: fan-out by filter, replays from memory and from the ledger, bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.config.events import StreamSettings
from gateway.events.stream_log import EventLog, Filter, StreamClosed, entry
from gateway.ledger.outbox import OutboxRow
from gateway.problems import ApiError


def row(seq: int, payment_id: str = "p1", player: str | None = "alice") -> OutboxRow:
    body = b'{"event_id":"evt_%d","payment_id":"%s"}' % (seq, payment_id.encode())
    return OutboxRow(seq, f"evt_{seq}", payment_id, player, "payment.x", body, 0.0)


def make_log(**settings: Any) -> EventLog:
    log = EventLog(StreamSettings(**settings))
    log.start_at(99)  # the outbox's newest event when the tailer started
    return log


def drain(subscriber: Any) -> list[int]:
    items = [e.seq for e in subscriber._items]
    subscriber._items.clear()
    return items


def test_subscribers_get_only_matching_events():
    log = make_log()
    alice = log.subscribe(Filter(player_id="alice"))
    one_payment = log.subscribe(Filter(payment_id="p2"))
    log.append(row(100, "p1", "alice"))
    log.append(row(101, "p2", "bob"))
    log.append(row(102, "p3", None))  # no player known: never on a player's stream
    assert drain(alice) == [100]
    assert drain(one_payment) == [101]


def test_resume_replays_from_the_buffer_after_the_last_id_then_goes_live():
    log = make_log()
    for seq in range(100, 104):
        log.append(row(seq))
    log.append(row(104, "p9", "bob"))
    assert log.covers(101) and log.covers(104) and not log.covers(98) and not log.covers(105)
    subscriber = log.subscribe(Filter(player_id="alice"), after=101)
    log.append(row(105))
    assert drain(subscriber) == [102, 103, 105]


def test_a_ledger_replay_then_the_buffer_then_live_each_event_once():
    log = make_log(buffer_size=2)
    for seq in range(100, 106):
        log.append(row(seq))
    assert not log.covers(101)  # 100..103 fell out of the buffer
    # The ledger had every matching event up to 107; the tailer is at 105 so far.
    backfill = [entry(row(seq)) for seq in range(102, 108)]
    subscriber = log.subscribe(Filter(player_id="alice"), after=101, backfill=backfill, seen=107)
    log.append(row(106))  # the tailer catches up: already replayed
    log.append(row(107))
    log.append(row(108))
    assert drain(subscriber) == [102, 103, 104, 105, 106, 107, 108]


def test_a_frame_is_the_sequence_and_the_stored_json():
    assert entry(row(42)).frame == b'id: 42\ndata: {"event_id":"evt_42","payment_id":"p1"}\n\n'


async def test_a_slow_subscriber_is_cut_off_not_buffered_without_bound():
    log = make_log(subscriber_queue=2)
    subscriber = log.subscribe(Filter(player_id="alice"))
    for seq in range(100, 103):
        log.append(row(seq))
    with pytest.raises(StreamClosed, match="too slow"):
        await subscriber.next(0.01)


async def test_next_waits_for_an_event_or_the_timeout():
    log = make_log()
    subscriber = log.subscribe(Filter(player_id="alice"))
    assert await subscriber.next(0.01) is None
    waiter = asyncio.create_task(subscriber.next(2))
    await asyncio.sleep(0)
    log.append(row(100))
    got = await asyncio.wait_for(waiter, 1)
    assert got is not None and got.frame.startswith(b"id: 100\ndata: {")
    log.close_all("shutdown")
    with pytest.raises(StreamClosed):
        await subscriber.next(2)


def test_too_many_subscribers_is_refused():
    log = make_log(max_subscribers=1)
    first = log.subscribe(Filter(player_id="a"))
    with pytest.raises(ApiError) as info:
        log.subscribe(Filter(player_id="b"))
    assert info.value.status == 503
    log.unsubscribe(first)
    log.subscribe(Filter(player_id="b"))
