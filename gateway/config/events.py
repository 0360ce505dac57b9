"""The `events` block of providers.yaml: delivery to the casino backend and the event streams.

What the hub does with these settings is `gateway.events.hub`.

Config (`events` in providers.yaml; every key optional, the two first go together)::

    events:
      webhook_url: https://backend.casino.example/gateway-events
      secret_env: GATEWAY_EVENTS_SECRET   # env var holding the HMAC secret
      max_attempts: 0             # tries per event; 0 retries until delivered
      backoff_initial_s: 1        # first retry delay, doubled per failure ...
      backoff_max_s: 60           # ... up to this
      timeout_ms: 5000            # one delivery attempt
      concurrency: 8              # deliveries in flight at once, per process
      retention_days: 7           # delivered events kept this long (stream resumes)
      stream:
        heartbeat_s: 15           # SSE comment when nothing was sent for this long
        retry_ms: 3000            # reconnect delay told to EventSource clients
        buffer_size: 10000        # recent events kept in memory for resumes (at restart)
        max_subscribers: 10000
        max_per_client: 20        # open streams of one client (key, or address without keys)
        subscriber_queue: 1000    # events a slow client may lag before it is cut off

`max_queue` is still accepted and has no effect: events wait in the ledger's outbox, which
drops none. A bad `events` block stops the gateway at start. A reload with a bad one keeps
the previous settings and logs the problems.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.config.errors import ConfigError


@dataclass(frozen=True, slots=True)
class StreamSettings:
    heartbeat_s: float = 15.0
    retry_ms: int = 3000
    buffer_size: int = 10_000  # events kept for resuming; takes effect at restart
    max_subscribers: int = 10_000
    max_per_client: int = 20  # one client key cannot take every stream
    subscriber_queue: int = 1000  # events waiting for one slow client before it is cut off



@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 0  # 0: retry until delivered (or the process stops)
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    concurrency: int = 8  # requests in flight to the backend at once, across payments

    def delay(self, failures: int) -> float:
        """Backoff before the next try, after `failures` failed tries in a row (>= 1)."""
        exponent = min(failures - 1, 60)  # 2**60 s is past any cap; avoids float overflow
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2**exponent))



@dataclass(frozen=True, slots=True)
class BackendSettings:
    webhook_url: str
    secret: str = field(repr=False)
    timeout_s: float = 5.0



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
        "retention_days",
        "stream",
    }
)
_STREAM_KEYS = frozenset(
    {
        "heartbeat_s",
        "retry_ms",
        "buffer_size",
        "max_subscribers",
        "max_per_client",
        "subscriber_queue",
    }
)


@dataclass(frozen=True, slots=True)
class EventSettings:
    backend: BackendSettings | None
    retry: RetryPolicy
    stream: StreamSettings
    retention_days: int = 7  # events no delivery waits for are pruned after this


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
    check.integer(raw, "events", "max_queue", 1, 1_000_000, 10_000)  # accepted, unused
    retry = RetryPolicy(
        max_attempts=check.integer(raw, "events", "max_attempts", 0, 1_000_000, 0),
        backoff_initial_s=check.seconds(raw, "events", "backoff_initial_s", 3600, 1.0),
        backoff_max_s=check.seconds(raw, "events", "backoff_max_s", 86400, 60.0),
        concurrency=check.integer(raw, "events", "concurrency", 1, 256, 8),
    )
    if retry.backoff_max_s < retry.backoff_initial_s:
        check.problems.append("events.backoff_max_s: must not be below backoff_initial_s")
    timeout_ms = check.integer(raw, "events", "timeout_ms", 1, 120_000, 5000)
    retention_days = check.integer(raw, "events", "retention_days", 1, 3650, 7)
    backend = _backend(raw, env, timeout_ms / 1000, check)
    stream_raw = raw.get("stream", {})
    if not isinstance(stream_raw, Mapping):
        check.problems.append("events.stream: must be a mapping")
        stream_raw = {}
    check.unknown(stream_raw, "events.stream", _STREAM_KEYS)
    stream = StreamSettings(
        heartbeat_s=check.seconds(stream_raw, "events.stream", "heartbeat_s", 300, 15.0),
        retry_ms=check.integer(stream_raw, "events.stream", "retry_ms", 0, 600_000, 3000),
        buffer_size=check.integer(stream_raw, "events.stream", "buffer_size", 1, 1_000_000, 10_000),
        max_subscribers=check.integer(
            stream_raw, "events.stream", "max_subscribers", 1, 1_000_000, 10_000
        ),
        subscriber_queue=check.integer(
            stream_raw, "events.stream", "subscriber_queue", 1, 100_000, 1000
        ),
        max_per_client=check.integer(
            stream_raw, "events.stream", "max_per_client", 1, 100_000, 20
        ),
    )
    if check.problems:
        raise ConfigError(check.problems)
    return EventSettings(
        backend=backend, retry=retry, stream=stream, retention_days=retention_days
    )


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
