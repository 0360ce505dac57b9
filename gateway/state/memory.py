"""The in-process `Store`: one process's keys, bounded, with per-key expiry.

`gateway.state.redis_store` implements the same protocol (`policies.ports.Store`) for
several processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable


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
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
        # arrives as the wait ends, and a task looping on it would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()

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
