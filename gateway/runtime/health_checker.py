"""Active health checks: one probe per provider every `interval_s`, results fed to its tracker.

The probe is `GET <health.path>` when the config names one, else the adapter's own cheap
request. Probes run as their own tasks so a hanging provider delays nobody else's checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from adapters.base import UpstreamRequest
from gateway.upstream import transport as upstream
from gateway.upstream.transport import TransportError

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway
    from gateway.upstream.providers import ProviderState

log = logging.getLogger("gateway.health")
TICK_S = 0.05


class HealthChecker:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._task: asyncio.Task[None] | None = None
        self._due: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[bool]] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="health-checker")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            now = time.monotonic()
            providers = self.gw.runtime.providers
            for name, state in providers.items():
                settings = state.config.health
                if not settings.enabled or name in self._running:
                    continue
                due = self._due.get(name)
                if due is None:
                    # First probe after one interval: start-up optimism, not a probe storm.
                    self._due[name] = now + settings.interval_s
                elif now >= due:
                    self._due[name] = now + settings.interval_s
                    task = asyncio.create_task(self.probe(state), name=f"health:{name}")
                    self._running[name] = task
                    task.add_done_callback(self._done_callback(name))
            for gone in set(self._due) - set(providers):
                del self._due[gone]
            await asyncio.sleep(TICK_S)

    def _done_callback(self, name: str) -> Callable[[asyncio.Task[bool]], None]:
        def done(_task: asyncio.Task[bool]) -> None:
            self._running.pop(name, None)

        return done

    async def probe(self, state: ProviderState) -> bool:
        settings = state.config.health
        if settings.path:
            request = UpstreamRequest("GET", settings.path, {"Accept": "application/json"})
        else:
            request = state.adapter.health_request()
        assert self.gw.session is not None
        try:
            response = await upstream.send(
                self.gw.session, state.config.base_url, request, settings.timeout_ms / 1000
            )
            ok = 200 <= response.status < 400 if settings.path else response.status < 500
            # A provider refusing the gateway's credentials is as good as down for it.
            ok = ok and response.status not in (401, 403)
            detail = f"health check answered {response.status}"
        except TransportError as exc:
            ok, detail = False, f"health check {exc.kind}: {exc}"
        if not ok:
            state.note_error(detail)
        if state.health.record_active(ok):
            healthy = state.health.healthy
            self.gw.metrics.provider_healthy.labels(state.name).set(1 if healthy else 0)
            log.warning(
                "provider %s is now %s (%s)",
                state.name,
                "healthy" if healthy else "unhealthy",
                state.health.reason or detail,
            )
        return ok
