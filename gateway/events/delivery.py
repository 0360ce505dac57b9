"""Delivery of payment events to the casino backend: signing and a retrying, ordered queue.

What the backend receives, one event per request::

    POST <events.webhook_url>
    Content-Type: application/json
    X-Gateway-Event-Id: evt_...           (the same id on every retry of one event)
    X-Gateway-Signature: t=<unix seconds>,v1=<hex>
    traceparent: 00-<trace id>-<parent id>-<flags>   (W3C; tracestate too when there is one)

    {"event_id", "type", "payment_id", "provider", "provider_reference", "amount",
     "currency", "occurred_at"}

`v1` is the hex HMAC-SHA256, keyed with the secret named by `events.secret_env`, of the
string ``f"{t}.{raw_body}"``. The backend recomputes it over the raw body it read, compares
in constant time, and refuses a `t` more than a few minutes from its own clock (each retry
is signed afresh, so a late retry still carries a current `t`). `verify_signature` below is
a reference implementation.

Guarantees: at-least-once while the process lives (a 2xx answer is the only success; a
connection error, a timeout and any other status are retried with exponential backoff),
so the backend must dedupe on `event_id`. Events of one payment arrive in the order the
gateway applied them: a later event waits until the earlier one is delivered or given up.
The queue is in memory and bounded: when full, a new event is dropped, counted in
`gateway_event_deliveries_dropped_total` and logged. The backend can always read a
payment's current state with GET /v1/payments/{id}.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import aiohttp

from gateway.config.events import BackendSettings, RetryPolicy
from gateway.obs.tracing import outgoing_headers

log = logging.getLogger("gateway.events")

T = TypeVar("T")
SIGNATURE_HEADER = "X-Gateway-Signature"
EVENT_ID_HEADER = "X-Gateway-Event-Id"
SIGNATURE_TOLERANCE_S = 300


# ---- signing -------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Gateway-Signature value for `body` sent at `timestamp`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    now: float,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a backend does with X-Gateway-Signature (kept here as the reference)."""
    fields = dict(part.strip().partition("=")[::2] for part in header.split(","))
    timestamp, given = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    expected = sign(secret, int(timestamp), body).partition(",v1=")[2]
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        return False
    return abs(now - int(timestamp)) <= tolerance_s


# ---- the retry policy -------------------------------------------------------------------


def equal_jitter(delay: float) -> float:
    # Half fixed, half random: many payments failing together do not retry in lockstep,
    # and no retry comes sooner than half the nominal delay.
    return delay / 2 + random.random() * delay / 2


# ---- the queue ----------------------------------------------------------------------------


class DeliveryQueue(Generic[T]):
    """Items grouped in lanes by key (the payment id): FIFO in a lane, lanes in parallel.

    One task drains each non-empty lane, so a lane's head blocks only its own lane; the
    semaphore bounds requests in flight, not lanes waiting in backoff. `pending` counts
    every item not yet delivered or given up, the one being tried included.
    """

    def __init__(
        self,
        send: Callable[[T], Awaitable[None]],
        policy: RetryPolicy,
        *,
        on_pending: Callable[[int], None] = lambda n: None,
        on_drop: Callable[[T], None] = lambda item: None,
        on_give_up: Callable[[T, BaseException], None] = lambda item, exc: None,
        on_retry: Callable[[T, int, BaseException, float], None] = lambda *args: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[float], float] = equal_jitter,
    ) -> None:
        self._send = send
        self.policy = policy
        self._on_pending = on_pending
        self._on_drop = on_drop
        self._on_give_up = on_give_up
        self._on_retry = on_retry
        self._sleep = sleep
        self._jitter = jitter
        self._lanes: dict[str, deque[T]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._in_flight = asyncio.Semaphore(policy.concurrency)
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def pending(self) -> int:
        return self._pending

    def configure(self, policy: RetryPolicy) -> None:
        """Apply new limits from a reloaded config; lanes in backoff keep their current wait."""
        if policy.concurrency != self.policy.concurrency:
            self._in_flight = asyncio.Semaphore(policy.concurrency)
        self.policy = policy

    def put(self, key: str, item: T) -> bool:
        """Queue `item` behind the earlier items of `key`; False if it was dropped."""
        if self._closed or self._pending >= self.policy.max_queue:
            self._on_drop(item)
            return False
        self._lanes.setdefault(key, deque()).append(item)
        self._count(+1)
        if key not in self._tasks:
            self._tasks[key] = asyncio.get_running_loop().create_task(self._drain(key))
        return True

    async def join(self) -> None:
        """Wait until every queued item was delivered or given up."""
        await self._idle.wait()

    async def stop(self) -> None:
        """Cancel every lane; undelivered items are lost (the queue lives in memory)."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        self._count(-self._pending)

    def _count(self, delta: int) -> None:
        self._pending += delta
        if self._pending:
            self._idle.clear()
        else:
            self._idle.set()
        self._on_pending(self._pending)

    async def _drain(self, key: str) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                await self._deliver(lane[0])
                lane.popleft()
                self._count(-1)
        finally:
            # No await between the emptiness check and here: put() cannot slip in between.
            if not lane:
                self._lanes.pop(key, None)
            self._tasks.pop(key, None)

    async def _deliver(self, item: T) -> None:
        failures = 0
        while True:
            async with self._in_flight:
                try:
                    await self._send(item)
                    return
                except Exception as exc:  # any failure is retried: that is the contract
                    error: BaseException = exc
            failures += 1
            if self.policy.max_attempts and failures >= self.policy.max_attempts:
                self._on_give_up(item, error)
                return
            delay = self._jitter(self.policy.delay(failures))
            self._on_retry(item, failures, error, delay)
            await self._sleep(delay)


# ---- the HTTP sender --------------------------------------------------------------------


class DeliveryFailed(Exception):
    """The backend did not take the event (non-2xx); the queue retries it."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    event_id: str
    payment_id: str
    body: bytes  # the event's JSON, the same bytes on every attempt


async def post_event(
    session: aiohttp.ClientSession, backend: BackendSettings, item: Outgoing
) -> None:
    """One attempt; raises on anything but a 2xx so the queue retries."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(backend.secret, int(time.time()), item.body),
        EVENT_ID_HEADER: item.event_id,
        **outgoing_headers(),  # the trace of the request that caused the event
    }
    timeout = aiohttp.ClientTimeout(total=backend.timeout_s)
    async with session.post(
        backend.webhook_url,
        data=item.body,
        headers=headers,
        timeout=timeout,
        allow_redirects=False,
    ) as response:
        # Read a little so the connection can be reused; the answer's content is not used.
        await response.content.read(4096)
        if not 200 <= response.status < 300:
            raise DeliveryFailed(f"backend answered HTTP {response.status}")
