"""The open event streams of this process and the recent events they fan out from.

Events come from the ledger's outbox (`gateway.ledger.outbox`), read in sequence order by
the hub's tailer (`gateway.events.hub`) and appended here; the sequence number is each
event's SSE id, the same on every replica. A stream resuming from an id this buffer covers
is replayed from memory; an older one (or one this replica has not read up to yet) is read
from the ledger by `gateway.http.events_stream`, and handed to `subscribe` as `backfill`.
Each subscriber remembers the highest id it was given, so an event both replayed and then
read by the tailer reaches it once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass

from gateway.config.events import StreamSettings
from gateway.ledger.outbox import OutboxRow
from gateway.problems import ApiError


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    player_id: str | None
    payment_id: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Filter:
    player_id: str | None = None
    payment_id: str | None = None

    def matches(self, entry: Entry) -> bool:
        # A filter field that is set must match; an event without a player never matches
        # a player filter, so it cannot leak to some player's stream.
        if self.player_id is not None and entry.player_id != self.player_id:
            return False
        return self.payment_id is None or entry.payment_id == self.payment_id


class StreamClosed(Exception):
    pass


class Subscriber:
    """One open stream: events waiting for it, and whether it must end."""

    def __init__(self, flt: Filter, limit: int, owner: str = "") -> None:
        self.filter = flt
        self.owner = owner
        self.seen = 0  # the highest sequence number queued for this stream
        self._items: deque[Entry] = deque()
        self._limit = limit
        self._wake = asyncio.Event()
        self.closed_reason: str | None = None

    def offer(self, entry: Entry) -> None:
        if self.closed_reason is not None or entry.seq <= self.seen:
            return
        if len(self._items) >= self._limit:
            # A client this far behind is cut off rather than buffered without bound;
            # it reconnects with Last-Event-ID and resumes from the shared buffer.
            self.close("too slow")
            return
        self._items.append(entry)
        self.seen = entry.seq
        self._wake.set()

    def backfill(self, entries: list[Entry], seen: int) -> None:
        self._items.extend(entries)
        self._limit += len(entries)  # the replay must not count against live events
        self.seen = max(seen, entries[-1].seq if entries else 0)

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._wake.set()

    async def next(self, timeout_s: float) -> Entry | None:
        """The next event, None after `timeout_s` without one; StreamClosed when ended."""
        if not self._items and self.closed_reason is None:
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # arrives as the wait ends, and a task looping on it would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._wake.wait()
        if self.closed_reason is not None:
            raise StreamClosed(self.closed_reason)
        return self._items.popleft() if self._items else None


def entry(row: OutboxRow) -> Entry:
    frame = b"id: %d\ndata: %s\n\n" % (row.seq, row.body)
    return Entry(row.seq, row.player_id, row.payment_id, frame)


class EventLog:
    """The ring buffer of recent events and the open streams they fan out to."""

    def __init__(self, settings: StreamSettings) -> None:
        self.settings = settings
        self._last_seq: int | None = None  # None until the tailer read where the outbox is
        self._covered_from = 0  # every event after this one is in the buffer or was evicted
        self._buffer: deque[Entry] = deque(maxlen=settings.buffer_size)
        self._subscribers: set[Subscriber] = set()
        self._per_owner: dict[str, int] = {}

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def last_seq(self) -> int | None:
        return self._last_seq

    def start_at(self, seq: int) -> None:
        """The outbox's newest event when the tailer started: the buffer begins after it."""
        self._last_seq = self._covered_from = seq

    def entries(self) -> list[Entry]:
        return list(self._buffer)

    def append(self, row: OutboxRow) -> None:
        new = entry(row)
        if len(self._buffer) == self._buffer.maxlen:
            self._covered_from = self._buffer[0].seq
        self._buffer.append(new)
        self._last_seq = row.seq
        for subscriber in list(self._subscribers):
            if subscriber.filter.matches(new):
                subscriber.offer(new)

    def covers(self, last_id: int) -> bool:
        """Whether every event after `last_id` is in the buffer (or not written yet)."""
        return self._last_seq is not None and self._covered_from <= last_id <= self._last_seq

    def subscribe(
        self,
        flt: Filter,
        owner: str = "",
        *,
        after: int | None = None,
        backfill: list[Entry] | None = None,
        seen: int = 0,
    ) -> Subscriber:
        """A new stream of `owner` (a client): first `backfill` (read from the ledger, every
        matching event up to `seen`), then the buffer's matching events after `after` and
        `seen`, then live ones.

        The replay and the registration happen without an await between them, so no event
        can fall between the two or come twice.
        """
        if len(self._subscribers) >= self.settings.max_subscribers:
            raise ApiError(
                "unavailable", "too many open event streams", headers={"Retry-After": "5"}
            )
        if self._per_owner.get(owner, 0) >= self.settings.max_per_client:
            raise ApiError(
                "rate_limited",
                f"this client has {self.settings.max_per_client} event streams open already",
                headers={"Retry-After": "5"},
            )
        subscriber = Subscriber(flt, self.settings.subscriber_queue, owner)
        self._per_owner[owner] = self._per_owner.get(owner, 0) + 1
        replay = list(backfill or [])
        if after is not None:
            start = max(after, seen, replay[-1].seq if replay else 0)
            replay += [e for e in self._buffer if e.seq > start and flt.matches(e)]
        subscriber.backfill(replay, max(seen, self._last_seq or 0))
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            left = self._per_owner.get(subscriber.owner, 1) - 1
            if left > 0:
                self._per_owner[subscriber.owner] = left
            else:
                self._per_owner.pop(subscriber.owner, None)

    def close_all(self, reason: str) -> None:
        for subscriber in list(self._subscribers):
            subscriber.close(reason)
