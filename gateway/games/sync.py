"""The catalog as a dataset kept warm: one tracker per aggregator, snapshots per games route.

`CatalogSync` owns a `CatalogTracker` for every aggregator a games route names, follows
reloads (a provider added, removed or changed), and hands each games route its
`CatalogSnapshot`: the merged catalog of the route's aggregators, built once whenever one of
their catalogs changes. Which aggregators are usable decides who is *called*; every
aggregator of the route with a catalog contributes its games, skipped or not.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapters.base import CatalogPage, ProviderGame
from gateway.games.jurisdiction import Jurisdiction
from gateway.games.snapshot import CatalogSnapshot, ProviderPart
from gateway.games.tracker import CatalogFetchError, CatalogTracker
from gateway.upstream.calls import AttemptFailed, call_provider

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway, Runtime
    from gateway.upstream.providers import ProviderState

log = logging.getLogger("gateway.catalog")
MAX_PAGES = 200
GAMES_ROUTES = ("games.list", "games.get", "games.launch")


async def fetch_catalog(gw: Gateway, state: ProviderState) -> tuple[ProviderGame, ...]:
    """Every page of one aggregator's catalog, each through the provider's policies."""
    adapter = state.adapter
    request = adapter.catalog_request()
    games: list[ProviderGame] = []
    for _ in range(MAX_PAGES):
        page: CatalogPage = await call_provider(
            gw, state, "catalog", request, adapter.parse_catalog
        )
        games.extend(page.games)
        if page.next_request is None:
            break
        request = page.next_request
    return tuple(games)


def tracker_key(state: ProviderState) -> str:
    return f"{state.name}:{state.config.fingerprint[:16]}"


class CatalogSync:
    def __init__(
        self,
        gw: Gateway,
        *,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.gw = gw
        # Shared with other replicas only when the store is: memory is this process alone.
        self.shared = gw.store if gw.link is not None else None
        self.clock = clock
        self.jitter = jitter
        self.trackers: dict[str, CatalogTracker] = {}
        self._generation = 0
        self._views: dict[str, tuple[Runtime, int, CatalogSnapshot | None]] = {}
        # Snapshots of this runtime and generation, by their parts: routes with the same
        # aggregators in the same order share one (and its rendered bytes).
        self._memo: dict[tuple[ProviderPart, ...], CatalogSnapshot] = {}
        self._memo_of: tuple[Runtime | None, int] = (None, -1)
        self._started = False
        self._closing: set[asyncio.Task[None]] = set()

    # ---- lifecycle

    def start(self) -> None:
        self._started = True
        self.apply(self.gw.runtime)
        self.gw.on_apply(self.apply)
        if self.gw.shared is not None:
            self.gw.shared.on_message("catalog", self.on_remote)
        self.gw.metrics.before_render(self.update_age_metrics)

    async def close(self) -> None:
        self._started = False
        trackers = list(self.trackers.values())
        self.trackers.clear()
        await asyncio.gather(*(t.close() for t in trackers), *self._closing)

    def apply(self, rt: Runtime) -> None:
        """Follow a (re)loaded config: a tracker per aggregator the games routes name."""
        if not self._started:
            return
        wanted: dict[str, ProviderState] = {}
        for op in GAMES_ROUTES:
            route = rt.config.routes.get(op)
            for name in route.providers if route else ():
                state = rt.providers.get(name)
                if state is not None and state.config.kind == "games":
                    wanted[name] = state
        for name in list(self.trackers):
            if name not in wanted:
                self._retire(self.trackers.pop(name))
        for name, state in wanted.items():
            old = self.trackers.get(name)
            if old is not None and old.key == tracker_key(state):
                old.update(state.config.catalog)
                continue
            tracker = self._tracker(state)
            if old is not None:
                # New settings (a timeout, a key): the games stay known until the refresh,
                # which starts at once.
                tracker.catalog = old.catalog
                self._retire(old)
            self.trackers[name] = tracker
            tracker.start()
        self._changed()

    def _tracker(self, state: ProviderState) -> CatalogTracker:
        name = state.name

        async def fetch() -> tuple[ProviderGame, ...]:
            current = self.gw.registry.get(name)
            if current is None:
                raise CatalogFetchError("error", f"provider '{name}' is no longer configured")
            try:
                return await fetch_catalog(self.gw, current)
            except AttemptFailed as failed:
                status = "timeout" if failed.outcome == "timeout" else "error"
                raise CatalogFetchError(status, f"{failed.outcome}: {failed.detail}") from None

        return CatalogTracker(
            name,
            tracker_key(state),
            state.config.catalog,
            fetch,
            shared=self.shared,
            announce=self._announce,
            on_change=self._changed,
            on_refresh=self._refreshed,
            clock=self.clock,
            jitter=self.jitter,
            lock_ttl_s=max(30.0, 10 * state.config.timeout_ms / 1000),
        )

    def _retire(self, tracker: CatalogTracker) -> None:
        task = asyncio.ensure_future(tracker.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # ---- snapshots for requests

    def view(self, rt: Runtime, op: str) -> CatalogSnapshot | None:
        """The route's snapshot, or None while an aggregator's first fetch is under way."""
        cached = self._views.get(op)
        if cached is not None and cached[0] is rt and cached[1] == self._generation:
            return cached[2]
        route = rt.route(op)
        trackers = [self.trackers.get(name) for name in route.providers]
        snapshot = None
        if not any(t is not None and t.pending_first for t in trackers):
            parts = tuple(
                ProviderPart(
                    name,
                    t.catalog if t else None,
                    t.status if t and t.status != "pending" else "error",
                    t.kept_after_failure if t else False,
                )
                for name, t in zip(route.providers, trackers, strict=True)
            )
            if self._memo_of[0] is not rt or self._memo_of[1] != self._generation:
                self._memo.clear()
                self._memo_of = (rt, self._generation)
            snapshot = self._memo.get(parts)
            if snapshot is None:
                snapshot = self._memo[parts] = CatalogSnapshot(
                    parts, rt.config.studio_aliases, Jurisdiction.from_config(rt.config)
                )
        self._views[op] = (rt, self._generation, snapshot)
        return snapshot

    async def wait_view(self, rt: Runtime, op: str) -> tuple[CatalogSnapshot, bool]:
        """The snapshot, and whether this request had to wait for a first fetch."""
        waited = False
        while True:
            snapshot = self.view(rt, op)
            if snapshot is not None:
                return snapshot, waited
            waited = True
            route = rt.config.routes[op]
            pending = [
                t for n in route.providers if (t := self.trackers.get(n)) and t.pending_first
            ]
            await asyncio.gather(*(t.wait_first() for t in pending))

    def _changed(self) -> None:
        self._generation += 1
        metrics = self.gw.metrics
        for name, tracker in self.trackers.items():
            games = len(tracker.catalog.games) if tracker.catalog else 0
            metrics.catalog_games.labels(name).set(games)
        self.update_age_metrics()

    # ---- refreshes: forced, announced, measured

    async def refresh(self, names: list[str] | None = None) -> dict[str, str]:
        chosen = {n: t for n, t in self.trackers.items() if names is None or n in names}
        outcomes = await asyncio.gather(*(t.refresh(force=True) for t in chosen.values()))
        return dict(zip(chosen, outcomes, strict=True))

    def _announce(self, key: str, fetched_at: float) -> None:
        if self.gw.shared is not None:
            self.gw.shared.publish({"type": "catalog", "key": key, "fetched_at": fetched_at})

    def on_remote(self, message: dict[str, Any]) -> None:
        for tracker in self.trackers.values():
            if tracker.key == message.get("key"):
                tracker.notify(float(message.get("fetched_at", 0)))

    def _refreshed(self, provider: str, outcome: str, seconds: float) -> None:
        self.gw.metrics.catalog_refreshed(provider, outcome, seconds)

    def update_age_metrics(self) -> None:
        now = self.clock()
        for name, tracker in self.trackers.items():
            if tracker.catalog is not None:
                age = max(0.0, now - tracker.catalog.fetched_at)
                self.gw.metrics.catalog_age.labels(name).set(age)

    # ---- what /admin/catalog shows

    def status(self) -> dict[str, Any]:
        now = self.clock()
        providers: dict[str, Any] = {}
        for name, t in self.trackers.items():
            catalog = t.catalog
            providers[name] = {
                "games": len(catalog.games) if catalog else 0,
                "fetched_at": catalog.fetched_at if catalog else None,
                "age_s": round(now - catalog.fetched_at, 3) if catalog else None,
                "status": t.status,
                "stale": t.kept_after_failure,
                "refreshing": t.refreshing,
                "last_outcome": t.last_outcome,
                "last_attempt_at": t.last_attempt_at,
                "last_error": t.last_error,
                "last_error_at": t.last_error_at,
                "next_refresh_in_s": round(max(0.0, t.next_refresh_at - now), 3),
                "refresh_s": t.settings.refresh_s,
                "max_stale_s": t.settings.max_stale_s,
            }
        return {"shared": self.shared is not None, "providers": providers}
