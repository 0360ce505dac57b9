"""The buffer of recent events and the open streams they fan out to (GET /v1/events).

Query: `player_id` and/or `payment_id` (at least one; both must match when both are given).
Authenticated like every client route (X-API-Key when `clients` are configured).

The stream::

    retry: 3000                          reconnect delay for the client, sent first

    id: 1764261149123456                 the event's sequence number
    data: {"event_id": "evt_...", "type": "payment.succeeded", "payment_id": ..., ...}

    : ping                               a heartbeat comment every `heartbeat_s`

Resuming: a reconnecting EventSource sends `Last-Event-ID` (or pass `last_event_id` in the
query); the stream first replays the matching events after that id from a bounded
in-memory buffer. When the buffer cannot prove nothing was missed (the id was evicted,
comes from before a restart or from another replica), an ``event: gap`` comes first and
the frontend should re-read its payments with GET /v1/payments/{id}.

Sequence ids start at the process start time in microseconds and grow by one per event,
so they keep increasing across restarts and fit a JavaScript number.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.config.events import StreamSettings
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
        self._items: deque[Entry] = deque()
        self._limit = limit
        self._wake = asyncio.Event()
        self.closed_reason: str | None = None

    def offer(self, entry: Entry) -> None:
        if self.closed_reason is not None:
            return
        if len(self._items) >= self._limit:
            # A client this far behind is cut off rather than buffered without bound;
            # it reconnects with Last-Event-ID and resumes from the shared buffer.
            self.close("too slow")
            return
        self._items.append(entry)
        self._wake.set()

    def backfill(self, entries: list[Entry]) -> None:
        self._items.extend(entries)
        self._limit += len(entries)  # the replay must not count against live events

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._wake.set()

    async def next(self, timeout_s: float) -> Entry | None:
        """The next event, None after `timeout_s` without one; StreamClosed when ended."""
        if not self._items and self.closed_reason is None:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout_s)
        if self.closed_reason is not None:
            raise StreamClosed(self.closed_reason)
        return self._items.popleft() if self._items else None


class EventLog:
    """The ring buffer of recent events and the open streams they fan out to."""

    def __init__(self, settings: StreamSettings, first_seq: int | None = None) -> None:
        self.settings = settings
        self._next_seq = first_seq if first_seq is not None else time.time_ns() // 1000
        self._buffer: deque[Entry] = deque(maxlen=settings.buffer_size)
        self._subscribers: set[Subscriber] = set()
        self._per_owner: dict[str, int] = {}

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    def entries(self) -> list[Entry]:
        return list(self._buffer)

    def publish(self, event: Mapping[str, Any], player_id: str | None) -> int:
        seq = self._next_seq
        self._next_seq += 1
        frame = b"id: %d\ndata: %s\n\n" % (seq, orjson.dumps(event))
        entry = Entry(seq, player_id, str(event["payment_id"]), frame)
        self._buffer.append(entry)
        for subscriber in list(self._subscribers):
            if subscriber.filter.matches(entry):
                subscriber.offer(entry)
        return seq

    def subscribe(
        self, flt: Filter, last_id: int | None, owner: str = ""
    ) -> tuple[Subscriber, bool]:
        """A new stream of `owner` (a client) and whether events may have been missed since
        `last_id`.

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
        gap = False
        if last_id is not None:
            subscriber.backfill([e for e in self._buffer if e.seq > last_id and flt.matches(e)])
            oldest_kept = self._buffer[0].seq if self._buffer else self._next_seq
            gap = last_id > self.last_seq or last_id < oldest_kept - 1
        self._subscribers.add(subscriber)
        return subscriber, gap

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
