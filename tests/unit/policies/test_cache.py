"""The response cache alone: freshness windows, single flight, stale serving, bounds."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from policies.cache import CacheLimits, CacheSettings, Lookup, ResponseCache, freshness

SWR = CacheSettings(ttl_s=10, stale_while_revalidate_s=5, stale_if_error_s=20)
TTL_ONLY = CacheSettings(ttl_s=10)
SIE = CacheSettings(ttl_s=10, stale_if_error_s=20)
NO_CACHE = CacheSettings(ttl_s=0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Fetcher:
    """A fetch that counts its calls, answers `<name><call number>`, and can be held or fail."""

    def __init__(self, name: str = "v", size: int = 10) -> None:
        self.name = name
        self.size = size
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    def hold(self) -> asyncio.Event:
        self.gate = asyncio.Event()
        return self.gate

    async def __call__(self) -> tuple[str, int]:
        self.calls += 1
        call = self.calls
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return f"{self.name}{call}", self.size


class Boom(Exception):
    pass


def make(
    clock: Clock | None = None, *, max_entries: int = 100, max_bytes: int = 10_000, **kw: Any
) -> ResponseCache[str]:
    limits = CacheLimits(max_entries=max_entries, max_bytes=max_bytes)
    return ResponseCache(limits, clock=clock or Clock(), **kw)


async def settle() -> None:
    """Let every ready task run to its next wait."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
async def no_loop_errors() -> AsyncIterator[None]:
    """Fail the test if the loop reported an error, such as a task exception never retrieved.

    Checked after the test's own references are gone: only then are its finished tasks
    collected, which is when asyncio reports an exception nobody read.
    """
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    yield
    gc.collect()
    await settle()
    loop.set_exception_handler(None)
    assert reported == []


def other_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


# ---- freshness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (0.0, "fresh"),
        (10.0, "fresh"),
        (10.001, "revalidate"),
        (15.0, "revalidate"),
        (15.001, "stale_if_error_only"),
        (30.0, "stale_if_error_only"),
        (30.001, "expired"),
    ],
)
def test_freshness_windows(age: float, expected: str) -> None:
    assert freshness(age, SWR) == expected


def test_freshness_revalidate_window_wider_than_stale_if_error() -> None:
    settings = CacheSettings(ttl_s=10, stale_while_revalidate_s=20, stale_if_error_s=5)
    assert freshness(14.0, settings) == "revalidate"
    assert freshness(30.0, settings) == "revalidate"
    assert freshness(30.001, settings) == "expired"


def test_freshness_all_zero() -> None:
    assert freshness(0.0, NO_CACHE) == "fresh"
    assert freshness(0.001, NO_CACHE) == "expired"


# ---- HIT / MISS / STALE -------------------------------------------------------------------


async def test_transitions_at_exact_boundaries() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()

    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v1", "MISS", 0.0)
    clock.advance(10.0)
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v1", "HIT", 10.0)
    assert fetch.calls == 1

    clock.advance(5.0)  # age 15: last instant of stale-while-revalidate
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v1", "STALE", 15.0)
    await settle()
    assert fetch.calls == 2
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v2", "HIT", 0.0)

    clock.advance(15.5)  # past stale-while-revalidate: a plain miss
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v3", "MISS", 0.0)
    assert fetch.calls == 3
    assert not other_tasks()


async def test_ttl_only_expires_straight_to_miss() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    await cache.get_or_fetch("k", TTL_ONLY, fetch)
    clock.advance(10.0)
    assert (await cache.get_or_fetch("k", TTL_ONLY, fetch)).status == "HIT"
    clock.advance(0.001)
    assert await cache.get_or_fetch("k", TTL_ONLY, fetch) == Lookup("v2", "MISS", 0.0)


async def test_routes_with_different_settings_share_an_entry() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    long = CacheSettings(ttl_s=60)
    short = CacheSettings(ttl_s=5)
    await cache.get_or_fetch("catalog:hub88", long, fetch)
    clock.advance(6.0)
    assert await cache.get_or_fetch("catalog:hub88", long, fetch) == Lookup("v1", "HIT", 6.0)
    assert await cache.get_or_fetch("catalog:hub88", short, fetch) == Lookup("v2", "MISS", 0.0)
    # The refetch refreshed the shared entry for the long route too.
    assert await cache.get_or_fetch("catalog:hub88", long, fetch) == Lookup("v2", "HIT", 0.0)


# ---- single flight ----------------------------------------------------------------------------


async def test_fifty_concurrent_misses_share_one_fetch() -> None:
    cache = make()
    fetch = Fetcher()
    gate = fetch.hold()
    waiters = [asyncio.create_task(cache.get_or_fetch("k", SWR, fetch)) for _ in range(50)]
    await settle()
    assert fetch.calls == 1
    gate.set()
    results = await asyncio.gather(*waiters)
    assert results == [Lookup("v1", "MISS", 0.0)] * 50
    assert fetch.calls == 1
    assert len(cache) == 1
    assert not other_tasks()


@pytest.mark.usefixtures("no_loop_errors")
async def test_concurrent_misses_share_the_failure() -> None:
    cache = make()
    fetch = Fetcher()
    gate = fetch.hold()
    fetch.error = Boom("down")
    waiters = [asyncio.create_task(cache.get_or_fetch("k", SWR, fetch)) for _ in range(10)]
    await settle()
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert fetch.calls == 1
    assert all(r is fetch.error for r in results)
    assert len(cache) == 0


async def test_different_keys_fetch_separately() -> None:
    cache = make()
    a, b = Fetcher("a"), Fetcher("b")
    got = await asyncio.gather(cache.get_or_fetch("a", SWR, a), cache.get_or_fetch("b", SWR, b))
    assert [g.value for g in got] == ["a1", "b1"]
    assert (a.calls, b.calls) == (1, 1)


async def test_cancelled_waiter_does_not_cancel_the_fetch_for_others() -> None:
    cache = make()
    fetch = Fetcher()
    gate = fetch.hold()
    first = asyncio.create_task(cache.get_or_fetch("k", SWR, fetch))
    second = asyncio.create_task(cache.get_or_fetch("k", SWR, fetch))
    await settle()
    first.cancel()
    await settle()
    assert first.cancelled()
    gate.set()
    assert await second == Lookup("v1", "MISS", 0.0)
    assert fetch.calls == 1
    assert cache.peek("k") == ("v1", 0.0)


async def test_fetch_finishes_and_is_stored_when_every_waiter_left() -> None:
    cache = make()
    fetch = Fetcher()
    gate = fetch.hold()
    waiter = asyncio.create_task(cache.get_or_fetch("k", SWR, fetch))
    await settle()
    waiter.cancel()
    await settle()
    gate.set()
    await settle()
    assert cache.peek("k") == ("v1", 0.0)
    assert not other_tasks()


@pytest.mark.usefixtures("no_loop_errors")
async def test_failed_fetch_with_no_waiter_left_reports_nothing() -> None:
    cache = make()
    fetch = Fetcher()
    gate = fetch.hold()
    fetch.error = Boom("down")
    waiters = [asyncio.create_task(cache.get_or_fetch("k", SWR, fetch)) for _ in range(3)]
    await settle()
    for w in waiters:
        w.cancel()
    await settle()
    gate.set()
    await settle()
    assert len(cache) == 0
    assert not other_tasks()


@pytest.mark.usefixtures("no_loop_errors")
async def test_waiter_cancelled_as_the_failure_reaches_it() -> None:
    cache = make()
    fetch = Fetcher()
    gate = fetch.hold()
    fetch.error = Boom("down")
    waiter = asyncio.create_task(cache.get_or_fetch("k", SWR, fetch))
    await settle()
    (flight,) = other_tasks() - {waiter}
    # Runs after the failure is handed to the waiter but before the waiter resumes to read it.
    flight.add_done_callback(lambda _: waiter.cancel())
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter


# ---- stale-while-revalidate -------------------------------------------------------------------


async def test_revalidation_runs_once_for_many_readers_then_hits() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    await cache.get_or_fetch("k", SWR, fetch)
    clock.advance(12.0)
    gate = fetch.hold()
    results = await asyncio.gather(*(cache.get_or_fetch("k", SWR, fetch) for _ in range(30)))
    assert results == [Lookup("v1", "STALE", 12.0)] * 30
    await settle()
    assert fetch.calls == 2
    # Still refreshing: later readers are served stale too, without a second refresh.
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v1", "STALE", 12.0)
    assert fetch.calls == 2
    gate.set()
    await settle()
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v2", "HIT", 0.0)
    assert fetch.calls == 2
    assert not other_tasks()


async def test_miss_joins_a_running_revalidation() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    await cache.get_or_fetch("k", SWR, fetch)
    clock.advance(12.0)
    gate = fetch.hold()
    assert (await cache.get_or_fetch("k", SWR, fetch)).status == "STALE"
    # A route that allows no stale answer at this age waits for the refresh already running.
    joined = asyncio.create_task(cache.get_or_fetch("k", TTL_ONLY, fetch))
    await settle()
    gate.set()
    assert await joined == Lookup("v2", "MISS", 0.0)
    assert fetch.calls == 2


@pytest.mark.usefixtures("no_loop_errors")
async def test_failed_revalidation_keeps_the_entry_and_reports() -> None:
    clock = Clock()
    errors: list[tuple[str, BaseException]] = []
    cache = make(clock, on_background_error=lambda key, exc: errors.append((key, exc)))
    fetch = Fetcher()
    await cache.get_or_fetch("k", SWR, fetch)
    clock.advance(12.0)
    fetch.error = Boom("down")
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v1", "STALE", 12.0)
    await settle()
    assert errors == [("k", fetch.error)]
    assert cache.peek("k") == ("v1", 12.0)
    # The failure is not remembered: the next stale read tries again.
    clock.advance(1.0)
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v1", "STALE", 13.0)
    await settle()
    assert fetch.calls == 3
    assert len(errors) == 2
    fetch.error = None
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v1", "STALE", 13.0)
    await settle()
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v4", "HIT", 0.0)
    assert not other_tasks()


@pytest.mark.usefixtures("no_loop_errors")
async def test_close_cancels_revalidation_and_starts_no_more() -> None:
    clock = Clock()
    errors: list[tuple[str, BaseException]] = []
    cache = make(clock, on_background_error=lambda key, exc: errors.append((key, exc)))
    fetch = Fetcher()
    await cache.get_or_fetch("k", SWR, fetch)
    clock.advance(12.0)
    fetch.hold()
    await cache.get_or_fetch("k", SWR, fetch)
    await settle()
    assert fetch.calls == 2
    await cache.close()
    assert not other_tasks()
    assert errors == []
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v1", "STALE", 12.0)
    await settle()
    assert fetch.calls == 2
    assert not other_tasks()


# ---- stale-if-error ------------------------------------------------------------------------------


async def test_stale_if_error_within_window_then_error_beyond() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    await cache.get_or_fetch("k", SIE, fetch)
    fetch.error = Boom("down")
    clock.advance(30.0)  # ttl 10 + stale-if-error 20: the last instant it may be served
    assert await cache.get_or_fetch("k", SIE, fetch) == Lookup("v1", "STALE", 30.0)
    clock.advance(0.001)
    with pytest.raises(Boom):
        await cache.get_or_fetch("k", SIE, fetch)
    assert fetch.calls == 3
    # Served stale or not, the old entry stays until replaced, evicted or invalidated.
    assert cache.peek("k") is not None


@pytest.mark.usefixtures("no_loop_errors")
async def test_stale_if_error_for_every_concurrent_waiter() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    await cache.get_or_fetch("k", SIE, fetch)
    clock.advance(11.0)
    gate = fetch.hold()
    fetch.error = Boom("down")
    waiters = [asyncio.create_task(cache.get_or_fetch("k", SIE, fetch)) for _ in range(5)]
    await settle()
    gate.set()
    assert await asyncio.gather(*waiters) == [Lookup("v1", "STALE", 11.0)] * 5
    assert fetch.calls == 2


async def test_without_stale_if_error_the_error_propagates() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    await cache.get_or_fetch("k", TTL_ONLY, fetch)
    clock.advance(10.5)
    fetch.error = Boom("down")
    with pytest.raises(Boom):
        await cache.get_or_fetch("k", TTL_ONLY, fetch)


async def test_errors_are_not_cached() -> None:
    cache = make()
    fetch = Fetcher()
    fetch.error = Boom("down")
    with pytest.raises(Boom):
        await cache.get_or_fetch("k", SWR, fetch)
    fetch.error = None
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v2", "MISS", 0.0)
    assert fetch.calls == 2


@pytest.mark.usefixtures("no_loop_errors")
async def test_cancellation_is_not_treated_as_a_fetch_error() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    await cache.get_or_fetch("k", SIE, fetch)
    clock.advance(11.0)
    fetch.hold()
    waiter = asyncio.create_task(cache.get_or_fetch("k", SIE, fetch))
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # The shared fetch is still running for whoever comes next.
    assert fetch.calls == 2
    assert len(other_tasks()) == 1
    assert fetch.gate is not None
    fetch.gate.set()
    await settle()
    assert cache.peek("k") == ("v2", 0.0)


# ---- ttl 0 -----------------------------------------------------------------------------------


async def test_ttl_zero_stores_nothing_but_shares_the_flight() -> None:
    cache = make()
    fetch = Fetcher()
    gate = fetch.hold()
    waiters = [asyncio.create_task(cache.get_or_fetch("k", NO_CACHE, fetch)) for _ in range(5)]
    await settle()
    gate.set()
    assert await asyncio.gather(*waiters) == [Lookup("v1", "MISS", 0.0)] * 5
    assert fetch.calls == 1
    assert len(cache) == 0
    assert await cache.get_or_fetch("k", NO_CACHE, fetch) == Lookup("v2", "MISS", 0.0)
    assert fetch.calls == 2


async def test_ttl_zero_never_reads_a_fresh_entry_of_another_route() -> None:
    cache = make()
    fetch = Fetcher()
    await cache.get_or_fetch("k", SWR, fetch)
    assert await cache.get_or_fetch("k", NO_CACHE, fetch) == Lookup("v2", "MISS", 0.0)
    # Not stored by the ttl-0 route: the other route still sees its own entry.
    assert cache.peek("k") == ("v1", 0.0)


async def test_ttl_zero_falls_back_within_its_stale_if_error() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    await cache.get_or_fetch("k", SWR, fetch)
    clock.advance(3.0)
    fetch.error = Boom("down")
    fallback = CacheSettings(ttl_s=0, stale_if_error_s=3)
    assert await cache.get_or_fetch("k", fallback, fetch) == Lookup("v1", "STALE", 3.0)
    clock.advance(0.5)
    with pytest.raises(Boom):
        await cache.get_or_fetch("k", fallback, fetch)


async def test_caching_caller_joining_a_ttl_zero_flight_stores_it() -> None:
    cache = make()
    fetch = Fetcher()
    gate = fetch.hold()
    uncached = asyncio.create_task(cache.get_or_fetch("k", NO_CACHE, fetch))
    await settle()
    cached = asyncio.create_task(cache.get_or_fetch("k", SWR, fetch))
    await settle()
    gate.set()
    assert (await uncached).value == (await cached).value == "v1"
    assert fetch.calls == 1
    assert cache.peek("k") == ("v1", 0.0)


async def test_stale_reader_makes_a_running_ttl_zero_fetch_refresh_the_entry() -> None:
    clock = Clock()
    cache = make(clock)
    fetch = Fetcher()
    await cache.get_or_fetch("k", SWR, fetch)
    clock.advance(12.0)
    gate = fetch.hold()
    uncached = asyncio.create_task(cache.get_or_fetch("k", NO_CACHE, fetch))
    await settle()
    assert await cache.get_or_fetch("k", SWR, fetch) == Lookup("v1", "STALE", 12.0)
    gate.set()
    assert await uncached == Lookup("v2", "MISS", 0.0)
    assert fetch.calls == 2
    assert cache.peek("k") == ("v2", 0.0)


# ---- bounds ------------------------------------------------------------------------------------


async def fill(cache: ResponseCache[str], *keys: str, size: int = 10) -> None:
    for key in keys:
        await cache.get_or_fetch(key, SWR, Fetcher(key, size))


async def test_lru_eviction_by_entries() -> None:
    cache = make(max_entries=3)
    await fill(cache, "a", "b", "c")
    assert (await cache.get_or_fetch("a", SWR, Fetcher())).status == "HIT"  # a is now recent
    await fill(cache, "d")
    assert [k for k in "abcd" if cache.peek(k)] == ["a", "c", "d"]
    # peek is not a use: c stays least recently used and goes next.
    assert cache.peek("c") is not None
    await fill(cache, "e")
    assert [k for k in "abcde" if cache.peek(k)] == ["a", "d", "e"]
    assert cache.stats() == {"entries": 3, "bytes": 30}


async def test_lru_eviction_by_bytes() -> None:
    cache = make(max_bytes=100)
    await fill(cache, "a", size=40)
    await fill(cache, "b", size=40)
    await cache.get_or_fetch("a", SWR, Fetcher())
    await fill(cache, "c", size=30)  # 110 bytes: b, least recently used, goes
    assert [k for k in "abc" if cache.peek(k)] == ["a", "c"]
    assert cache.stats() == {"entries": 2, "bytes": 70}
    await fill(cache, "d", size=100)  # needs the whole budget: everything else goes
    assert [k for k in "abcd" if cache.peek(k)] == ["d"]
    assert cache.stats() == {"entries": 1, "bytes": 100}


async def test_replacing_an_entry_accounts_its_new_size() -> None:
    clock = Clock()
    cache = make(clock)
    await cache.get_or_fetch("k", TTL_ONLY, Fetcher("x", 40))
    clock.advance(11.0)
    await cache.get_or_fetch("k", TTL_ONLY, Fetcher("y", 25))
    assert cache.stats() == {"entries": 1, "bytes": 25}


async def test_oversize_value_is_returned_not_stored() -> None:
    clock = Clock()
    cache = make(clock, max_bytes=100)
    await fill(cache, "other", size=50)
    fetch = Fetcher(size=101)
    assert await cache.get_or_fetch("big", SWR, fetch) == Lookup("v1", "MISS", 0.0)
    assert cache.peek("big") is None
    assert cache.stats() == {"entries": 1, "bytes": 50}  # nothing evicted for it
    assert await cache.get_or_fetch("big", SWR, fetch) == Lookup("v2", "MISS", 0.0)


async def test_oversize_replacement_drops_the_old_entry() -> None:
    clock = Clock()
    cache = make(clock, max_bytes=100)
    await cache.get_or_fetch("k", TTL_ONLY, Fetcher("small", 10))
    clock.advance(11.0)
    await cache.get_or_fetch("k", TTL_ONLY, Fetcher("big", 500))
    assert cache.peek("k") is None
    assert cache.stats() == {"entries": 0, "bytes": 0}


async def test_hundred_thousand_keys_stay_bounded() -> None:
    cache = make(max_entries=1000, max_bytes=10**9)
    fetch = Fetcher(size=1)
    for i in range(100_000):
        await cache.get_or_fetch(f"key:{i}", SWR, fetch)
    assert fetch.calls == 100_000
    assert len(cache) == 1000
    assert cache.stats() == {"entries": 1000, "bytes": 1000}
    assert cache.peek("key:98999") is None
    assert cache.peek("key:99000") is not None
    assert not other_tasks()


# ---- invalidation ------------------------------------------------------------------------------


async def test_invalidate_by_key_prefix_and_all() -> None:
    cache = make()
    await fill(cache, "games:hub88:1", "games:hub88:2", "games:slot:1", "pay:1")
    assert cache.invalidate("pay:1") == 1
    assert cache.invalidate("pay:1") == 0
    assert cache.invalidate(prefix="games:hub88:") == 2
    assert cache.stats() == {"entries": 1, "bytes": 10}
    assert cache.invalidate(prefix="nothing") == 0
    await fill(cache, "x", "y")
    assert cache.invalidate() == 3
    assert cache.stats() == {"entries": 0, "bytes": 0}
    with pytest.raises(ValueError):
        cache.invalidate("x", prefix="x")


async def test_invalidated_fetch_answers_its_callers_but_is_not_stored() -> None:
    cache = make()
    old = Fetcher("old")
    gate = old.hold()
    before = asyncio.create_task(cache.get_or_fetch("k", SWR, old))
    await settle()
    assert cache.invalidate("k") == 0  # nothing stored yet, but the running fetch is disowned
    new = Fetcher("new")
    after = asyncio.create_task(cache.get_or_fetch("k", SWR, new))
    await settle()
    assert new.calls == 1
    assert (await after).value == "new1"
    gate.set()
    assert (await before).value == "old1"
    assert cache.peek("k") == ("new1", 0.0)
    assert not other_tasks()
