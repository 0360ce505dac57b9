"""Per-provider state that outlives a config reload while the provider's settings stay the same.

Breakers (one per provider and operation kind), health, drain flag and last error live here,
keyed by provider name. A reload keeps the state of every provider whose fingerprint did not
change and starts fresh for the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from gateway.config.model import Config, ProviderConfig
from gateway.obs import logs
from gateway.upstream.selection import ProviderView
from policies.breaker import Breaker
from policies.health import HealthTracker

# Route operation -> breaker kind: the catalog is one upstream call whichever read route asks.
BREAKER_KINDS = {
    "games.list": "catalog",
    "games.get": "catalog",
    "games.launch": "launch",
    "payments.create": "payment_create",
    "payments.get": "payment_get",
    "payments.refund": "payment_refund",
}


class Rejected(Exception):
    """A provider's definite 4xx: it is up and answering, so its breaker must not count it."""

    def __init__(self, error: Any) -> None:
        super().__init__(str(error))
        self.error = error


BreakerListener = Callable[[str, str, str, str], None]  # provider, kind, old, new


class ProviderState:
    def __init__(self, config: ProviderConfig, on_breaker_change: BreakerListener | None = None):
        self.config = config
        self.name = config.name
        self.health = HealthTracker(config.health)
        self.drained = False
        self.drained_by: str | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._breakers: dict[str, Breaker] = {}
        self._on_breaker_change = on_breaker_change

    @property
    def adapter(self) -> Any:
        return self.config.adapter

    def breaker(self, op: str) -> Breaker:
        kind = BREAKER_KINDS.get(op, op)
        breaker = self._breakers.get(kind)
        if breaker is None:
            listener = self._on_breaker_change
            on_change = (
                (lambda _name, old, new: listener(self.name, kind, old, new)) if listener else None
            )
            breaker = Breaker(
                f"{self.name}:{kind}", self.config.breaker, on_change=on_change, ignore=(Rejected,)
            )
            self._breakers[kind] = breaker
        return breaker

    def breakers(self) -> Mapping[str, Breaker]:
        return dict(self._breakers)

    def note_error(self, message: str) -> None:
        # Shown to operators: a provider that echoes the gateway's key must not show it.
        self.last_error = logs.REDACTOR.scrub(message)[:300]
        self.last_error_at = time.time()

    def plainly_usable(self, op: str) -> bool:
        """Not drained, healthy both ways, breaker closed: nothing for selection to weigh."""
        return (
            not self.drained
            and self.health.healthy
            and self.breaker(op).state == "closed"
        )

    def view(self, op: str, cooldown_s: float = 0.0) -> ProviderView:
        breaker = self.breaker(op)
        return ProviderView(
            name=self.name,
            drained=self.drained,
            active_healthy=self.health.active_healthy,
            passive_healthy=self.health.passive_healthy,
            breaker_allows=breaker.allows(),
            cooldown_s=cooldown_s,
            retry_after_s=breaker.retry_after_s(),
        )

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "adapter": self.config.adapter_name,
            "kind": self.config.kind,
            "healthy": self.health.healthy,
            "health": self.health.snapshot(),
            "breakers": {kind: b.state for kind, b in sorted(self._breakers.items())},
            "drained": self.drained,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


class ProviderRegistry:
    def __init__(self, on_breaker_change: BreakerListener | None = None) -> None:
        self._states: dict[str, ProviderState] = {}
        self._on_breaker_change = on_breaker_change

    def sync(self, config: Config) -> dict[str, ProviderState]:
        """States for `config`'s providers: kept when unchanged, new when changed or added."""
        states: dict[str, ProviderState] = {}
        for name, pconf in config.providers.items():
            old = self._states.get(name)
            if old is not None and old.config.fingerprint == pconf.fingerprint:
                old.config = pconf  # same settings; take the new (equal) object
                states[name] = old
            else:
                states[name] = ProviderState(pconf, self._on_breaker_change)
                if old is not None:
                    states[name].drained = old.drained  # an operator's drain outlives an edit
                    states[name].drained_by = old.drained_by
        self._states = states
        return states

    def get(self, name: str) -> ProviderState | None:
        return self._states.get(name)

    def all(self) -> dict[str, ProviderState]:
        return dict(self._states)
