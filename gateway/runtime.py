"""The gateway's state: an immutable `Runtime` swapped whole on reload, and what outlives it.

A request reads `gateway.runtime` once at its start and uses that object to its end, so a
reload never changes the config under a request in flight.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway import logs
from gateway.config import ClientConfig, Config
from gateway.metrics import BREAKER_STATES, Metrics
from gateway.providers import ProviderRegistry, ProviderState
from gateway.store import MemoryStore, Store
from policies.cache import ResponseCache
from policies.idempotency import IdempotencyStore
from policies.ratelimit import Cooldowns, RateLimiter


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


class Gateway:
    """Everything a request needs. `runtime` is replaced whole by `apply`."""

    def __init__(
        self,
        config: Config,
        *,
        metrics: Metrics | None = None,
        store: Store | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.registry = ProviderRegistry(self._on_breaker_change)
        self.store: Store = store or MemoryStore()
        self.idempotency = IdempotencyStore(self.store)
        self.cache: ResponseCache[Any] = ResponseCache(config.cache_limits)
        self.limiter = limiter or RateLimiter()
        self.cooldowns = Cooldowns()
        self.session: aiohttp.ClientSession | None = None  # set when the app starts
        self.merge_memo: dict[Any, Any] = {}
        self.last_reload: dict[str, Any] = {"result": "success", "error": None, "at": time.time()}
        self.config_path: str | None = None
        self.health_checker: Any = None
        self.watcher: Any = None
        self.reload_interval_s = 1.0
        self.runtime = self.apply(config)

    def apply(self, config: Config) -> Runtime:
        states = self.registry.sync(config)
        runtime = Runtime(
            config=config,
            providers=states,
            clients={c.key_digest: c for c in config.clients},
        )
        self.runtime = runtime
        self.merge_memo.clear()
        # PEM keys are multi-line: mask each of their lines too.
        logs.REDACTOR.set_secrets(
            [*config.secret_values, *(ln for v in config.secret_values for ln in v.splitlines())]
        )
        self.metrics.set_config_hash(config.hash)
        self.metrics.config_last_success.set(time.time())
        for state in states.values():
            self.metrics.provider_healthy.labels(state.name).set(1 if state.health.healthy else 0)
            self.metrics.provider_drained.labels(state.name).set(1 if state.drained else 0)
        return runtime

    def _on_breaker_change(self, provider: str, kind: str, old: str, new: str) -> None:
        self.metrics.breaker_state.labels(provider, kind).set(BREAKER_STATES.get(new, 0))
        self.metrics.breaker_transitions.labels(provider, kind, old, new).inc()

    def storage_status(self) -> dict[str, Any]:
        return {"backend": "memory", "degraded": False}

    def on_limiter_unavailable(self, route: str) -> list[Any]:
        """The limiter's store failed: serve unlimited rather than fail every request."""
        return []

    async def close(self) -> None:
        await self.cache.close()
        await self.limiter.close()
