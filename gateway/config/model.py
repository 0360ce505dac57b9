"""The typed settings a providers.yaml becomes: frozen dataclasses, secrets never printed.

The policies own their own settings (`policies.breaker.BreakerSettings`, ...); this module
holds the rest and the `Config` that ties them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from adapters.base import AdapterSpec
from gateway.config.events import EventSettings
from gateway.config.wallet import WalletSettings
from policies.breaker import BreakerSettings
from policies.cache import CacheLimits, CacheSettings
from policies.health import HealthSettings
from policies.player_access import PlayerTokenSettings
from policies.routing import Rule

DEFAULT_TIMEOUT_MS = 2000
DEFAULT_MAX_BODY = 65536
DEFAULT_CATALOG_REFRESH_S = 300.0
# A catalog changes rarely, and a lobby with a provider's games gone is worse than one a day
# behind: while refreshes fail, the last good catalog is kept this long.
DEFAULT_CATALOG_MAX_STALE_S = 86400.0


@dataclass(frozen=True, slots=True)
class CatalogSettings:
    """How one aggregator's catalog is kept warm (`providers.<name>.catalog`)."""

    refresh_s: float = DEFAULT_CATALOG_REFRESH_S
    max_stale_s: float = DEFAULT_CATALOG_MAX_STALE_S


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    adapter_name: str
    kind: str
    base_url: str
    timeout_ms: int
    rate_limit: str | None
    breaker: BreakerSettings
    health: HealthSettings
    max_connections: int
    adapter: Any = field(repr=False, compare=False)
    # Digest of every setting, secrets included, so a reload can tell what changed
    # without keeping or comparing the secrets themselves. The catalog settings and
    # blocked countries are left out: changing them keeps breakers, health and catalog.
    fingerprint: str = ""
    spec: AdapterSpec = field(default_factory=lambda: AdapterSpec("games", (), frozenset()))
    catalog: CatalogSettings = CatalogSettings()
    # Countries none of this provider's offers may be launched in (ISO 3166-1 alpha-2).
    blocked_countries: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RouteRateLimit:
    limit: str
    per: str = "client"


@dataclass(frozen=True, slots=True)
class RouteConfig:
    op: str
    providers: tuple[str, ...]
    cache: CacheSettings | None = None
    rate_limit: RouteRateLimit | None = None
    # payments.create only: routing rules, and whether a soft decline moves on.
    rules: tuple[Rule, ...] = ()
    cascade_soft_declines: bool = False

    def named(self) -> tuple[str, ...]:
        """Every provider the route may use: its own, then those only its rules name."""
        names = dict.fromkeys(self.providers)
        for rule in self.rules:
            names.update(dict.fromkeys(rule.named()))
        return tuple(names)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    id: str
    key_digest: bytes = field(repr=False)  # sha256 of the key; the key itself is not kept
    roles: frozenset[str] = frozenset({"client"})
    rate_limit: str | None = None


@dataclass(frozen=True, slots=True)
class CorsConfig:
    allow_origins: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = (
        "Authorization",
        "Content-Type",
        "Idempotency-Key",
        "X-API-Key",
        "X-Request-ID",
    )
    allow_methods: tuple[str, ...] = ("GET", "POST")
    expose_headers: tuple[str, ...] = (
        "X-Request-ID",
        "X-Cache",
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "Idempotent-Replayed",
    )
    allow_credentials: bool = False
    max_age_s: int = 600


@dataclass(frozen=True, slots=True)
class StorageSettings:
    backend: str = "memory"  # memory | redis
    url: str | None = None
    key_prefix: str = "gw:"
    on_failure: str = "local"  # local | open | closed
    replicas: int = 1  # how many replicas share the limits: local fallback gets limit/replicas
    timeout_ms: int = 250  # every request-path Redis call
    local_cache_s: float = 1.0  # in-process layer in front of the shared cache


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Limits on slow and greedy clients (`gateway.http.protocol`)."""

    header_timeout_s: float = 10.0  # first byte of a request to the end of its headers
    body_timeout_s: float = 30.0  # reading a request's whole body
    keepalive_timeout_s: float = 15.0  # an idle kept-alive connection
    max_connections: int = 10_000  # open connections; past it new ones are closed


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """Where money state lives (`gateway.ledger`)."""

    backend: str = "sqlite"  # sqlite | postgres | memory
    path: str = "data/ledger.db"  # sqlite: relative to the working directory
    url: str | None = field(default=None, repr=False)  # postgres, from url_env: a secret
    retention_days: int = 120
    synchronous: str = "full"  # sqlite: full survives a power loss, normal only a crash
    pool_size: int = 10  # postgres connections per process
    timeout_ms: int = 5000  # waiting for a lock or a connection
    claim_lease_s: float = 60.0  # after this, a stopped request's claim may be taken over
    accept_data_loss: bool = False  # `memory` outside tests: payments forgotten at restart

    @property
    def shared(self) -> bool:
        """Can several processes use it (is it anything but one process's memory)?"""
        return self.backend != "memory"


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """Spans exported over OTLP/HTTP (`gateway.obs.tracing`); without it, trace context is
    only passed on and logged."""

    otlp_endpoint: str  # the collector's OTLP/HTTP traces URL (`/v1/traces` added to a bare host)
    sample_ratio: float = 1.0  # of traces the gateway starts; a caller's decision is kept


@dataclass(frozen=True, slots=True)
class Config:
    providers: Mapping[str, ProviderConfig]
    routes: Mapping[str, RouteConfig]
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    max_body_bytes: int = DEFAULT_MAX_BODY
    log_level: str = "INFO"
    studio_aliases: Mapping[str, str] = field(default_factory=dict)
    # Studio slug (after aliases) -> countries none of its games may be offered in.
    studio_blocked_countries: Mapping[str, frozenset[str]] = field(default_factory=dict)
    payment_id_secret: bytes | None = field(default=None, repr=False)
    payment_retries: int = 1
    clients: tuple[ClientConfig, ...] = ()
    cors: CorsConfig | None = None
    cache_limits: CacheLimits = field(default_factory=CacheLimits)
    storage: StorageSettings = StorageSettings()
    ledger: LedgerSettings = LedgerSettings()
    server: ServerSettings = ServerSettings()
    # The proxies in front of the gateway: their X-Forwarded-For names the client.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    player_tokens: PlayerTokenSettings | None = field(default=None, repr=False)
    events: Mapping[str, Any] = field(default_factory=dict)
    event_settings: EventSettings | None = field(default=None, repr=False)
    wallet: WalletSettings | None = field(default=None, repr=False)  # the casino's wallet
    tracing: TracingSettings | None = None
    source: str = ""
    hash: str = ""
    redacted: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # Every secret value read, so logs can mask them wherever they might slip in.
    secret_values: tuple[str, ...] = field(default=(), repr=False)
    # What `check` warns about: valid, but probably not what was meant.
    warnings: tuple[str, ...] = ()
    # What a valid file means differently from how it reads (printed by `check`, logged).
    notes: tuple[str, ...] = ()


def ledger_problem(config: Config, ledger: LedgerSettings, processes: int) -> str | None:
    """Payments served by several processes need a ledger they all share."""
    if processes > 1 and "payments.create" in config.routes and not ledger.shared:
        return (
            f"payments.create with {processes} serving processes needs a ledger they all "
            "share (ledger.backend sqlite or postgres), not one process's memory"
        )
    return None
