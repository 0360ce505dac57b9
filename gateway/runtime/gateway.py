"""The gateway's state: an immutable `Runtime` swapped whole on reload, and what outlives it.

A request reads the `Gateway.runtime` attribute once at its start and uses that object to its
end, so a reload never changes the config under a request in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from gateway.config.model import (
    ClientConfig,
    Config,
    LedgerSettings,
    RouteConfig,
    ledger_problem,
)
from gateway.ledger.ledger import Ledger
from gateway.obs import logs
from gateway.obs.metrics import BREAKER_STATES, Metrics
from gateway.obs.tracing import Tracing
from gateway.problems import ApiError
from gateway.runtime.observed_ledger import ObservedDatabase, probe_forever
from gateway.runtime.shared_state import SharedState
from gateway.state.memory import MemoryStore
from gateway.state.redis_store import RedisLink, RedisStore
from gateway.upstream.providers import ProviderRegistry, ProviderState
from gateway.upstream.selection import Selection, select
from policies.cache import ResponseCache
from policies.ports import Store
from policies.ratelimit import Cooldowns, Decision, RateLimiter, RateLimitUnavailable, parse_rate
from policies.shared_cache import LocalCache, SharedCache

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("gateway")


@dataclass(frozen=True)
class Runtime:
    config: Config
    providers: Mapping[str, ProviderState]
    clients: Mapping[bytes, ClientConfig]
    loaded_at: float = field(default_factory=time.time)

    def client_for_key(self, key: str | None) -> ClientConfig | None:
        """Constant-time in the key: digests are compared with compare_digest, all of them."""
        if not key:
            return None
        digest = hashlib.sha256(key.encode()).digest()
        found = None
        for known, client in self.clients.items():
            if hmac.compare_digest(known, digest):
                found = client
        return found

    def route(self, op: str) -> RouteConfig:
        """The route of `op`; 503 no_provider_available when the config has none."""
        route = self.config.routes.get(op)
        if route is None:
            raise ApiError(
                "no_provider_available",
                f"no route is configured for {op}",
                headers={"Retry-After": "5"},
            )
        return route


class Gateway:
    """Everything a request needs. `runtime` is replaced whole by `apply`.

    Money state (idempotency claims, payments, provider events) is in the `ledger`, durable.
    With `storage.backend: redis` the cache, rate-limit counters, breaker and drain states
    are shared through Redis; each falls back as `storage.on_failure` says while Redis is
    unreachable. Losing Redis costs speed, never money.
    """

    def __init__(
        self,
        config: Config,
        *,
        metrics: Metrics | None = None,
        ledger: LedgerSettings | None = None,
        span_exporter: SpanExporter | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        # Spans of requests, provider attempts and ledger writes, when `tracing` is set.
        self.tracing = Tracing(span_exporter)
        self.registry = ProviderRegistry(self._on_breaker_change)
        self.storage_settings = config.storage
        local_cache: ResponseCache[Any] = ResponseCache(config.cache_limits)
        self.link: RedisLink | None = None
        self.shared: SharedState | None = None
        self.local_limiter = RateLimiter()
        self.store: Store
        self.cache: SharedCache[Any] | LocalCache[Any]
        if config.storage.backend == "redis":
            self.link = RedisLink(config.storage)
            self.link.on_change(self._on_storage_change)
            self.store = RedisStore(self.link)
            self.limiter = RateLimiter(
                config.storage.url or "",
                key_prefix=config.storage.key_prefix + "rl",
                storage_options={"connection_pool": self.link.client.connection_pool},
            )
            self.cache = SharedCache(
                self.store, local_cache, local_ttl_s=config.storage.local_cache_s
            )
            self.shared = SharedState(self, self.link)
        else:
            self.store = MemoryStore()
            self.limiter = self.local_limiter
            self.cache = LocalCache(local_cache)
        # `ledger` overrides the config's block (the demo's throwaway file).
        self.ledger_settings = ledger or config.ledger
        self._configured_ledger = config.ledger
        self.ledger = Ledger(self.ledger_settings)
        self.ledger.db = ObservedDatabase(self.ledger.db, self._on_ledger_health)
        self._ledger_probe: asyncio.Task[None] | None = None
        self._ledger_lost = False
        self.cooldowns = Cooldowns()
        self.session: aiohttp.ClientSession | None = None  # set when the app starts
        self._apply_listeners: list[Callable[[Runtime], None]] = []
        self.last_reload: dict[str, Any] = {"result": "success", "error": None, "at": time.time()}
        self.config_path: str | None = None
        self.health_checker: Any = None
        self.watcher: Any = None
        self.reload_interval_s = 1.0
        self.processes = 1  # serving processes sharing this config (`run --workers`)
        self.runtime = self.apply(config)

    def apply(self, config: Config) -> Runtime:
        if config.storage != self.storage_settings:
            log.warning("storage settings changed; they take effect at the next restart")
        if config.ledger != self._configured_ledger:
            log.warning("ledger settings changed; they take effect at the next restart")
        states = self.registry.sync(config)
        runtime = Runtime(
            config=config,
            providers=states,
            clients={c.key_digest: c for c in config.clients},
        )
        self.runtime = runtime
        # PEM keys are multi-line: mask each of their lines too.
        logs.REDACTOR.set_secrets(
            [*config.secret_values, *(ln for v in config.secret_values for ln in v.splitlines())]
        )
        logs.set_level(config.log_level)
        self.tracing.configure(config.tracing)
        self.metrics.set_config_hash(config.hash)
        self.metrics.config_last_success.set(time.time())
        for state in states.values():
            self.metrics.provider_healthy.labels(state.name).set(1 if state.health.healthy else 0)
            self.metrics.provider_drained.labels(state.name).set(1 if state.drained else 0)
        for listener in self._apply_listeners:
            listener(runtime)
        return runtime

    def on_apply(self, listener: Callable[[Runtime], None]) -> None:
        """`listener(runtime)` after every config applied (the catalog sync follows reloads)."""
        self._apply_listeners.append(listener)

    def selection(
        self,
        rt: Runtime,
        op: str,
        offered_by: Collection[str] | None = None,
        order: Sequence[str] | None = None,
    ) -> Selection:
        """Which providers of `op`'s route to try now, in order (see `select`); `order`, when
        given, is the one a routing rule chose instead of the route's own."""
        route = rt.route(op)
        names = route.providers if order is None else tuple(order)
        providers = rt.providers
        blocked_for = self.cooldowns.blocked_for
        # The usual case, every provider of the route usable: the route's order is the
        # answer, without building a view of each for the full decision.
        if all(
            (state := providers.get(name)) is not None
            and state.plainly_usable(op)
            and not blocked_for(name)
            for name in names
        ):
            if offered_by is not None:
                names = tuple(n for n in names if n in offered_by)
            return Selection(tuple(dict.fromkeys(names)), (), 0.0)
        views = {
            name: state.view(op, blocked_for(name))
            for name, state in providers.items()
            if name in names
        }
        return select(names, views, offered_by)

    def _on_breaker_change(self, provider: str, kind: str, old: str, new: str) -> None:
        self.metrics.breaker_state.labels(provider, kind).set(BREAKER_STATES.get(new, 0))
        self.metrics.breaker_transitions.labels(provider, kind, old, new).inc()
        if self.shared is not None:
            self.shared.publish_breaker(provider, kind, new)

    async def on_drain_change(
        self, provider: str, drained: bool, actor: str | None = None
    ) -> None:
        if self.shared is not None:
            await self.shared.publish_drain(provider, drained, actor)

    def _on_ledger_health(self, up: bool) -> None:
        self.metrics.ledger_up.set(1 if up else 0)
        if not up:
            self._ledger_lost = True
            log.error("ledger unreachable", extra={"ledger": self.ledger.description})
        elif self._ledger_lost:
            self._ledger_lost = False
            log.warning("ledger reachable again", extra={"ledger": self.ledger.description})

    def _on_storage_change(self, degraded: bool) -> None:
        self.metrics.storage_degraded.set(1 if degraded else 0)
        if not degraded and self.shared is not None:
            # Pub/sub lost what was said meanwhile: read the whole state again.
            task = asyncio.ensure_future(self.shared.resync())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    @property
    def degraded(self) -> bool:
        return self.link is not None and self.link.degraded

    def storage_status(self) -> dict[str, Any]:
        if self.link is None:
            return {"backend": "memory", "degraded": False}
        return self.link.status()

    async def hit_limit(self, rate: str, *keys: str) -> Decision | None:
        """A rate-limit decision; None means "not limited" (Redis down with on_failure open)."""
        if not self.degraded:
            try:
                return await self.limiter.hit(rate, *keys)
            except RateLimitUnavailable as exc:
                if self.link is None:
                    raise
                self.link.mark_degraded(exc)
        mode = self.storage_settings.on_failure
        if mode == "open":
            return None
        if mode == "closed":
            raise ApiError(
                "unavailable",
                "the shared rate-limit store is unreachable",
                headers={"Retry-After": "1"},
            )
        # local: each replica enforces its share, so the cluster stays near the limit.
        return await self.local_limiter.hit(
            scaled_rate(rate, self.storage_settings.replicas), *keys
        )

    def refusal(self, config: Config) -> str | None:
        """Why `config` may not be applied to this running gateway; None if it may."""
        return ledger_problem(config, self.ledger_settings, self.processes)

    async def start(self) -> None:
        await self.ledger.start()
        self._ledger_probe = asyncio.create_task(probe_forever(self.ledger), name="ledger-probe")
        if self.shared is not None:
            self.shared.start()

    async def close(self) -> None:
        if self._ledger_probe is not None:
            self._ledger_probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ledger_probe
        await self.ledger.close()
        if self.shared is not None:
            await self.shared.stop()
        await self.cache.close()
        await self.limiter.close()
        if self.local_limiter is not self.limiter:
            await self.local_limiter.close()
        if self.link is not None:
            await self.link.close()
        if self.tracing.settings is not None:
            await asyncio.to_thread(self.tracing.shutdown)  # the spans still buffered


def scaled_rate(rate: str, replicas: int) -> str:
    """`100/second` shared by 4 replicas -> `25/1 second` for each one alone."""
    item = parse_rate(rate)
    share = max(1, item.amount // max(1, replicas))
    return f"{share}/{item.multiples} {item.GRANULARITY.name}"
