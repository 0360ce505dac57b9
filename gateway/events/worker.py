"""The delivery worker: sends the outbox's pending events to the casino backend.

Every process runs one. Each round it leases the events that are due (the oldest pending
event of each payment, so a payment's events arrive in order) for as long as one attempt
can take plus a margin, sends them (signed, `gateway.events.delivery`), and records the
outcome: delivered, or failed with the next try `RetryPolicy.delay` (jittered) later, or
given up after `max_attempts`. A lease makes one process the only sender of a row while it
tries; a process that dies mid-send leaves a lease that expires, and the row is sent again
(at least once). A round starts when this process wrote events, when one of its sends ends,
and every `POLL_S` otherwise (events written by other replicas, retries coming due).

Metrics: `gateway_event_deliveries_total{outcome}` (delivered, failed, given_up) counts this
process's attempts; the gauges `gateway_event_deliveries_pending`,
`gateway_event_deliveries_failing` and `gateway_event_outbox_lag_seconds` (age of the oldest
undelivered event) describe the whole ledger, read every `STATS_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

from gateway.config.events import BackendSettings, RetryPolicy
from gateway.events.delivery import Outgoing, equal_jitter
from gateway.ledger.database import LedgerUnavailable
from gateway.ledger.ledger import Ledger
from gateway.ledger.outbox import Leased
from gateway.obs.metrics import Metrics

log = logging.getLogger("gateway.events")

POLL_S = 0.5
STATS_S = 1.0
# Past one attempt's timeout: a lease outlives any send of the process holding it.
LEASE_MARGIN_S = 10.0

Send = Callable[[BackendSettings, Outgoing], Awaitable[None]]


class DeliveryWorker:
    def __init__(
        self,
        ledger: Ledger,
        send: Send,
        settings: Callable[[], tuple[BackendSettings | None, RetryPolicy]],
        metrics: Metrics,
        *,
        jitter: Callable[[float], float] = equal_jitter,
        poll_s: float = POLL_S,
    ) -> None:
        self.ledger = ledger
        self._send = send
        self._settings = settings
        self.metrics = metrics
        self._jitter = jitter
        self.poll_s = poll_s
        # Unique per process lifetime: a restarted process never mistakes an old lease
        # (its own predecessor's) for one it holds.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._sending: dict[int, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stats_at = 0.0
        self._unavailable_logged = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event-delivery")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop sending; leases of events not sent yet are given back for another process."""
        tasks = [t for t in (self._task, *self._sending.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(LedgerUnavailable):
            await self.ledger.release_deliveries(self.owner)

    async def join(self, timeout_s: float = 5.0) -> None:
        """Wait until no event is pending in the ledger (tests and the demo)."""
        deadline = time.monotonic() + timeout_s
        while (await self.ledger.delivery_backlog()).pending:
            if time.monotonic() > deadline:
                raise TimeoutError("events still pending")
            self.wake()
            await asyncio.sleep(0.02)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._round()
                if time.monotonic() >= self._stats_at:
                    await self.refresh_gauges()
                self._unavailable_logged = False
            except LedgerUnavailable as exc:
                if not self._unavailable_logged:  # once per outage, not once per poll
                    log.warning("event delivery paused: ledger unreachable",
                                extra={"error": str(exc)})
                    self._unavailable_logged = True
            except Exception:
                log.exception("event delivery round failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # arrives as the wait ends, and a task looping on it would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()

    async def refresh_gauges(self) -> None:
        backlog = await self.ledger.delivery_backlog()
        self._stats_at = time.monotonic() + STATS_S
        self.metrics.events_pending.set(backlog.pending)
        self.metrics.events_failing.set(backlog.failing)
        lag = 0.0
        if backlog.oldest_pending_at is not None:
            lag = max(0.0, self.ledger.clock() - backlog.oldest_pending_at)
        self.metrics.events_lag.set(lag)

    async def _round(self) -> None:
        backend, policy = self._settings()
        if backend is None:
            return
        free = policy.concurrency - len(self._sending)
        if free <= 0:
            return
        leased = await self.ledger.lease_deliveries(
            self.owner, free, backend.timeout_s + LEASE_MARGIN_S
        )
        loop = asyncio.get_running_loop()
        for item in leased:
            task = loop.create_task(self._deliver(item, backend, policy))
            self._sending[item.row.seq] = task
            task.add_done_callback(functools.partial(self._sent, item.row.seq))

    def _sent(self, seq: int, _task: asyncio.Task[None]) -> None:
        self._sending.pop(seq, None)
        self.wake()  # the payment's next event, if any, may go now

    async def _deliver(self, item: Leased, backend: BackendSettings, policy: RetryPolicy) -> None:
        row = item.row
        try:
            await self._send(
                backend, Outgoing(row.event_id, row.payment_id, row.body, item.trace)
            )
        except Exception as exc:  # any failure is retried: that is the contract
            await self._failed(item, policy, exc)
            return
        self.metrics.event_deliveries.labels(outcome="delivered").inc()
        try:
            await self.ledger.delivered(row.seq)
        except LedgerUnavailable as exc:
            # The lease runs out and the event is sent again: at least once, never lost.
            log.warning("event delivered but not recorded; it will be sent again",
                        extra={"event_id": row.event_id, "error": str(exc)})

    async def _failed(self, item: Leased, policy: RetryPolicy, error: BaseException) -> None:
        row = item.row
        failures = item.attempts + 1
        give_up = bool(policy.max_attempts) and failures >= policy.max_attempts
        delay = self._jitter(policy.delay(failures))
        described = _describe(error)
        self.metrics.event_deliveries.labels(outcome="given_up" if give_up else "failed").inc()
        fields = {"event_id": row.event_id, "payment_id": row.payment_id, "attempt": failures,
                  "error": described}
        if give_up:
            log.error("event delivery given up after max_attempts", extra=fields)
        else:
            # One line per failed try: with the backoff cap that is at most one a minute a
            # payment.
            log.warning("event delivery failed; will retry",
                        extra={**fields, "retry_in_s": round(delay, 3)})
        with contextlib.suppress(LedgerUnavailable):  # else the lease expires: tried again
            await self.ledger.delivery_failed(row.seq, self.owner, described, delay, give_up)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
