"""Payment events: one hub feeding the casino backend (signed POSTs) and live SSE streams.

`gateway.webhooks` turns a verified provider webhook into a normalized event and calls
`publish`; the hub appends it to the stream buffer (`gateway.sse`) and, when
`events.webhook_url` is configured, queues it for the backend (`gateway.event_delivery`,
whose docstring is the backend's contract).

Config (`events` in providers.yaml; every key optional, the two first go together)::

    events:
      webhook_url: https://backend.casino.example/gateway-events
      secret_env: GATEWAY_EVENTS_SECRET   # env var holding the HMAC secret
      max_queue: 10000            # undelivered events kept; beyond it new ones are dropped
      max_attempts: 0             # tries per event; 0 retries until delivered
      backoff_initial_s: 1        # first retry delay, doubled per failure ...
      backoff_max_s: 60           # ... up to this
      timeout_ms: 5000            # one delivery attempt
      concurrency: 8              # deliveries in flight at once
      stream:
        heartbeat_s: 15           # SSE comment when nothing was sent for this long
        retry_ms: 3000            # reconnect delay told to EventSource clients
        buffer_size: 10000        # events kept for Last-Event-ID resumes (at restart)
        max_subscribers: 10000
        subscriber_queue: 1000    # events a slow client may lag before it is cut off

A bad `events` block stops the gateway at start. A reload with a bad one keeps the previous
settings and logs the problems.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp import web

from gateway import sse, upstream
from gateway.config import Config, ConfigError
from gateway.context import GATEWAY
from gateway.event_delivery import (
    BackendSettings,
    DeliveryQueue,
    Outgoing,
    RetryPolicy,
    post_event,
)
from gateway.runtime import Gateway

log = logging.getLogger("gateway.events")

_DELIVERY_KEYS = frozenset(
    {
        "webhook_url",
        "secret_env",
        "max_queue",
        "max_attempts",
        "backoff_initial_s",
        "backoff_max_s",
        "timeout_ms",
        "concurrency",
        "stream",
    }
)
_STREAM_KEYS = frozenset(
    {"heartbeat_s", "retry_ms", "buffer_size", "max_subscribers", "subscriber_queue"}
)


@dataclass(frozen=True, slots=True)
class EventSettings:
    backend: BackendSettings | None
    retry: RetryPolicy
    stream: sse.StreamSettings


# ---- settings -------------------------------------------------------------------------------


class _Checker:
    """Collects every problem of the block, by key path, as config validation does."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def integer(self, raw: Mapping[str, Any], path: str, key: str, lo: int, hi: int, default: int):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.problems.append(f"{path}.{key}: must be an integer from {lo} to {hi}")
            return default
        return value

    def seconds(self, raw: Mapping[str, Any], path: str, key: str, hi: float, default: float):
        value = raw.get(key, default)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not 0 < value <= hi:
            self.problems.append(f"{path}.{key}: must be a number of seconds above 0, at most {hi}")
            return default
        return float(value)

    def unknown(self, raw: Mapping[str, Any], path: str, known: frozenset[str]) -> None:
        for key in sorted(map(str, set(raw) - known)):
            self.problems.append(f"{path}.{key}: unknown setting")


def parse_settings(raw: Mapping[str, Any], env: Mapping[str, str]) -> EventSettings:
    """Typed settings of the `events` block; ConfigError lists every problem."""
    check = _Checker()
    if not isinstance(raw, Mapping):
        raise ConfigError(["events: must be a mapping"])
    check.unknown(raw, "events", _DELIVERY_KEYS)
    retry = RetryPolicy(
        max_queue=check.integer(raw, "events", "max_queue", 1, 1_000_000, 10_000),
        max_attempts=check.integer(raw, "events", "max_attempts", 0, 1_000_000, 0),
        backoff_initial_s=check.seconds(raw, "events", "backoff_initial_s", 3600, 1.0),
        backoff_max_s=check.seconds(raw, "events", "backoff_max_s", 86400, 60.0),
        concurrency=check.integer(raw, "events", "concurrency", 1, 256, 8),
    )
    if retry.backoff_max_s < retry.backoff_initial_s:
        check.problems.append("events.backoff_max_s: must not be below backoff_initial_s")
    timeout_ms = check.integer(raw, "events", "timeout_ms", 1, 120_000, 5000)
    backend = _backend(raw, env, timeout_ms / 1000, check)
    stream_raw = raw.get("stream", {})
    if not isinstance(stream_raw, Mapping):
        check.problems.append("events.stream: must be a mapping")
        stream_raw = {}
    check.unknown(stream_raw, "events.stream", _STREAM_KEYS)
    stream = sse.StreamSettings(
        heartbeat_s=check.seconds(stream_raw, "events.stream", "heartbeat_s", 300, 15.0),
        retry_ms=check.integer(stream_raw, "events.stream", "retry_ms", 0, 600_000, 3000),
        buffer_size=check.integer(stream_raw, "events.stream", "buffer_size", 1, 1_000_000, 10_000),
        max_subscribers=check.integer(
            stream_raw, "events.stream", "max_subscribers", 1, 1_000_000, 10_000
        ),
        subscriber_queue=check.integer(
            stream_raw, "events.stream", "subscriber_queue", 1, 100_000, 1000
        ),
    )
    if check.problems:
        raise ConfigError(check.problems)
    return EventSettings(backend=backend, retry=retry, stream=stream)


def _backend(
    raw: Mapping[str, Any], env: Mapping[str, str], timeout_s: float, check: _Checker
) -> BackendSettings | None:
    url, secret_env = raw.get("webhook_url"), raw.get("secret_env")
    if url is None and secret_env is None:
        return None
    if url is None or secret_env is None:
        # An unsigned delivery would let anyone forge payment events to the backend.
        check.problems.append("events: webhook_url and secret_env go together")
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        check.problems.append("events.webhook_url: must be an http(s) URL with a host")
        return None
    if not isinstance(secret_env, str) or not secret_env:
        check.problems.append("events.secret_env: must name an environment variable")
        return None
    secret = env.get(secret_env)
    if not secret:
        check.problems.append(f"events.secret_env: environment variable '{secret_env}' is not set")
        return None
    return BackendSettings(webhook_url=url, secret=secret, timeout_s=timeout_s)


# ---- the hub ------------------------------------------------------------------------------


class EventHub:
    def __init__(self, gw: Gateway, settings: EventSettings) -> None:
        self.gw = gw
        self.settings = settings
        self._config: Config = gw.runtime.config
        self.log = sse.EventLog(settings.stream)
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


async def stream_handler(request: web.Request) -> web.StreamResponse:
    return await sse.stream(request, request.app[HUB].log)


def setup(app: web.Application) -> None:
    """Register GET /v1/events and the delivery worker."""
    gw = app[GATEWAY]
    try:
        config = gw.runtime.config
        settings = config.event_settings or parse_settings(config.events, os.environ)
    except ConfigError as exc:
        raise ConfigError(exc.problems, gw.runtime.config.source) from None
    app[HUB] = EventHub(gw, settings)
    app.router.add_get("/v1/events", stream_handler, name="events.stream")
    app.cleanup_ctx.append(_delivery)
    app.on_shutdown.append(_end_streams)


async def _delivery(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    # Registered before the gateway's own lifecycle, whose session opens later and closes
    # first: the worker keeps a session of its own for the whole of its life.
    hub.session = upstream.make_session(per_host=hub.settings.retry.concurrency * 2)
    try:
        yield
    finally:
        pending = hub.queue.pending
        await hub.queue.stop()
        if pending:
            log.warning("stopped with undelivered events", extra={"pending": pending})
        await hub.session.close()
        hub.session = None


async def _end_streams(app: web.Application) -> None:
    # Open streams would otherwise hold the shutdown until its timeout.
    app[HUB].log.close_all("shutdown")
