from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator

import limits.aio.storage.memory
import pytest
from limits.errors import StorageError
from redis.exceptions import RedisError

from policies import fixed_window, ratelimit
from policies.ratelimit import (
    Cooldowns,
    Decision,
    RateLimiter,
    RateLimitUnavailable,
    parse_rate,
)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:  # stands in for the `time` module where only time() is used
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def limiter() -> AsyncIterator[RateLimiter]:
    rl = RateLimiter()
    yield rl
    await rl.close()


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """limits offers no clock injection: swap the `time` its memory storage and we read."""
    clock = FakeClock(1_700_000_000.0)
    monkeypatch.setattr(limits.aio.storage.memory, "time", clock)
    monkeypatch.setattr(ratelimit, "time", clock)
    monkeypatch.setattr(fixed_window, "time", clock)
    return clock


# --- counting down and refusing ------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
async def test_n_allowed_counting_down_then_refused(strategy: str) -> None:
    rl = RateLimiter(strategy=strategy)
    try:
        for expected_remaining in (4, 3, 2, 1, 0):
            d = await rl.hit("5/minute", "client-1")
            assert d.allowed is True
            assert d.limit == 5
            assert d.remaining == expected_remaining
            assert d.retry_after_s == 0
            assert 59 <= d.reset_after_s <= 60
            assert d.headers() == {
                "RateLimit-Limit": "5",
                "RateLimit-Remaining": str(expected_remaining),
                "RateLimit-Reset": str(d.reset_after_s),
            }
        refused = await rl.hit("5/minute", "client-1")
        assert refused.allowed is False
        assert refused.limit == 5
        assert refused.remaining == 0
        assert 1 <= refused.retry_after_s <= 60
        assert refused.reset_after_s == refused.retry_after_s
        assert refused.headers() == {
            "RateLimit-Limit": "5",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(refused.retry_after_s),
            "Retry-After": str(refused.retry_after_s),
        }
        # Still refused on the next attempt: refusals do not leak budget.
        again = await rl.hit("5/minute", "client-1")
        assert (again.allowed, again.remaining) == (False, 0)
    finally:
        await rl.close()


async def test_default_strategy_is_fixed_window_on_its_own_counters() -> None:
    assert ratelimit.DEFAULT_STRATEGY == "fixed-window"
    rl = RateLimiter()
    try:
        await rl.hit("1/minute", "k")
        # One dict entry per key and no task: `limits` is not involved at all.
        assert isinstance(rl._memory, fixed_window.MemoryWindows) and len(rl._memory) == 1
        assert rl._limiter is None
    finally:
        await rl.close()


def test_memory_windows_forget_ended_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(1_700_000_000.0)
    monkeypatch.setattr(fixed_window, "time", clock)
    windows = fixed_window.MemoryWindows()
    for i in range(fixed_window.PRUNE_EVERY - 1):
        windows.hit(f"k{i}", 1, 1)
    clock.advance(2)
    windows.hit("last", 1, 1)  # the sweep comes with the next thousandth new window
    assert len(windows) == 1


async def test_exact_values_with_fake_time(limiter: RateLimiter, fake_time: FakeClock) -> None:
    first = await limiter.hit("2/minute", "c")
    assert first == Decision(True, 2, 1, 60, 0)
    fake_time.advance(10)
    assert await limiter.hit("2/minute", "c") == Decision(True, 2, 0, 50, 0)
    fake_time.advance(49.5)
    # 0.5 s left: rounded up, so a client waiting that long finds the window reset.
    assert await limiter.hit("2/minute", "c") == Decision(False, 2, 0, 1, 1)
    fake_time.advance(0.5)
    assert await limiter.hit("2/minute", "c") == Decision(True, 2, 1, 60, 0)


async def test_window_resets_in_real_time(limiter: RateLimiter) -> None:
    assert (await limiter.hit("2/second", "k")).allowed
    assert (await limiter.hit("2/second", "k")).allowed
    refused = await limiter.hit("2/second", "k")
    assert (refused.allowed, refused.retry_after_s) == (False, 1)
    await asyncio.sleep(1.05)
    after = await limiter.hit("2/second", "k")
    assert (after.allowed, after.remaining) == (True, 1)


async def test_concurrent_hits_allow_exactly_the_limit(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(*(limiter.hit("10/minute", "c") for _ in range(25)))
    assert sum(d.allowed for d in decisions) == 10
    assert all(d.remaining == 0 for d in decisions if not d.allowed)


async def test_cost_consumes_several(limiter: RateLimiter) -> None:
    d = await limiter.hit("3/minute", "c", cost=2)
    assert (d.allowed, d.remaining) == (True, 1)
    d = await limiter.hit("3/minute", "c", cost=2)
    assert (d.allowed, d.remaining) == (False, 0)
    with pytest.raises(ValueError, match="cost"):
        await limiter.hit("3/minute", "c", cost=0)


async def test_sliding_window_counter_refusal_has_retry_after_at_least_1() -> None:
    rl = RateLimiter(strategy="sliding-window-counter")
    try:
        assert (await rl.hit("1/second", "k")).allowed
        refused = await rl.hit("1/second", "k")
        assert refused.allowed is False
        assert refused.retry_after_s >= 1
        assert refused.headers()["Retry-After"] == str(refused.retry_after_s)
    finally:
        await rl.close()


def test_refused_decision_is_clamped_when_the_reset_is_now(fake_time: FakeClock) -> None:
    item = parse_rate("5/second")
    assert ratelimit._decision(item, False, fake_time.now, 0) == Decision(False, 5, 0, 1, 1)
    assert ratelimit._decision(item, False, fake_time.now - 3, -2) == Decision(False, 5, 0, 1, 1)
    assert ratelimit._decision(item, True, fake_time.now - 3, 4) == Decision(True, 5, 4, 0, 0)


# --- keys ------------------------------------------------------------------------------------


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    for _ in range(2):
        assert (await limiter.hit("2/minute", "in", "client-a")).allowed
    assert not (await limiter.hit("2/minute", "in", "client-a")).allowed
    b = await limiter.hit("2/minute", "in", "client-b")
    assert (b.allowed, b.remaining) == (True, 1)
    out = await limiter.hit("2/minute", "out", "client-a")
    assert (out.allowed, out.remaining) == (True, 1)
    # Another rate on the same keys is another counter.
    other = await limiter.hit("3/minute", "in", "client-a")
    assert (other.allowed, other.remaining) == (True, 2)


async def test_slash_in_a_key_does_not_collide_with_two_keys(limiter: RateLimiter) -> None:
    assert (await limiter.hit("1/minute", "a/b")).allowed
    assert (await limiter.hit("1/minute", "a", "b")).allowed
    assert (await limiter.hit("1/minute", "a%2Fb")).allowed
    assert not (await limiter.hit("1/minute", "a/b")).allowed


# --- peek, reset, close --------------------------------------------------------------------


async def test_peek_does_not_consume(limiter: RateLimiter) -> None:
    fresh = await limiter.peek("3/minute", "c")
    assert (fresh.allowed, fresh.remaining, fresh.retry_after_s) == (True, 3, 0)
    assert (await limiter.peek("3/minute", "c")).remaining == 3
    assert (await limiter.hit("3/minute", "c")).remaining == 2
    assert (await limiter.peek("3/minute", "c")).remaining == 2
    assert (await limiter.peek("3/minute", "c")).remaining == 2
    assert (await limiter.hit("3/minute", "c")).remaining == 1
    assert (await limiter.hit("3/minute", "c")).remaining == 0
    full = await limiter.peek("3/minute", "c")
    assert (full.allowed, full.remaining) == (False, 0)
    assert 1 <= full.retry_after_s <= 60
    assert "Retry-After" in full.headers()


async def test_reset_forgets_every_counter(limiter: RateLimiter) -> None:
    await limiter.hit("1/minute", "a")
    await limiter.hit("1/minute", "b")
    await limiter.reset()
    assert (await limiter.hit("1/minute", "a")).remaining == 0
    assert (await limiter.hit("1/minute", "b")).allowed


async def test_close_then_reuse_starts_a_new_storage() -> None:
    rl = RateLimiter()
    await rl.close()  # never used: nothing to release
    assert (await rl.hit("1/minute", "a")).allowed
    assert not (await rl.hit("1/minute", "a")).allowed
    await rl.close()
    assert (await rl.hit("1/minute", "a")).allowed
    await rl.close()


def test_construct_outside_a_running_loop() -> None:
    rl = RateLimiter("redis://127.0.0.1:6379/0", strategy="moving-window")
    assert rl._limiter is None  # nothing bound to a loop yet


@pytest.mark.parametrize("uri", ["memcached://localhost:11211", "mongodb://x", "memory", ""])
def test_unsupported_storage_is_a_config_error(uri: str) -> None:
    with pytest.raises(ValueError, match="unsupported rate-limit storage"):
        RateLimiter(uri)


def test_unknown_strategy_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown rate-limit strategy 'token-bucket'"):
        RateLimiter(strategy="token-bucket")


# --- storage failures ------------------------------------------------------------------------


async def test_refused_redis_raises_unavailable_quickly() -> None:
    rl = RateLimiter(
        "redis://127.0.0.1:1",
        storage_options={"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
    )
    started = time.monotonic()
    with pytest.raises(RateLimitUnavailable) as caught:
        await rl.hit("5/second", "c")
    assert isinstance(caught.value.__cause__, StorageError | RedisError | OSError)
    with pytest.raises(RateLimitUnavailable):
        await rl.peek("5/second", "c")
    with pytest.raises(RateLimitUnavailable):
        await rl.reset()
    assert time.monotonic() - started < 2
    await rl.close()


async def test_hung_redis_times_out_with_default_timeouts() -> None:
    connections: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(1024):  # never answer; return when the client gives up
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rl = RateLimiter(f"redis://127.0.0.1:{port}")
    started = time.monotonic()
    try:
        with pytest.raises(RateLimitUnavailable):
            await rl.hit("5/second", "c")
        assert time.monotonic() - started < 1.5  # 0.25 s socket timeout, not redis-py's 5 s
        assert connections
    finally:
        await rl.close()
        server.close()
        await server.wait_closed()


# --- parse_rate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "window_s"),
    [
        ("100/second", 100, 1),
        ("5/minute", 5, 60),
        ("20 per second", 20, 1),
        ("10/5 seconds", 10, 5),
        ("1 per 2 hours", 1, 7200),
        (" 7 / day ", 7, 86400),
        ("3/MINUTE", 3, 60),
    ],
)
def test_parse_rate_accepts(text: str, amount: int, window_s: int) -> None:
    item = parse_rate(text)
    assert (item.amount, item.get_expiry()) == (amount, window_s)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "fast",
        "5",
        "/minute",
        "5/fortnight",
        "5 minutes",
        "0/second",
        "10/0 seconds",
        "-1/second",
        "1.5/second",
        "5/minute;10/hour",
        "5/minute, 10/hour",
    ],
)
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_rate(text)


def test_parse_rate_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_rate(None)  # type: ignore[arg-type]


def test_parse_rate_is_cached() -> None:
    before = parse_rate.cache_info().hits
    first = parse_rate("42/minute")
    assert parse_rate("42/minute") is first
    assert parse_rate.cache_info().hits == before + 1


# --- Cooldowns -------------------------------------------------------------------------------


def test_cooldown_counts_down_and_expires() -> None:
    clock = FakeClock()
    cd = Cooldowns(clock)
    assert cd.blocked_for("hub88") == 0.0
    cd.block("hub88", 2.5)
    assert cd.blocked_for("hub88") == 2.5
    assert cd.blocked_for("slotegrator") == 0.0
    clock.advance(1.0)
    assert cd.blocked_for("hub88") == 1.5
    clock.advance(1.5)
    assert cd.blocked_for("hub88") == 0.0
    assert "hub88" not in cd._until


def test_cooldown_never_shortens_and_ignores_nonsense() -> None:
    clock = FakeClock()
    cd = Cooldowns(clock)
    cd.block("p", 10)
    cd.block("p", 2)
    assert cd.blocked_for("p") == 10
    cd.block("p", 30)
    assert cd.blocked_for("p") == 30
    for bad in (0, -5, math.nan):
        cd.block("q", bad)
        assert cd.blocked_for("q") == 0.0


def test_cooldown_is_capped() -> None:
    clock = FakeClock()
    cd = Cooldowns(clock, max_s=60)
    cd.block("p", 86_400)
    assert cd.blocked_for("p") == 60
    cd.block("q", math.inf)
    assert cd.blocked_for("q") == 60
    assert Cooldowns(clock)._max_s == 300


# --- the same interface on Redis --------------------------------------------------------------


@pytest.mark.redis
async def test_redis_storage_counts_like_memory_and_is_shared() -> None:
    prefix = f"test:rl:{uuid.uuid4().hex}"
    a = RateLimiter("redis://127.0.0.1:6379/0", key_prefix=prefix)
    b = RateLimiter("redis://127.0.0.1:6379/0", key_prefix=prefix)
    try:
        assert [(await a.hit("3/minute", "c")).remaining for _ in range(2)] == [2, 1]
        shared = await b.hit("3/minute", "c")  # another process, same Redis: same budget
        assert (shared.allowed, shared.remaining) == (True, 0)
        refused = await a.hit("3/minute", "c")
        assert (refused.allowed, refused.remaining) == (False, 0)
        assert 1 <= refused.retry_after_s <= 60
        assert (await b.peek("3/minute", "c")).remaining == 0
        await a.reset()
        assert (await b.hit("3/minute", "c")).remaining == 2
    finally:
        await a.reset()
        await a.close()
        await b.close()
