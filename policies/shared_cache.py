"""A response cache shared by every replica through the `Store`, with a lock for single flight.

Entries carry the wall-clock time they were fetched, so every replica judges freshness the
same way (fresh, stale-while-revalidate, stale-if-error) with the same `CacheSettings` as the
in-process cache. A miss takes a short lock in the store: the replica that gets it fetches,
the others wait for its entry, so a cold catalog is fetched once per cluster. A small
in-process layer in front keeps hot keys off the network for `local_ttl_s`.

When the store is unreachable, the in-process `ResponseCache` takes over: each replica
caches for itself until the store is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from policies.cache import Lookup, ResponseCache, freshness

if TYPE_CHECKING:
    from policies.cache import CacheSettings
    from policies.ports import Store

from policies.ports import StoreUnavailable

log = logging.getLogger("gateway.cache")
T = TypeVar("T")
_HEADER = struct.Struct("!d")  # stored_at, then the encoded value


class Codec(Protocol[T]):
    def encode(self, value: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


@dataclass(frozen=True, slots=True)
class _Local(Generic[T]):
    value: T
    stored_at: float
    until: float  # monotonic time after which the store is asked again


class SharedCache(Generic[T]):
    def __init__(
        self,
        store: Store,
        fallback: ResponseCache[T],
        *,
        local_ttl_s: float = 1.0,
        lock_ttl_s: float = 10.0,
        wait_s: float = 10.0,
        max_local: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.fallback = fallback
        self.local_ttl_s = local_ttl_s
        self.lock_ttl_s = lock_ttl_s
        self.wait_s = wait_s
        self.max_local = max_local
        self.clock = clock
        self.owner = uuid.uuid4().hex.encode()
        self._local: dict[str, _Local[T]] = {}
        self._inflight: dict[str, asyncio.Future[Lookup[T]]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    # ---- reading

    def fresh(self, key: str, settings: CacheSettings) -> T | None:
        """A fresh in-process value, without awaiting anything (the hot path of a hit)."""
        local = self._local.get(key)
        if local is None or time.monotonic() >= local.until:
            return None
        if freshness(self.clock() - local.stored_at, settings) != "fresh":
            return None
        return local.value

    async def get_or_fetch(
        self,
        key: str,
        settings: CacheSettings,
        fetch: Callable[[], Awaitable[tuple[T, int]]],
        codec: Codec[T],
    ) -> Lookup[T]:
        local = self._local.get(key)
        if local is not None and time.monotonic() < local.until:
            age = self.clock() - local.stored_at
            if freshness(age, settings) == "fresh":
                return Lookup(local.value, "HIT", age)
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Lookup[T]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._resolve(key, settings, fetch, codec)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody is warned
            raise
        else:
            future.set_result(result)
            return result
        finally:
            self._inflight.pop(key, None)

    async def _resolve(
        self,
        key: str,
        settings: CacheSettings,
        fetch: Callable[[], Awaitable[tuple[T, int]]],
        codec: Codec[T],
    ) -> Lookup[T]:
        try:
            entry = await self._read(key, codec)
        except StoreUnavailable:
            return await self.fallback.get_or_fetch(key, settings, fetch)
        if entry is not None:
            value, stored_at = entry
            age = self.clock() - stored_at
            state = freshness(age, settings)
            if state == "fresh":
                self._remember(key, value, stored_at)
                return Lookup(value, "HIT", age)
            if state == "revalidate":
                self._refresh_in_background(key, settings, fetch, codec)
                return Lookup(value, "STALE", age)
        return await self._fetch_once(key, settings, fetch, codec, entry)

    async def _fetch_once(
        self,
        key: str,
        settings: CacheSettings,
        fetch: Callable[[], Awaitable[tuple[T, int]]],
        codec: Codec[T],
        old: tuple[T, float] | None,
    ) -> Lookup[T]:
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                locked = await self.store.set_if_absent(
                    self._lock(key), self.owner, self.lock_ttl_s
                )
            except StoreUnavailable:
                locked = True  # nobody to coordinate with: fetch, as one replica alone would
            if locked:
                # The replica we waited for may have written its entry and let go of the
                # lock between our last read and this lock: use its entry, fetch nothing.
                found = await self._newer_entry(key, codec, old)
                if found is None:
                    return await self._fetch_and_store(key, settings, fetch, codec, old)
                with contextlib.suppress(StoreUnavailable):
                    await self.store.delete_if(self._lock(key), self.owner)
                return found
            # Another replica is fetching: wait for its entry instead of asking the provider.
            await asyncio.sleep(0.02)
            found = await self._newer_entry(key, codec, old)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                return await self._fetch_and_store(key, settings, fetch, codec, old)

    async def _newer_entry(
        self, key: str, codec: Codec[T], old: tuple[T, float] | None
    ) -> Lookup[T] | None:
        """The shared entry if another replica wrote one since `old`, kept locally too."""
        try:
            entry = await self._read(key, codec)
        except StoreUnavailable:
            return None
        if entry is None or (old is not None and entry[1] <= old[1]):
            return None
        self._remember(key, *entry)
        return Lookup(entry[0], "MISS", self.clock() - entry[1])

    async def _fetch_and_store(
        self,
        key: str,
        settings: CacheSettings,
        fetch: Callable[[], Awaitable[tuple[T, int]]],
        codec: Codec[T],
        old: tuple[T, float] | None,
    ) -> Lookup[T]:
        try:
            return await self._fetch_and_write(key, settings, fetch, codec, old)
        finally:
            # After the entry is written: replicas polling for it must find it, not the lock
            # gone and the entry missing (they would fetch again).
            # Only our own lock: after a fetch longer than the lock's life, it is another's.
            with contextlib.suppress(StoreUnavailable):
                await self.store.delete_if(self._lock(key), self.owner)

    async def _fetch_and_write(
        self,
        key: str,
        settings: CacheSettings,
        fetch: Callable[[], Awaitable[tuple[T, int]]],
        codec: Codec[T],
        old: tuple[T, float] | None,
    ) -> Lookup[T]:
        try:
            value, _size = await fetch()
        except Exception:
            if old is not None:
                age = self.clock() - old[1]
                if age <= settings.ttl_s + settings.stale_if_error_s:
                    return Lookup(old[0], "STALE", age)
            raise
        stored_at = self.clock()
        if settings.ttl_s > 0:
            keep_s = settings.ttl_s + max(
                settings.stale_while_revalidate_s, settings.stale_if_error_s
            )
            # Served all the same when the store is down; the next replica fetches for itself.
            with contextlib.suppress(StoreUnavailable):
                await self.store.set(
                    self._entry(key), _pack(stored_at, codec.encode(value)), keep_s
                )
            self._remember(key, value, stored_at)
        return Lookup(value, "MISS", 0.0)

    def _refresh_in_background(
        self,
        key: str,
        settings: CacheSettings,
        fetch: Callable[[], Awaitable[tuple[T, int]]],
        codec: Codec[T],
    ) -> None:
        if key in self._refreshing:
            return

        async def refresh() -> None:
            try:
                if await self.store.set_if_absent(self._lock(key), self.owner, self.lock_ttl_s):
                    await self._fetch_and_store(key, settings, fetch, codec, None)
            except Exception as exc:  # the stale entry keeps serving; say why in the log
                log.warning("background refresh failed", extra={"key": key, "error": str(exc)})
            finally:
                self._refreshing.pop(key, None)

        self._refreshing[key] = asyncio.create_task(refresh(), name=f"refresh:{key}")

    async def peek(self, key: str, codec: Codec[T]) -> tuple[T, float] | None:
        """(value, age) of the shared entry, without fetching."""
        try:
            entry = await self._read(key, codec)
        except StoreUnavailable:
            return self.fallback.peek(key)
        if entry is None:
            return self.fallback.peek(key)
        return entry[0], self.clock() - entry[1]

    # ---- housekeeping

    async def invalidate(self, key: str | None = None, *, prefix: str | None = None) -> int:
        flushed = self.fallback.invalidate(key, prefix=prefix)
        for local_key in list(self._local):
            if (
                (key is None and prefix is None)
                or local_key == key
                or (prefix is not None and local_key.startswith(prefix))
            ):
                del self._local[local_key]
        if key is not None:
            await self.store.delete(self._entry(key))
            return max(flushed, 1)
        removed: int = await self.store.delete_prefix(self._entry(prefix or ""))
        # The in-process entries mirror shared ones: count each entry once.
        return max(removed, flushed)

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        for task in list(self._refreshing.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.fallback.close()

    def _remember(self, key: str, value: T, stored_at: float) -> None:
        if len(self._local) >= self.max_local and key not in self._local:
            self._local.pop(next(iter(self._local)))
        self._local[key] = _Local(value, stored_at, time.monotonic() + self.local_ttl_s)

    async def _read(self, key: str, codec: Codec[T]) -> tuple[T, float] | None:
        raw = await self.store.get(self._entry(key))
        if raw is None:
            return None
        stored_at, payload = _unpack(raw)
        return codec.decode(payload), stored_at

    @staticmethod
    def _entry(key: str) -> str:
        return "cache:" + key

    @staticmethod
    def _lock(key: str) -> str:
        return "cachelock:" + key


def _pack(stored_at: float, payload: bytes) -> bytes:
    return _HEADER.pack(stored_at) + payload


def _unpack(raw: bytes) -> tuple[float, bytes]:
    (stored_at,) = _HEADER.unpack_from(raw)
    return stored_at, raw[_HEADER.size :]


class JsonCodec:
    """For values that are plain JSON (payments)."""

    def encode(self, value: Any) -> bytes:
        import orjson

        return orjson.dumps(value)

    def decode(self, data: bytes) -> Any:
        import orjson

        return orjson.loads(data)


class LocalCache(Generic[T]):
    """The in-process cache behind the same interface as `SharedCache` (memory backend)."""

    def __init__(self, cache: ResponseCache[T]) -> None:
        self.fallback = cache

    def fresh(self, key: str, settings: CacheSettings) -> T | None:
        """A fresh value, without awaiting anything (the hot path of a hit)."""
        peeked = self.fallback.peek(key)
        if peeked is None or freshness(peeked[1], settings) != "fresh":
            return None
        return peeked[0]

    async def get_or_fetch(
        self,
        key: str,
        settings: CacheSettings,
        fetch: Callable[[], Awaitable[tuple[T, int]]],
        codec: Codec[T] | None = None,
    ) -> Lookup[T]:
        return await self.fallback.get_or_fetch(key, settings, fetch)

    async def peek(self, key: str, codec: Codec[T] | None = None) -> tuple[T, float] | None:
        return self.fallback.peek(key)

    async def invalidate(self, key: str | None = None, *, prefix: str | None = None) -> int:
        return self.fallback.invalidate(key, prefix=prefix)

    async def close(self) -> None:
        await self.fallback.close()
