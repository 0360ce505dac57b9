"""Payment events: one hub feeding the casino backend (signed POSTs) and live SSE streams.

`gateway.payments.webhooks` turns a verified provider webhook into a normalized event and
calls `publish`; the hub appends it to the stream buffer (`gateway.events.stream_log`) and,
when `events.webhook_url` is configured, queues it for the backend
(`gateway.events.delivery`, whose docstring is the backend's contract). The settings are the
`events` block of providers.yaml (`gateway.config.events`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web

from gateway.config.errors import ConfigError
from gateway.config.events import EventSettings, parse_settings
from gateway.config.model import Config
from gateway.events.delivery import DeliveryQueue, Outgoing, post_event
from gateway.events.stream_log import EventLog

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway

log = logging.getLogger("gateway.events")

# ---- the hub ------------------------------------------------------------------------------


class EventHub:
    def __init__(self, gw: Gateway, settings: EventSettings) -> None:
        self.gw = gw
        self.settings = settings
        self._config: Config = gw.runtime.config
        self.log = EventLog(settings.stream)
        self.queue: DeliveryQueue[Outgoing] = DeliveryQueue(
            self._send,
            settings.retry,
            on_pending=gw.metrics.events_pending.set,
            on_drop=self._dropped,
            on_give_up=self._gave_up,
            on_retry=self._retrying,
        )
        self.session: aiohttp.ClientSession | None = None
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
                self.queue.configure(self.settings.retry)
                self.log.settings = self.settings.stream  # for streams opened from now on
        return self.settings

    def publish(self, event: Mapping[str, Any], player_id: str | None) -> None:
        """Fan one normalized event out; never blocks and never raises for the backend."""
        settings = self.current()
        self.log.publish(event, player_id)
        if settings.backend is not None:
            item = Outgoing(str(event["event_id"]), str(event["payment_id"]), orjson.dumps(event))
            self.queue.put(item.payment_id, item)

    async def _send(self, item: Outgoing) -> None:
        backend = self.current().backend
        if backend is None:
            log.warning(
                "event not delivered: events.webhook_url was removed",
                extra={"event_id": item.event_id},
            )
            return
        if self.session is None:
            raise RuntimeError("the delivery session is not open")
        await post_event(self.session, backend, item)

    def _dropped(self, item: Outgoing) -> None:
        self.gw.metrics.events_dropped.inc()
        log.error(
            "event delivery dropped: the queue is full",
            extra={
                "event_id": item.event_id,
                "payment_id": item.payment_id,
                "max_queue": self.queue.policy.max_queue,
            },
        )

    def _retrying(self, item: Outgoing, failures: int, error: BaseException, delay: float) -> None:
        # One line per failed try: with the backoff cap that is at most one a minute a payment.
        log.warning(
            "event delivery failed; will retry",
            extra={
                "event_id": item.event_id,
                "payment_id": item.payment_id,
                "attempt": failures,
                "retry_in_s": round(delay, 3),
                "error": _describe(error),
            },
        )

    def _gave_up(self, item: Outgoing, error: BaseException) -> None:
        log.error(
            "event delivery given up after max_attempts",
            extra={
                "event_id": item.event_id,
                "payment_id": item.payment_id,
                "error": _describe(error),
            },
        )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


HUB: web.AppKey[EventHub] = web.AppKey("event_hub", EventHub)


def publish(app: web.Application, event: Mapping[str, Any], player_id: str | None) -> None:
    hub = app.get(HUB)
    if hub is not None:
        hub.publish(event, player_id)
