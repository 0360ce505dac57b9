"""One aggregator's catalog kept warm: fetch, keep, back off, expire, and share with replicas.

No network: the fetch is a function the test controls, and "Redis" is the in-process store
two trackers share, as two replicas would share Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters.base import ProviderGame
from gateway.config.model import CatalogSettings
from gateway.games import codec
from gateway.games.tracker import CatalogFetchError, CatalogTracker
from gateway.state.memory import MemoryStore
from policies.ports import StoreUnavailable

GAME = ProviderGame("g1", "Game", "Studio", "slots", None, None, ("desktop",), True, None)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Upstream:
    """The aggregator: counts fetches, can fail, can be held mid-fetch."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: CatalogFetchError | None = None
        self.gate: asyncio.Event | None = None
        self.games: tuple[ProviderGame, ...] = (GAME,)

    async def __call__(self) -> tuple[ProviderGame, ...]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.games


def upper_jitter(lo: float, hi: float) -> float:
    return hi


Made = Callable[..., CatalogTracker]


@pytest.fixture
async def make() -> AsyncIterator[Made]:
    made: list[CatalogTracker] = []

    def build(upstream: Upstream, **kwargs: Any) -> CatalogTracker:
        kwargs.setdefault("settings", CatalogSettings(refresh_s=60, max_stale_s=600))
        kwargs.setdefault("jitter", upper_jitter)
        settings = kwargs.pop("settings")
        tracker = CatalogTracker("hub88", "hub88:abc", settings, upstream, **kwargs)
        made.append(tracker)
        return tracker

    yield build
    for tracker in made:
        await tracker.close()


async def test_a_refresh_fetches_and_schedules_the_next_one_jittered(make: Made):
    clock, upstream, seen = Clock(), Upstream(), []
    tracker = make(upstream, clock=clock, on_refresh=lambda *a: seen.append(a[:2]))
    assert await tracker.refresh() == "fetched"
    assert tracker.catalog is not None and tracker.catalog.games == (GAME,)
    assert tracker.catalog.fetched_at == 1_000.0
    assert (tracker.status, tracker.last_outcome, tracker.kept_after_failure) == (
        "ok",
        "fetched",
        False,
    )
    assert tracker.next_refresh_at == pytest.approx(1_000 + 60 * 1.1)
    assert seen == [("hub88", "fetched")]


async def test_concurrent_refreshes_share_one_fetch(make: Made):
    upstream = Upstream()
    upstream.gate = asyncio.Event()
    tracker = make(upstream)
    waiting = [asyncio.create_task(tracker.refresh()) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert tracker.refreshing
    upstream.gate.set()
    assert await asyncio.gather(*waiting) == ["fetched"] * 5
    assert upstream.calls == 1


async def test_a_failed_refresh_keeps_the_catalog_and_backs_off(make: Made):
    clock, upstream = Clock(), Upstream()
    tracker = make(upstream, clock=clock, settings=CatalogSettings(refresh_s=5, max_stale_s=600))
    await tracker.refresh()
    kept = tracker.catalog
    upstream.fail = CatalogFetchError("timeout", "no answer within 2s")
    retries = []
    for _ in range(5):
        assert await tracker.refresh() == "timeout"
        retries.append(round(tracker.next_refresh_at - clock.now, 3))
    assert tracker.catalog is kept
    assert (tracker.status, tracker.kept_after_failure) == ("timeout", True)
    assert tracker.last_error == "no answer within 2s"
    # 1, 2, 4 s ... (times the upper jitter), never longer than refresh_s.
    assert retries == [1.1, 2.2, 4.4, 5.5, 5.5]
    upstream.fail = None
    assert await tracker.refresh() == "fetched"
    assert (tracker.failures, tracker.kept_after_failure) == (0, False)


async def test_a_catalog_older_than_max_stale_is_dropped(make: Made):
    clock, upstream, changes = Clock(), Upstream(), []
    tracker = make(
        upstream,
        clock=clock,
        settings=CatalogSettings(refresh_s=10, max_stale_s=100),
        on_change=lambda: changes.append(1),
    )
    await tracker.refresh()
    upstream.fail = CatalogFetchError("error", "HTTP 500")
    await tracker.refresh()
    clock.now += 100
    tracker._expire_if_too_old()
    assert tracker.catalog is not None  # exactly max_stale_s old: still kept
    clock.now += 0.5
    tracker._expire_if_too_old()
    assert tracker.catalog is None and tracker.status == "error"
    assert len(changes) == 3  # fetched, failed, dropped


async def test_the_first_attempt_is_what_requests_may_wait_for(make: Made):
    upstream = Upstream()
    upstream.gate = asyncio.Event()
    upstream.fail = CatalogFetchError("error", "refused")
    tracker = make(upstream)
    tracker.start()
    await asyncio.sleep(0.01)
    assert tracker.pending_first
    waiter = asyncio.create_task(tracker.wait_first())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    upstream.gate.set()
    await asyncio.wait_for(waiter, 1)
    # Failed, so no catalog; but nobody waits again: later attempts are in the background.
    assert not tracker.pending_first and tracker.catalog is None


async def test_the_loop_refreshes_on_schedule(make: Made):
    upstream = Upstream()
    tracker = make(upstream, settings=CatalogSettings(refresh_s=0.05, max_stale_s=10))
    tracker.start()
    for _ in range(200):
        if upstream.calls >= 3:
            break
        await asyncio.sleep(0.01)
    assert upstream.calls >= 3


# ---- replicas sharing a store ----------------------------------------------------------------


async def test_the_second_replica_adopts_instead_of_fetching(make: Made):
    store, clock = MemoryStore(), Clock()
    upstream_a, upstream_b = Upstream(), Upstream()
    a = make(upstream_a, shared=store, clock=clock)
    b = make(upstream_b, shared=store, clock=clock)
    assert await a.refresh() == "fetched"
    assert await b.refresh() == "shared"
    assert b.catalog is not None and b.catalog.fetched_at == a.catalog.fetched_at  # type: ignore[union-attr]
    assert b.next_refresh_at == a.next_refresh_at  # scheduled from when it was fetched
    # Next round, b is first: its copy is the newest there is, so it fetches; a adopts.
    clock.now += 66
    assert await b.refresh() == "fetched"
    assert await a.refresh() == "shared"
    assert (upstream_a.calls, upstream_b.calls) == (1, 1)


async def test_a_replica_waits_for_the_one_holding_the_lock(make: Made):
    store = MemoryStore()
    upstream_a, upstream_b = Upstream(), Upstream()
    upstream_a.gate = asyncio.Event()
    a = make(upstream_a, shared=store, poll_s=0.005)
    b = make(upstream_b, shared=store, poll_s=0.005)
    fetching = asyncio.create_task(a.refresh())
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(b.refresh())
    await asyncio.sleep(0.02)
    assert not waiting.done()
    upstream_a.gate.set()
    assert await fetching == "fetched"
    assert await asyncio.wait_for(waiting, 1) == "shared"
    assert upstream_b.calls == 0
    assert await store.get("cataloglock:hub88:abc") is None  # released by its owner


async def test_when_the_lock_holder_fails_the_next_replica_fetches(make: Made):
    store = MemoryStore()
    upstream_a, upstream_b = Upstream(), Upstream()
    upstream_a.gate = asyncio.Event()
    upstream_a.fail = CatalogFetchError("error", "HTTP 502")
    a = make(upstream_a, shared=store, poll_s=0.005)
    b = make(upstream_b, shared=store, poll_s=0.005)
    failing = asyncio.create_task(a.refresh())
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(b.refresh())
    upstream_a.gate.set()
    assert await failing == "error"
    assert await asyncio.wait_for(waiting, 1) == "fetched"
    assert upstream_b.calls == 1


async def test_the_shared_entry_round_trips_and_expires_with_max_stale(make: Made):
    store, upstream = MemoryStore(), Upstream()
    upstream.games = (
        GAME,
        ProviderGame("g2", "Two", "S", None, None, None, (), False, None, frozenset({"US"})),
    )
    a = make(upstream, shared=store, settings=CatalogSettings(refresh_s=1, max_stale_s=300))
    await a.refresh()
    raw = await store.get("catalog:hub88:abc")
    assert raw is not None
    assert codec.decode("hub88", raw).games == upstream.games
    expires, _ = store._data["catalog:hub88:abc"]
    assert expires - store._clock() == pytest.approx(300, abs=1)


async def test_a_forced_refresh_fetches_even_with_a_newer_shared_copy(make: Made):
    store, clock = MemoryStore(), Clock()
    upstream_a, upstream_b = Upstream(), Upstream()
    a = make(upstream_a, shared=store, clock=clock)
    b = make(upstream_b, shared=store, clock=clock)
    await b.refresh()
    clock.now += 1
    await a.refresh(force=True)  # a has nothing; the copy there predates the force: fetch
    assert (upstream_a.calls, a.last_outcome) == (1, "fetched")


async def test_an_announced_catalog_is_adopted_without_fetching(make: Made):
    store = MemoryStore()
    trackers: list[CatalogTracker] = []

    def announce(key: str, fetched_at: float) -> None:
        for t in trackers:
            t.notify(fetched_at)

    upstream_a, upstream_b = Upstream(), Upstream()
    a = make(upstream_a, shared=store, announce=announce)
    await a.refresh()
    b = make(upstream_b, shared=store, announce=announce)
    trackers.append(b)
    b.start()
    for _ in range(100):
        if b.catalog is not None:
            break
        await asyncio.sleep(0.01)
    first = b.catalog
    assert first is not None and upstream_b.calls == 0
    await asyncio.sleep(0.002)  # a later wall-clock time for the forced fetch
    assert await a.refresh(force=True) == "fetched"
    for _ in range(100):
        if b.catalog is not first:
            break
        await asyncio.sleep(0.01)
    assert b.catalog is not first and b.last_outcome == "shared"
    assert upstream_b.calls == 0


class DownStore(MemoryStore):
    async def get(self, key: str) -> bytes | None:
        raise StoreUnavailable("redis down")

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        raise StoreUnavailable("redis down")

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        raise StoreUnavailable("redis down")

    async def delete_if(self, key: str, expected: bytes) -> bool:
        raise StoreUnavailable("redis down")


async def test_an_unreachable_store_means_fetching_alone_and_keeping_the_copy(make: Made):
    upstream = Upstream()
    tracker = make(upstream, shared=DownStore())
    assert await tracker.refresh() == "fetched"
    assert tracker.catalog is not None
    upstream.fail = CatalogFetchError("error", "refused")
    assert await tracker.refresh() == "error"
    assert tracker.catalog is not None  # the outage of both never empties the catalog
