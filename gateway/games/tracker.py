"""One aggregator's catalog, kept warm in the background.

A tracker fetches its catalog when it starts and again every `refresh_s` (jittered, so
replicas and providers spread out), keeps the last good one while refreshes fail, and
drops it once it is older than `max_stale_s`. Requests never wait for it, except for the
very first attempt while no catalog exists yet.

With a shared store (Redis), replicas take turns: before fetching, a tracker adopts a
newer catalog another replica published; otherwise it takes a short lock, fetches, publishes
the catalog and announces it (pub/sub), while the others wait for it and adopt it. The
store only ever adds to what a process has: each one keeps its own copy, so a Redis outage
never empties a catalog (each replica then fetches for itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from adapters.base import ProviderGame
from gateway.config.model import CatalogSettings
from gateway.games import codec
from gateway.games.codec import ProviderCatalog
from policies.ports import StoreUnavailable

if TYPE_CHECKING:
    from policies.ports import Store

log = logging.getLogger("gateway.catalog")

Fetch = Callable[[], Awaitable[tuple[ProviderGame, ...]]]
JITTER = 0.1  # each wait is refresh_s times a factor in [0.9, 1.1]
FIRST_RETRY_S = 1.0  # after a failure: 1 s, 2 s, 4 s ... up to refresh_s


class CatalogFetchError(Exception):
    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status  # error | timeout


class CatalogTracker:
    def __init__(
        self,
        name: str,
        key: str,
        settings: CatalogSettings,
        fetch: Fetch,
        *,
        shared: Store | None = None,
        announce: Callable[[str, float], None] | None = None,
        on_change: Callable[[], None] | None = None,
        on_refresh: Callable[[str, str, float], None] | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[float, float], float] = random.uniform,
        lock_ttl_s: float = 30.0,
        poll_s: float = 0.05,
    ) -> None:
        self.name = name
        self.key = key  # provider name and settings fingerprint: new settings, new catalog
        self.settings = settings
        self.fetch = fetch
        self.shared = shared
        self.announce = announce
        self.on_change = on_change or (lambda: None)
        self.on_refresh = on_refresh
        self.clock = clock
        self.jitter = jitter
        self.lock_ttl_s = lock_ttl_s
        self.poll_s = poll_s
        self.owner = uuid.uuid4().hex.encode()
        self.catalog: ProviderCatalog | None = None
        self.status = "pending"  # then ok | error | timeout: the last attempt
        self.kept_after_failure = False
        self.last_outcome: str | None = None  # fetched | shared | error | timeout
        self.last_attempt_at: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.failures = 0
        self.next_refresh_at = 0.0  # due at once
        self._first: asyncio.Future[None] | None = None
        self._running: asyncio.Task[str] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._remote_hint = False

    # ---- reading

    @property
    def pending_first(self) -> bool:
        """No catalog yet, and the first attempt is still under way."""
        return self.catalog is None and self._first is not None and not self._first.done()

    async def wait_first(self) -> None:
        if self._first is not None and not self._first.done():
            await asyncio.shield(self._first)

    @property
    def refreshing(self) -> bool:
        return self._running is not None and not self._running.done()

    # ---- lifecycle

    def start(self) -> None:
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"catalog:{self.name}")

    async def close(self) -> None:
        tasks = [t for t in (self._task, self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def update(self, settings: CatalogSettings) -> None:
        """New refresh settings from a reload: reschedule from the catalog's age."""
        if settings == self.settings:
            return
        self.settings = settings
        if self.catalog is not None and self.failures == 0:
            self.next_refresh_at = self._due_after(self.catalog.fetched_at)
        self._wake.set()

    def notify(self, fetched_at: float) -> None:
        """Another replica published a catalog fetched at `fetched_at`."""
        if self.catalog is None or fetched_at > self.catalog.fetched_at:
            self._remote_hint = True
            self._wake.set()

    # ---- the loop

    async def _run(self) -> None:
        await self.refresh()
        while True:
            delay = self._next_wake() - self.clock()
            if delay > 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
                # arrives as the wait ends, and a task looping on it would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
            self._wake.clear()
            if self._remote_hint:
                self._remote_hint = False
                await self._adopt_newer()
            self._expire_if_too_old()
            if self.clock() >= self.next_refresh_at:
                await self.refresh()

    def _next_wake(self) -> float:
        wake = self.next_refresh_at
        if self.catalog is not None:
            wake = min(wake, self.catalog.fetched_at + self.settings.max_stale_s)
        return wake

    def _due_after(self, at: float) -> float:
        return at + self.settings.refresh_s * self.jitter(1 - JITTER, 1 + JITTER)

    async def refresh(self, force: bool = False) -> str:
        """Refresh now (one at a time: a second caller shares the running one); the outcome.

        `force` fetches even when the catalog is fresh, unless another replica's fetch
        that started after this call can be adopted instead.
        """
        running = self._running
        if running is None or running.done():
            running = self._running = asyncio.create_task(self._refresh(force))
        return await asyncio.shield(running)

    async def _refresh(self, force: bool) -> str:
        started = time.perf_counter()
        self.last_attempt_at = self.clock()
        try:
            outcome = await self._refresh_once(force, self.last_attempt_at)
        except CatalogFetchError as exc:
            outcome = exc.status
            self._failed(exc.status, str(exc))
        except Exception as exc:  # a bug must not stop the loop; the old catalog serves on
            log.exception("catalog refresh failed", extra={"provider": self.name})
            outcome = "error"
            self._failed("error", f"{type(exc).__name__}: {exc}")
        finally:
            if self._first is not None and not self._first.done():
                self._first.set_result(None)
        if self.on_refresh is not None:
            self.on_refresh(self.name, outcome, time.perf_counter() - started)
        return outcome

    async def _refresh_once(self, force: bool, started_at: float) -> str:
        if self.shared is None:
            return await self._fetch_and_install(locked=False)
        deadline = time.monotonic() + self.lock_ttl_s
        while True:
            entry = await self._read()
            if self._adoptable(entry, force, started_at):
                assert entry is not None
                self._install(entry, "shared")
                return "shared"
            if await self._lock():
                break
            if time.monotonic() >= deadline:
                # The replica holding the lock has taken longer than the lock's life.
                return await self._fetch_and_install(locked=False)
            await asyncio.sleep(self.poll_s)
        try:
            # The holder we waited for may have published and let go since the last read.
            entry = await self._read()
            if self._adoptable(entry, force, started_at):
                assert entry is not None
                self._install(entry, "shared")
                return "shared"
            return await self._fetch_and_install(locked=True)
        finally:
            await self._unlock()

    async def _fetch_and_install(self, *, locked: bool) -> str:
        games = await self.fetch()
        catalog = ProviderCatalog(self.name, games, self.clock())
        if self.shared is not None:
            await self._write(catalog)
        self._install(catalog, "fetched")
        if self.announce is not None and self.shared is not None:
            self.announce(self.key, catalog.fetched_at)
        return "fetched"

    async def _adopt_newer(self) -> None:
        started = time.perf_counter()
        entry = await self._read()
        if self._adoptable(entry, force=False, started_at=0.0):
            assert entry is not None
            self._install(entry, "shared")
            if self.on_refresh is not None:
                self.on_refresh(self.name, "shared", time.perf_counter() - started)

    def _adoptable(self, entry: ProviderCatalog | None, force: bool, started_at: float) -> bool:
        if entry is None:
            return False
        if self.catalog is not None and entry.fetched_at <= self.catalog.fetched_at:
            return False
        return not force or entry.fetched_at >= started_at

    # ---- state changes

    def _install(self, catalog: ProviderCatalog, outcome: str) -> None:
        self.catalog = catalog
        self.status = "ok"
        self.kept_after_failure = False
        self.failures = 0
        self.last_outcome = outcome
        self.next_refresh_at = self._due_after(catalog.fetched_at)
        self.on_change()

    def _failed(self, status: str, detail: str) -> None:
        self.status = status
        self.last_outcome = status
        self.last_error = detail
        self.last_error_at = self.clock()
        self.failures += 1
        self.kept_after_failure = self.catalog is not None
        retry = min(self.settings.refresh_s, FIRST_RETRY_S * 2 ** (self.failures - 1))
        self.next_refresh_at = self.clock() + retry * self.jitter(1 - JITTER, 1 + JITTER)
        log.warning(
            "catalog refresh failed; %s",
            "the last catalog keeps serving" if self.catalog else "no catalog yet",
            extra={"provider": self.name, "status": status, "error": detail},
        )
        self.on_change()

    def _expire_if_too_old(self) -> None:
        catalog = self.catalog
        if catalog is None or self.clock() - catalog.fetched_at <= self.settings.max_stale_s:
            return
        log.error(
            "catalog older than max_stale_s dropped: its games are unknown until a refresh works",
            extra={"provider": self.name, "max_stale_s": self.settings.max_stale_s},
        )
        self.catalog = None
        self.kept_after_failure = False
        if self.status == "ok":
            self.status = "error"
        self.on_change()

    # ---- the shared store; unreachable means "nobody to coordinate with"

    def _entry_key(self) -> str:
        return f"catalog:{self.key}"

    def _lock_key(self) -> str:
        return f"cataloglock:{self.key}"

    async def _read(self) -> ProviderCatalog | None:
        assert self.shared is not None
        try:
            raw = await self.shared.get(self._entry_key())
        except StoreUnavailable:
            return None
        if raw is None:
            return None
        try:
            return codec.decode(self.name, raw)
        except ValueError:
            log.warning("unreadable shared catalog ignored", extra={"provider": self.name})
            return None

    async def _write(self, catalog: ProviderCatalog) -> None:
        assert self.shared is not None
        with contextlib.suppress(StoreUnavailable):
            await self.shared.set(
                self._entry_key(), codec.encode(catalog), self.settings.max_stale_s
            )

    async def _lock(self) -> bool:
        assert self.shared is not None
        try:
            return await self.shared.set_if_absent(self._lock_key(), self.owner, self.lock_ttl_s)
        except StoreUnavailable:
            return True

    async def _unlock(self) -> None:
        assert self.shared is not None
        with contextlib.suppress(StoreUnavailable):
            await self.shared.delete_if(self._lock_key(), self.owner)
