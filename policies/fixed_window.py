"""Fixed-window counters that answer a hit with one storage operation.

A fixed-window decision needs the count after the hit and when the window ends. `limits`
asks its storage for them in separate calls (and its in-process storage starts a task on
every hit); here one call returns both. In process it is a dict entry per key and no await
at all; on Redis it is one Lua script: INCRBY, PEXPIRE when the window is new, PTTL.

The window starts with its first hit and lasts the rate's period, as `limits` counts it.
"""

from __future__ import annotations

import time
from typing import Any

WindowHit = tuple[int, float]  # count after the hit, unix time the window ends

PRUNE_EVERY = 1024  # new windows between sweeps of the ended ones


class MemoryWindows:
    """This process's windows. Not thread safe; one event loop."""

    def __init__(self) -> None:
        self._windows: dict[str, list[Any]] = {}  # key -> [count, ends_at]
        self._opened = 0

    def hit(self, key: str, window_s: int, cost: int) -> WindowHit:
        now = time.time()
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            window = self._windows[key] = [0, now + window_s]
            self._opened += 1
            if self._opened % PRUNE_EVERY == 0:
                self._prune(now)
        window[0] += cost
        return window[0], window[1]

    def peek(self, key: str) -> WindowHit:
        now = time.time()
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            return 0, now
        return window[0], window[1]

    def reset(self) -> None:
        self._windows.clear()

    def __len__(self) -> int:
        return len(self._windows)

    def _prune(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if w[1] <= now]:
            del self._windows[key]


_HIT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
"""


class RedisWindows:
    """Windows shared by every process on one Redis, one round trip per hit."""

    def __init__(self, client: Any, key_prefix: str) -> None:
        self._client = client  # redis.asyncio.Redis
        self._prefix = key_prefix + ":"
        self._script = client.register_script(_HIT)

    async def hit(self, key: str, window_s: int, cost: int) -> WindowHit:
        count, ttl_ms = await self._script(keys=[self._prefix + key], args=[cost, window_s * 1000])
        return int(count), time.time() + int(ttl_ms) / 1000

    async def peek(self, key: str) -> WindowHit:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.get(self._prefix + key)
            pipe.pttl(self._prefix + key)
            count, ttl_ms = await pipe.execute()
        if count is None or ttl_ms < 0:
            return 0, time.time()
        return int(count), time.time() + int(ttl_ms) / 1000

    async def reset(self) -> None:
        batch: list[Any] = []
        async for key in self._client.scan_iter(match=self._prefix + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await self._client.delete(*batch)
                batch.clear()
        if batch:
            await self._client.delete(*batch)

    async def close(self) -> None:
        await self._client.aclose()
