"""Shared state behind one small async protocol.

Everything that must be shared once several processes serve (idempotency records, payment
records) goes through `Store`. `MemoryStore` serves one process; a Redis store implements
the same protocol for several.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol


class StoreUnavailable(Exception):
    """The store cannot be reached; callers decide whether to fail open or closed."""


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Atomically create `key`; False if it exists. The basis of at-most-once."""
        ...

    async def delete(self, key: str) -> None: ...

    async def wait_changed(self, key: str, timeout_s: float) -> None:
        """Return when `key` may have changed, or after `timeout_s`."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with `prefix`; how many went."""
        ...

    async def replace_if(self, key: str, expected: bytes, value: bytes, ttl_s: float) -> bool:
        """Set `key` to `value` only if it still holds `expected` (compare-and-set)."""
        ...

    async def delete_if(self, key: str, expected: bytes) -> bool:
        """Delete `key` only if it still holds `expected`."""
        ...


class MemoryStore:
    """A bounded in-process store with per-key expiry (LRU beyond `max_keys`)."""

    def __init__(self, max_keys: int = 200_000, clock: Callable[[], float] = time.monotonic):
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self._waiters: dict[str, asyncio.Event] = {}

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            del self._data[key]
            return None
        return value

    def _put(self, key: str, value: bytes, ttl_s: float) -> None:
        self._data[key] = (self._clock() + ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max_keys:
            self._data.popitem(last=False)
        event = self._waiters.pop(key, None)
        if event is not None:
            event.set()

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._put(key, value, ttl_s)

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        if self._live(key) is not None:
            return False
        self._put(key, value, ttl_s)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)
        event = self._waiters.pop(key, None)
        if event is not None:
            event.set()

    async def wait_changed(self, key: str, timeout_s: float) -> None:
        event = self._waiters.setdefault(key, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)

    async def replace_if(self, key: str, expected: bytes, value: bytes, ttl_s: float) -> bool:
        if self._live(key) != expected:
            return False
        self._put(key, value, ttl_s)
        return True

    async def delete_if(self, key: str, expected: bytes) -> bool:
        if self._live(key) != expected:
            return False
        await self.delete(key)
        return True

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [k for k in self._data if k.startswith(prefix)]
        for key in doomed:
            del self._data[key]
        return len(doomed)

    def __len__(self) -> int:
        return len(self._data)
