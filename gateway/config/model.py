"""The typed settings a providers.yaml becomes: frozen dataclasses, secrets never printed.

The policies own their own settings (`policies.breaker.BreakerSettings`, ...); this module
holds the rest and the `Config` that ties them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config.events import EventSettings
from policies.breaker import BreakerSettings
from policies.cache import CacheLimits, CacheSettings
from policies.health import HealthSettings

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
    events: Mapping[str, Any] = field(default_factory=dict)
    event_settings: EventSettings | None = field(default=None, repr=False)
    source: str = ""
    hash: str = ""
    redacted: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # Every secret value read, so logs can mask them wherever they might slip in.
    secret_values: tuple[str, ...] = field(default=(), repr=False)
    # What a valid file means differently from how it reads (printed by `check`, logged).
    notes: tuple[str, ...] = ()
