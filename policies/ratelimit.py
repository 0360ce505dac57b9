"""Rate limits on `limits.aio`, behind one interface whatever the storage.

`RateLimiter` counts in process memory (`memory://`) or in Redis (`redis://...`), so several
gateway processes can share one budget by changing a URI, not code. The default fixed
window counts with `policies.fixed_window` (one storage operation a hit); the other
strategies with `limits`. It answers a `Decision`
carrying everything the response needs (the `RateLimit-*` headers, `Retry-After`); it never
decides what to do when the storage is down: it raises `RateLimitUnavailable` and the caller
fails open or closed.

`Cooldowns` is the other direction: a provider that answered 429 with `Retry-After` is not
asked again until that time has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import limits
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import RateLimiter as _Strategy
from limits.errors import StorageError
from limits.storage import storage_from_string

from policies.fixed_window import MemoryWindows, RedisWindows

try:
    from redis.exceptions import RedisError
except ImportError:  # memory-only deployments need not install redis

    class RedisError(Exception):  # type: ignore[no-redef]
        pass


# Anything the storage raises while counting means "the counter is unreachable", never "the
# client is over its limit"; asyncio timeouts and socket errors can escape redis-py's wrapping.
_STORAGE_ERRORS = (StorageError, RedisError, OSError, TimeoutError)

# Fixed window is the default: one counter per key (a single INCR script on Redis, O(1) memory
# however high the limit), remaining counts down exactly N-1 .. 0, and the reset it reports is
# the true end of the window, so `Retry-After` is exactly when the next request is accepted.
# Moving window is exact too but keeps one entry per request (a 1000/minute limit costs 1000
# timestamps per client); sliding-window-counter is approximate and can report a reset of ~now.
# The price of fixed window is a burst of up to 2N across a window boundary.
DEFAULT_STRATEGY = "fixed-window"
STRATEGIES: dict[str, Callable[[Storage], _Strategy]] = {
    "fixed-window": FixedWindowRateLimiter,
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}

_MEMORY_SCHEMES = frozenset({"memory"})
_REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel"})
# Schemes a plain redis.asyncio client opens; cluster and sentinel stay with `limits`.
_PLAIN_REDIS = frozenset({"redis", "rediss"})

# redis-py waits 5 s by default; a hung Redis would then stall every request that long.
_REDIS_DEFAULTS: dict[str, Any] = {"socket_timeout": 0.25, "socket_connect_timeout": 0.25}

_RATE = re.compile(r"\s*(\d+)\s*(?:/|\bper\b)\s*(\d+)?\s*([a-z]+)\s*", re.IGNORECASE)


class RateLimitUnavailable(Exception):
    """The rate-limit storage failed (e.g. Redis down); the caller decides fail open/closed."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int  # requests per window
    remaining: int  # after this hit, >= 0
    reset_after_s: int  # whole seconds until the window resets; >= 1 when refused
    retry_after_s: int  # >= 1 when refused, 0 when allowed

    def headers(self) -> dict[str, str]:
        """`RateLimit-*` headers (IETF draft, delta seconds) plus `Retry-After` on refusal."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


@lru_cache(maxsize=512)
def parse_rate(text: str) -> limits.RateLimitItem:
    """Parse "100/second", "20 per minute", "10/5 seconds" once; later calls hit the cache.

    Stricter than `limits.parse`, which silently keeps only the first of "5/minute;10/hour",
    turns "10/0 seconds" into 10 per second and accepts a limit of 0.
    """
    if not isinstance(text, str):
        raise ValueError(f"rate limit must be a string like '100/minute', got {text!r}")
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"invalid rate limit {text!r}: expected '<count>/<unit>', '<count> per <unit>' "
            "or '<count>/<n> <unit>s' with unit second, minute, hour, day, month or year"
        )
    amount, multiples, _unit = match.groups()
    if int(amount) < 1:
        raise ValueError(f"invalid rate limit {text!r}: the count must be at least 1")
    if multiples is not None and int(multiples) < 1:
        raise ValueError(f"invalid rate limit {text!r}: the window must be at least 1 unit")
    try:
        return limits.parse(text)
    except ValueError as exc:
        raise ValueError(f"invalid rate limit {text!r}: {exc}") from None


def _identifier(key: str) -> str:
    # limits joins identifiers with "/": escape it so ("a/b",) and ("a", "b") stay apart.
    if "/" in key or "%" in key:
        return key.replace("%", "%25").replace("/", "%2F")
    return key


class RateLimiter:
    """Counts hits per (rate, keys) in the storage named by `storage_uri`.

    The counter is identified by the rate and the keys together, so callers put everything
    that must be counted apart (direction, client, route, provider) in `keys`. The storage is
    created on first use because `MemoryStorage` starts tasks and Redis clients bind to the
    running loop, while the limiter itself is usually built before the loop runs.
    """

    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        strategy: str = DEFAULT_STRATEGY,
        key_prefix: str = "gw:rl",
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        scheme, sep, _rest = storage_uri.partition("://")
        scheme = scheme.lower().removeprefix("async+")
        if not sep or scheme not in _MEMORY_SCHEMES | _REDIS_SCHEMES:
            raise ValueError(
                f"unsupported rate-limit storage {storage_uri!r}: use memory:// or redis://"
            )
        if strategy not in STRATEGIES:
            raise ValueError(
                f"unknown rate-limit strategy {strategy!r}: one of {', '.join(sorted(STRATEGIES))}"
            )
        self._is_redis = scheme in _REDIS_SCHEMES
        if self._is_redis and importlib.util.find_spec("redis") is None:
            raise ValueError(f"rate-limit storage {storage_uri!r} needs the redis package")
        self._uri = f"async+{scheme}://{_rest}"
        self._redis_url = f"{scheme}://{_rest}"
        self._strategy_name = strategy
        self._key_prefix = key_prefix
        self._options = dict(storage_options or {})
        self._storage: Storage | None = None
        self._limiter: _Strategy | None = None
        # The fixed window's own counters: one operation a hit (policies.fixed_window).
        self._fixed = strategy == "fixed-window" and (not self._is_redis or scheme in _PLAIN_REDIS)
        self._memory: MemoryWindows | None = None
        self._redis: RedisWindows | None = None

    def _build(self) -> _Strategy:
        # No await before the assignment: concurrent first calls cannot build two storages.
        if self._limiter is None:
            options: dict[str, Any] = {"wrap_exceptions": True}
            if self._is_redis:
                # One Redis client library in the gateway (the default implementation is
                # coredis); the prefix keeps reset() to this limiter's keys in a shared Redis.
                options |= _REDIS_DEFAULTS
                options |= {"implementation": "redispy", "key_prefix": self._key_prefix}
            # A private in-process storage holds nothing else, so it needs no prefix.
            options |= self._options
            storage = storage_from_string(self._uri, **options)
            assert isinstance(storage, Storage)
            self._storage = storage
            self._limiter = STRATEGIES[self._strategy_name](storage)
        return self._limiter

    def _windows(self) -> MemoryWindows | RedisWindows:
        if not self._is_redis:
            if self._memory is None:
                self._memory = MemoryWindows()
            return self._memory
        if self._redis is None:
            import redis.asyncio as aioredis

            options = {**_REDIS_DEFAULTS, **self._options}
            pool = options.pop("connection_pool", None)
            if pool is not None:  # the caller's pool: its timeouts, its connections
                client = aioredis.Redis(connection_pool=pool)
            else:
                client = aioredis.Redis.from_url(self._redis_url, **options)
            self._redis = RedisWindows(client, self._key_prefix)
        return self._redis

    async def hit(self, rate: str, *keys: str, cost: int = 1) -> Decision:
        """Consume `cost` from the budget; refused hits are answered with the wait."""
        item = parse_rate(rate)
        if cost < 1:
            raise ValueError(f"cost must be at least 1, got {cost}")
        if self._fixed:
            key = _window_key(item, keys)
            windows = self._windows()
            if isinstance(windows, MemoryWindows):
                count, reset_at = windows.hit(key, item.get_expiry(), cost)
            else:
                try:
                    count, reset_at = await windows.hit(key, item.get_expiry(), cost)
                except _STORAGE_ERRORS as exc:
                    raise RateLimitUnavailable(f"rate-limit storage failed: {exc!r}") from exc
            return _decision(item, count <= item.amount, reset_at, item.amount - count)
        ids = [_identifier(k) for k in keys]
        limiter = self._build()
        try:
            allowed = await limiter.hit(item, *ids, cost=cost)
            # Read after the hit: under concurrency this may count others' hits too, which only
            # ever under-reports what is left.
            reset_at, remaining = await limiter.get_window_stats(item, *ids)
        except _STORAGE_ERRORS as exc:
            raise RateLimitUnavailable(f"rate-limit storage failed: {exc!r}") from exc
        return _decision(item, allowed, reset_at, remaining)

    async def peek(self, rate: str, *keys: str) -> Decision:
        """What a hit of cost 1 would be told, without consuming anything."""
        item = parse_rate(rate)
        if self._fixed:
            windows = self._windows()
            try:
                count, reset_at = (
                    windows.peek(_window_key(item, keys))
                    if isinstance(windows, MemoryWindows)
                    else await windows.peek(_window_key(item, keys))
                )
            except _STORAGE_ERRORS as exc:
                raise RateLimitUnavailable(f"rate-limit storage failed: {exc!r}") from exc
            remaining = item.amount - count
            return _decision(item, remaining >= 1, reset_at, remaining)
        ids = [_identifier(k) for k in keys]
        limiter = self._build()
        try:
            reset_at, remaining = await limiter.get_window_stats(item, *ids)
        except _STORAGE_ERRORS as exc:
            raise RateLimitUnavailable(f"rate-limit storage failed: {exc!r}") from exc
        return _decision(item, remaining >= 1, reset_at, remaining)

    async def reset(self) -> None:
        """Forget every counter (on Redis: every key under this limiter's prefix)."""
        if self._fixed:
            windows = self._windows()
            if isinstance(windows, MemoryWindows):
                windows.reset()
                return
            try:
                await windows.reset()
            except _STORAGE_ERRORS as exc:
                raise RateLimitUnavailable(f"rate-limit storage failed: {exc!r}") from exc
            return
        self._build()
        assert self._storage is not None
        try:
            await self._storage.reset()
        except _STORAGE_ERRORS as exc:
            raise RateLimitUnavailable(f"rate-limit storage failed: {exc!r}") from exc

    async def close(self) -> None:
        """Release the storage; a later call builds a new one in whatever loop then runs."""
        self._memory = None
        redis_windows, self._redis = self._redis, None
        if redis_windows is not None:
            with contextlib.suppress(*_STORAGE_ERRORS):
                await redis_windows.close()
        storage, self._storage, self._limiter = self._storage, None, None
        if storage is None:
            return
        if isinstance(storage, MemoryStorage):
            timer = storage.timer
            if timer is not None and not timer.done():
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer
            return
        client = getattr(getattr(storage, "bridge", None), "storage", None)
        aclose = getattr(client, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(*_STORAGE_ERRORS):
                await aclose()


def _window_key(item: limits.RateLimitItem, keys: tuple[str, ...]) -> str:
    return "/".join([*map(_identifier, keys), str(item.amount), str(item.multiples),
                     item.GRANULARITY.name])


def _decision(
    item: limits.RateLimitItem, allowed: bool, reset_at: float, remaining: int
) -> Decision:
    # Round up: a client that waits the advertised seconds must find the window reset.
    reset_after = max(0, math.ceil(reset_at - time.time()))
    if allowed:
        return Decision(True, item.amount, max(0, remaining), reset_after, 0)
    # Sliding-window-counter (and Redis' whole-second TTL) can put the reset at about now.
    wait = max(1, reset_after)
    return Decision(False, item.amount, max(0, remaining), wait, wait)


class Cooldowns:
    """Providers that asked us (429 + Retry-After) to wait, and until when.

    Process-local on purpose: each process learns of a provider's 429 on its own next call.
    A block never shortens an existing one, and is capped at `max_s` so a bogus Retry-After
    (hours, days) cannot take a provider out of rotation indefinitely.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_s: float = 300.0
    ) -> None:
        self._clock = clock
        self._max_s = max_s
        self._until: dict[str, float] = {}

    def block(self, name: str, seconds: float) -> None:
        seconds = float(seconds)
        if math.isnan(seconds) or seconds <= 0:
            return
        until = self._clock() + min(seconds, self._max_s)
        if until > self._until.get(name, -math.inf):
            self._until[name] = until

    def blocked_for(self, name: str) -> float:
        """Seconds left to wait before calling `name` again; 0.0 when it may be called."""
        until = self._until.get(name)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[name]
            return 0.0
        return left
