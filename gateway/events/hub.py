"""Payment events: from the ledger's outbox to the casino backend and to live SSE streams.

The payment flows write each normalized event to the outbox (`gateway.ledger.outbox`) in
the transaction of the change that causes it, then tell the hub (`written`). The hub runs,
in every process:

- the delivery worker (`gateway.events.worker`), when `events.webhook_url` is configured;
- the tailer, which reads the outbox in sequence order into the stream buffer
  (`gateway.events.stream_log`) that open streams are fed from. It reads at once when this
  process wrote events, and every `TAIL_POLL_S` otherwise: that poll is how an event
  written by another worker or replica reaches this one's streams (within `TAIL_POLL_S`
  plus one query). A short poll of the ledger works the same on SQLite and PostgreSQL,
  needs no extra server or held connection, and costs one indexed range query per poll;
- the retention job, which prunes events no delivery waits for after
  `events.retention_days`.

The settings are the `events` block of providers.yaml (`gateway.config.events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from gateway.config.errors import ConfigError
from gateway.config.events import BackendSettings, EventSettings, RetryPolicy, parse_settings
from gateway.config.model import Config
from gateway.events.delivery import Outgoing, post_event
from gateway.events.stream_log import EventLog
from gateway.events.worker import DeliveryWorker
from gateway.ledger.database import LedgerUnavailable

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway

log = logging.getLogger("gateway.events")

TAIL_POLL_S = 0.25
TAIL_BATCH = 500
PRUNE_INTERVAL_S = 3600.0


class EventHub:
    def __init__(self, gw: Gateway, settings: EventSettings) -> None:
        self.gw = gw
        self.settings = settings
        self._config: Config = gw.runtime.config
        self.log = EventLog(settings.stream)
        self.worker = DeliveryWorker(gw.ledger, self._send, self._delivery_settings, gw.metrics)
        self.session: aiohttp.ClientSession | None = None
        self._tail_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        gw.metrics.events_pending.set(0)

    def current(self) -> EventSettings:
        """The settings of the running config; a reload with a bad block keeps the last good."""
        config = self.gw.runtime.config
        if config is not self._config:
            self._config = config
            try:
                self.settings = config.event_settings or parse_settings(config.events, os.environ)
            except ConfigError as exc:
                log.error("events settings not applied", extra={"problems": exc.problems})
            else:
                self.log.settings = self.settings.stream  # for streams opened from now on
        return self.settings

    # ---- what the payment flows call (gateway.payments.announcements.Announcer)

    def delivers(self) -> bool:
        return self.current().backend is not None

    def written(self) -> None:
        self._tail_wake.set()
        self.worker.wake()

    # ---- lifecycle

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.worker.start()
        self._tasks = [
            loop.create_task(self._tail(), name="event-tail"),
            loop.create_task(self._prune_forever(), name="event-prune"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.worker.stop()

    # ---- delivery

    def _delivery_settings(self) -> tuple[BackendSettings | None, RetryPolicy]:
        settings = self.current()
        return settings.backend, settings.retry

    async def _send(self, backend: BackendSettings, item: Outgoing) -> None:
        if self.session is None:
            raise RuntimeError("the delivery session is not open")
        await post_event(self.session, backend, item)

    # ---- the tailer

    async def _tail(self) -> None:
        ledger = self.gw.ledger
        unreachable = False
        while True:
            self._tail_wake.clear()
            try:
                position = self.log.last_seq
                if position is None:
                    self.log.start_at((await ledger.event_bounds()).last_seq)
                    continue
                _bounds, rows = await ledger.events_after(position, TAIL_BATCH)
                for row in rows:
                    self.log.append(row)
                unreachable = False
                if len(rows) == TAIL_BATCH:
                    continue
            except LedgerUnavailable as exc:
                if not unreachable:
                    log.warning("event streams paused: ledger unreachable",
                                extra={"error": str(exc)})
                    unreachable = True
            except Exception:
                log.exception("reading the event outbox failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # arrives as the wait ends, and a task looping on it would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TAIL_POLL_S):
                    await self._tail_wake.wait()

    # ---- retention

    async def prune(self) -> int:
        return await self.gw.ledger.prune_events(self.current().retention_days * 86400.0)

    async def _prune_forever(self) -> None:
        # Replicas started together spread their pruning over the first interval.
        await asyncio.sleep(random.uniform(60.0, PRUNE_INTERVAL_S))
        while True:
            try:
                pruned = await self.prune()
                log.info("event outbox pruned", extra={"pruned": pruned})
            except LedgerUnavailable as exc:
                log.warning("event outbox pruning skipped", extra={"error": str(exc)})
            await asyncio.sleep(PRUNE_INTERVAL_S)


HUB: web.AppKey[EventHub] = web.AppKey("event_hub", EventHub)
