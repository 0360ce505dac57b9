"""Redis as the shared engine: one `redis.asyncio` client for the whole gateway.

`RedisLink` owns the client and knows whether Redis is usable. After a failure it marks the
link degraded, so request paths stop paying a timeout on every call and go local at once; a
background probe brings it back when Redis answers again. `RedisStore` implements the
`Store` protocol on top of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from gateway.config.model import StorageSettings
from policies.ports import StoreUnavailable

log = logging.getLogger("gateway.storage")
T = TypeVar("T")
PROBE_INTERVAL_S = 0.25


class RedisLink:
    def __init__(self, settings: StorageSettings) -> None:
        assert settings.url
        timeout = settings.timeout_ms / 1000
        self.settings = settings
        self.prefix = settings.key_prefix
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            settings.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=0,
            # One immediate retry replaces a pooled connection that died with the server;
            # more would only delay noticing that Redis is down.
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self.degraded = False
        self.degraded_since: float | None = None
        self.last_error: str | None = None
        self._probe: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[bool], None]] = []

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """`listener(degraded)` on every change, e.g. to re-read shared state on recovery."""
        self._listeners.append(listener)

    def key(self, name: str) -> str:
        return self.prefix + name

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation, or raise StoreUnavailable at once while degraded."""
        if self.degraded:
            raise StoreUnavailable(self.last_error or "redis unavailable")
        try:
            return await op()
        except (RedisError, OSError, TimeoutError) as exc:
            self.mark_degraded(exc)
            raise StoreUnavailable(str(exc)) from None

    def mark_degraded(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.degraded:
            return
        self.degraded = True
        self.degraded_since = time.time()
        log.warning("redis unavailable; serving from local state", extra={"error": self.last_error})
        for listener in self._listeners:
            listener(True)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._recover(), name="redis-recovery")

    async def _recover(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            try:
                await self.client.ping()
            except (RedisError, OSError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                continue
            # Every pooled connection from before the outage is dead: drop them all, or each
            # would fail one request and mark the link degraded again.
            with contextlib.suppress(RedisError, OSError):
                await self.client.connection_pool.disconnect()
            self.degraded = False
            self.degraded_since = None
            log.warning("redis is back; shared state restored")
            for listener in self._listeners:
                listener(False)
            return

    def status(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "degraded": self.degraded,
            "degraded_since": self.degraded_since,
            "on_failure": self.settings.on_failure,
            "last_error": self.last_error if self.degraded else None,
        }

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self.client.aclose()


# Compare-and-set in one round trip: nothing can slip between the read and the write.
_REPLACE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisStore:
    """The `Store` protocol on Redis: values with expiry, and SET NX for at-most-once."""

    def __init__(self, link: RedisLink, namespace: str = "kv:") -> None:
        self.link = link
        self.namespace = namespace

    def _k(self, key: str) -> str:
        return self.link.key(self.namespace + key)

    async def get(self, key: str) -> bytes | None:
        value: Any = await self.link.call(lambda: self.link.client.get(self._k(key)))
        return value if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        ms = max(1, int(ttl_s * 1000))
        await self.link.call(lambda: self.link.client.set(self._k(key), value, px=ms))

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        ms = max(1, int(ttl_s * 1000))
        created = await self.link.call(
            lambda: self.link.client.set(self._k(key), value, px=ms, nx=True)
        )
        return bool(created)

    async def delete(self, key: str) -> None:
        await self.link.call(lambda: self.link.client.delete(self._k(key)))

    async def replace_if(self, key: str, expected: bytes, value: bytes, ttl_s: float) -> bool:
        ms = max(1, int(ttl_s * 1000))
        done = await self.link.call(
            lambda: self.link.client.eval(_REPLACE_IF, 1, self._k(key), expected, value, ms)
        )
        return bool(done)

    async def delete_if(self, key: str, expected: bytes) -> bool:
        done = await self.link.call(
            lambda: self.link.client.eval(_DELETE_IF, 1, self._k(key), expected)
        )
        return bool(done)

    async def delete_prefix(self, prefix: str) -> int:
        async def scan_and_delete() -> int:
            removed = 0
            batch: list[bytes] = []
            async for key in self.link.client.scan_iter(match=self._k(prefix) + "*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    removed += await self.link.client.delete(*batch)
                    batch.clear()
            if batch:
                removed += await self.link.client.delete(*batch)
            return removed

        return await self.link.call(scan_and_delete)

    async def wait_changed(self, key: str, timeout_s: float) -> None:
        # Polling is enough here: it only paces a request waiting on a concurrent twin.
        await asyncio.sleep(min(timeout_s, 0.05))
