"""Response cache: in-memory, bounded LRU, single flight, RFC 5861 stale serving.

Entries carry only their value, size and when they were stored; whether one is fresh is
decided when it is read, from the `CacheSettings` of the route reading it. So routes with
different settings can share one entry (one provider's catalog behind several endpoints)
and a config reload changes freshness without touching the cache.

At most one fetch per key runs at a time, whoever started it: concurrent misses wait for
it, and a stale-while-revalidate read never starts a second one. The fetch runs as its own
task, shielded from the callers, so a client that disconnects does not abort the fetch the
other callers are waiting for. Nothing per key outlives its fetch: the bound on entries is
the bound on memory, however many distinct keys pass through.

Single event loop only; nothing here is thread safe.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")

Status = Literal["HIT", "MISS", "STALE"]
Freshness = Literal["fresh", "revalidate", "stale_if_error_only", "expired"]
Fetch = Callable[[], Awaitable[tuple[T, int]]]


@dataclass(frozen=True, slots=True)
class CacheSettings:
    ttl_s: float = 0.0
    stale_while_revalidate_s: float = 0.0
    stale_if_error_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CacheLimits:
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Lookup(Generic[T]):
    value: T
    status: Status
    age_s: float  # age of the served entry; 0.0 for a value fetched for this call


def freshness(age_s: float, settings: CacheSettings) -> Freshness:
    """Where an entry of this age stands under these settings (RFC 5861 windows).

    Both stale windows count from the end of `ttl_s`, as the RFC's extensions do.
    """
    if age_s <= settings.ttl_s:
        return "fresh"
    if age_s <= settings.ttl_s + settings.stale_while_revalidate_s:
        return "revalidate"
    if age_s <= settings.ttl_s + settings.stale_if_error_s:
        return "stale_if_error_only"
    return "expired"


class _Entry(Generic[T]):
    __slots__ = ("size", "stored_at", "value")

    def __init__(self, value: T, size: int, stored_at: float) -> None:
        self.value = value
        self.size = size
        self.stored_at = stored_at


class _Flight(Generic[T]):
    """The one fetch running for a key, and whether its result may be stored."""

    __slots__ = ("background", "store", "task")

    def __init__(self, store: bool, background: bool) -> None:
        self.store = store
        self.background = background
        self.task: asyncio.Task[tuple[T, int]]


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Every caller may have gone (cancelled) before a fetch fails; reading the exception
    # here keeps asyncio from reporting it as never retrieved.
    if not task.cancelled():
        task.exception()


class ResponseCache(Generic[T]):
    def __init__(
        self,
        limits: CacheLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_background_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        # `on_background_error` is for logging and metrics: it must not raise, as nothing
        # would see it (the refresh has no caller to hand it to).
        self._limits = limits
        self._clock = clock
        self._on_background_error = on_background_error
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._bytes = 0
        self._flights: dict[str, _Flight[T]] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._entries)

    async def get_or_fetch(self, key: str, settings: CacheSettings, fetch: Fetch[T]) -> Lookup[T]:
        """Serve `key` from the cache when `settings` allow, else fetch it (once for all).

        `fetch` returns the value and its size in bytes. A `ttl_s` of 0 never reads a cached
        value nor stores one, but still shares a running fetch and still falls back to a
        stored entry (kept for another route) within `stale_if_error_s`.
        """
        entry = self._entries.get(key)
        if entry is not None and settings.ttl_s > 0:
            age = self._clock() - entry.stored_at
            state = freshness(age, settings)
            if state == "fresh":
                self._entries.move_to_end(key)
                return Lookup(entry.value, "HIT", age)
            if state == "revalidate":
                self._entries.move_to_end(key)
                running = self._flights.get(key)
                if running is not None:
                    running.store = True  # it refreshes the entry even if started by a ttl-0 route
                elif not self._closed:
                    self._start(key, fetch, store=True, background=True)
                return Lookup(entry.value, "STALE", age)
        flight = self._flights.get(key)
        if flight is None:
            flight = self._start(key, fetch, store=settings.ttl_s > 0, background=False)
        elif settings.ttl_s > 0:
            # A caller that may cache joined a fetch started by one that may not.
            flight.store = True
        try:
            value, _ = await asyncio.shield(flight.task)
        except Exception:
            stale = self._stale_if_error(key, settings)
            if stale is None:
                raise
            return stale
        return Lookup(value, "MISS", 0.0)

    def peek(self, key: str) -> tuple[T, float] | None:
        """The stored value and its age, whatever its freshness; not an LRU use."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        return entry.value, self._clock() - entry.stored_at

    def invalidate(self, key: str | None = None, *, prefix: str | None = None) -> int:
        """Drop one key, every key starting with `prefix`, or everything; returns entries dropped.

        A fetch already running for a dropped key still answers its callers, but its
        result is not stored (it may predate the change that caused the invalidation) and
        later callers start a new one.
        """
        if key is not None and prefix is not None:
            raise ValueError("give a key or a prefix, not both")
        if key is not None:
            keys = [key] if key in self._entries else []
            flights = [key] if key in self._flights else []
        elif prefix is not None:
            keys = [k for k in self._entries if k.startswith(prefix)]
            flights = [k for k in self._flights if k.startswith(prefix)]
        else:
            keys = list(self._entries)
            flights = list(self._flights)
        for k in keys:
            self._bytes -= self._entries.pop(k).size
        for k in flights:
            self._flights.pop(k).store = False
        return len(keys)

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "bytes": self._bytes}

    async def close(self) -> None:
        """Cancel background refreshes and start no new ones; callers' fetches finish."""
        self._closed = True
        tasks = [f.task for f in self._flights.values() if f.background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- internals ------------------------------------------------------------------------

    def _start(self, key: str, fetch: Fetch[T], *, store: bool, background: bool) -> _Flight[T]:
        flight: _Flight[T] = _Flight(store, background)
        # Registered before the task exists: an eager task factory may run it to the end
        # inside create_task, and its own cleanup must find it there.
        self._flights[key] = flight
        flight.task = asyncio.get_running_loop().create_task(self._run(key, flight, fetch))
        flight.task.add_done_callback(_retrieve)
        return flight

    async def _run(self, key: str, flight: _Flight[T], fetch: Fetch[T]) -> tuple[T, int]:
        try:
            value, size = await fetch()
            if flight.store:
                self._put(key, value, size)
            return value, size
        except Exception as exc:
            # The stale entry stays as it was: errors are never cached.
            if flight.background and self._on_background_error is not None:
                self._on_background_error(key, exc)
            raise
        finally:
            # An invalidation may already have replaced this flight with a newer one.
            if self._flights.get(key) is flight:
                del self._flights[key]

    def _put(self, key: str, value: T, size: int) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        size = max(size, 0)
        if size > self._limits.max_bytes or self._limits.max_entries <= 0:
            # Too large to keep; the older entry is gone too, as it is no longer current.
            return
        self._entries[key] = _Entry(value, size, self._clock())
        self._bytes += size
        while len(self._entries) > self._limits.max_entries or self._bytes > self._limits.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def _stale_if_error(self, key: str, settings: CacheSettings) -> Lookup[T] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = self._clock() - entry.stored_at
        if age > settings.ttl_s + settings.stale_if_error_s:
            return None
        self._entries.move_to_end(key)
        return Lookup(entry.value, "STALE", age)
