"""From a schema-valid document to typed settings: the checks a JSON Schema cannot make.

Every problem is collected, each named by its key path, so one run of `check` shows them all.
Secrets are resolved by `gateway.config.secrets` (and nowhere else); who may call the gateway
(clients, player tokens, CORS, trusted proxies) is built by `gateway.config.access`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import adapters
from adapters.base import OPERATIONS, AdapterSpec
from gateway.config import access
from gateway.config.errors import ConfigError
from gateway.config.events import EventSettings, parse_settings
from gateway.config.model import (
    DEFAULT_MAX_BODY,
    DEFAULT_TIMEOUT_MS,
    CatalogSettings,
    Config,
    LedgerSettings,
    ProviderConfig,
    RouteConfig,
    RouteRateLimit,
    ServerSettings,
    StorageSettings,
    TracingSettings,
)
from gateway.config.redact import redact
from gateway.config.routing_rules import build_rules, withdrawal_warning
from gateway.config.secrets import SecretReader
from gateway.config.slugs import slugify
from gateway.config.values import check_base_url
from gateway.config.wallet import DEFAULT_TIMEOUT_MS as DEFAULT_WALLET_TIMEOUT_MS
from gateway.config.wallet import WalletSettings
from policies.breaker import BreakerSettings
from policies.cache import CacheLimits, CacheSettings
from policies.health import HealthSettings
from policies.ratelimit import parse_rate


class Builder(SecretReader):
    """Semantic checks past the JSON Schema, collecting every problem instead of the first."""

    def __init__(
        self,
        doc: dict[str, Any],
        env: Mapping[str, str],
        base_dir: Path,
        unchecked_providers: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(env, base_dir)
        self.doc = doc
        self.unchecked_providers = unchecked_providers  # named, but refused by the schema
        self.warnings: list[str] = []
        self.notes: list[str] = []

    def build(self, source: str, digest: str) -> Config:
        doc = self.doc
        defaults = doc.get("defaults", {})
        providers = {
            name: p
            for name, spec in doc["providers"].items()
            if name not in self.unchecked_providers
            and (p := self.provider(name, spec, defaults)) is not None
        }
        routes = {op: self.route(op, spec, providers) for op, spec in doc["routes"].items()}
        providers = self.catalog_refresh(providers, routes)
        aliases = self.aliases(doc.get("studio_aliases", {}))
        listen = doc.get("listen", {})
        secret = None
        if "payment_id_secret_env" in doc:
            value = self.secret_from_env("payment_id_secret_env", doc["payment_id_secret_env"])
            secret = value.encode() if value else None
        return Config(
            providers=providers,
            routes=routes,
            listen_host=listen.get("host", "127.0.0.1"),
            listen_port=listen.get("port", 8080),
            max_body_bytes=doc.get("max_body_bytes", DEFAULT_MAX_BODY),
            log_level=str(doc.get("log_level", "INFO")).upper(),
            studio_aliases=aliases,
            studio_blocked_countries=self.studios(doc.get("studios", {}), aliases),
            payment_id_secret=secret,
            payment_retries=defaults.get("payment_retries", 1),
            clients=access.clients(self, doc.get("clients", [])),
            cors=access.cors(doc.get("cors")),
            cache_limits=CacheLimits(**doc.get("cache", {})),
            storage=self.storage(doc.get("storage", {})),
            ledger=self.ledger(doc.get("ledger", {})),
            server=ServerSettings(**doc.get("server", {})),
            trusted_proxies=access.trusted_proxies(self, doc.get("trusted_proxies", [])),
            player_tokens=access.player_tokens(self, doc.get("player_tokens")),
            events=doc.get("events", {}),
            event_settings=self.event_settings(doc.get("events", {})),
            wallet=self.wallet(doc.get("wallet")),
            tracing=self.tracing(doc.get("tracing")),
            source=source,
            hash=digest,
            redacted=redact(doc),
            secret_values=tuple(self.secret_values),
            warnings=tuple(self.warnings),
            notes=tuple(self.notes),
        )

    # -- providers

    def provider(
        self, name: str, spec: dict[str, Any], defaults: dict[str, Any]
    ) -> ProviderConfig | None:
        path = f"providers.{name}"
        try:
            module = adapters.load(spec["adapter"])
        except adapters.UnknownAdapter as exc:
            self.fail(f"{path}.adapter", str(exc))
            return None
        adapter_spec: AdapterSpec = module.SPEC
        url_problem = check_base_url(spec["base_url"])
        if url_problem:
            self.fail(f"{path}.base_url", url_problem)
        credentials = self.credentials(path, spec.get("credentials", {}), adapter_spec)
        if credentials is None or url_problem:
            return None
        try:
            adapter = module.create(name, credentials)
        except (ValueError, TypeError) as exc:
            self.fail(f"{path}.credentials", str(exc))
            return None
        if "rate_limit" in spec:
            self.check_rate(f"{path}.rate_limit", spec["rate_limit"])
        breaker = BreakerSettings(**{**defaults.get("breaker", {}), **spec.get("breaker", {})})
        health = HealthSettings(**{**defaults.get("health", {}), **spec.get("health", {})})
        catalog = self.catalog(path, spec, defaults, adapter_spec.kind)
        settings = {
            "adapter": spec["adapter"],
            "base_url": spec["base_url"].rstrip("/"),
            "timeout_ms": spec.get("timeout_ms", defaults.get("timeout_ms", DEFAULT_TIMEOUT_MS)),
            "rate_limit": spec.get("rate_limit"),
            "max_connections": spec.get("max_connections", 100),
        }
        fingerprint = hashlib.sha256(
            json.dumps(
                [settings, repr(breaker), repr(health), sorted(map(str, credentials.items()))],
                sort_keys=True,
            ).encode()
        ).hexdigest()
        return ProviderConfig(
            name=name,
            adapter_name=settings["adapter"],
            kind=adapter_spec.kind,
            base_url=settings["base_url"],
            timeout_ms=settings["timeout_ms"],
            rate_limit=settings["rate_limit"],
            breaker=breaker,
            health=health,
            max_connections=settings["max_connections"],
            adapter=adapter,
            fingerprint=fingerprint,
            spec=adapter_spec,
            catalog=catalog,
            blocked_countries=frozenset(spec.get("blocked_countries", ())),
        )

    def catalog(
        self, path: str, spec: dict[str, Any], defaults: dict[str, Any], kind: str
    ) -> CatalogSettings:
        if kind != "games":
            for key in ("catalog", "blocked_countries"):
                if key in spec:
                    self.fail(f"{path}.{key}", "only a game aggregator has a catalog")
            return CatalogSettings()
        settings = CatalogSettings(**{**defaults.get("catalog", {}), **spec.get("catalog", {})})
        if settings.max_stale_s < settings.refresh_s:
            # Named where it was written: the provider's own block, else the defaults.
            where = f"{path}.catalog" if "catalog" in spec else "defaults.catalog"
            problem = (
                f"{where}: max_stale_s ({settings.max_stale_s:g}) must be at least refresh_s "
                f"({settings.refresh_s:g}), or a catalog expires before its next refresh"
            )
            if problem not in self.problems:
                self.problems.append(problem)
        return settings

    def catalog_refresh(
        self, providers: dict[str, ProviderConfig], routes: dict[str, RouteConfig]
    ) -> dict[str, ProviderConfig]:
        """`cache:` on a games route, from before the catalog was kept warm: its ttl_s
        becomes the refresh interval of the route's aggregators that set none themselves."""
        # Only providers that were built: a spec the schema refused may be anything.
        explicit = {
            name
            for name in providers
            if "refresh_s" in (self.doc["providers"][name].get("catalog") or {})
        }
        ttl: dict[str, float] = {}
        for op, route in routes.items():
            if not op.startswith("games.") or route.cache is None:
                continue
            affected = [n for n in route.providers if n in providers and n not in explicit]
            self.notes.append(_cache_note(op, route.cache, affected))
            if route.cache.ttl_s > 0:
                for name in affected:
                    ttl[name] = min(ttl.get(name, route.cache.ttl_s), route.cache.ttl_s)
        out = dict(providers)
        for name, refresh in ttl.items():
            settings = providers[name].catalog
            catalog = CatalogSettings(refresh, max(settings.max_stale_s, refresh))
            out[name] = dataclasses.replace(providers[name], catalog=catalog)
        return out

    # -- routes

    def route(
        self, op: str, spec: dict[str, Any], providers: dict[str, ProviderConfig]
    ) -> RouteConfig:
        names = tuple(spec["providers"])
        for i, name in enumerate(names):
            path = f"routes.{op}.providers[{i}]"
            if name not in self.doc["providers"]:
                self.fail(path, f"unknown provider '{name}'")
            elif name in providers and providers[name].kind != OPERATIONS[op]:
                self.fail(
                    path,
                    f"provider '{name}' uses the {providers[name].kind} adapter "
                    f"'{providers[name].adapter_name}', which cannot serve {op}",
                )
        cache = CacheSettings(**spec["cache"]) if "cache" in spec else None
        if cache is not None and op.startswith("payments.") and op != "payments.get":
            self.fail(f"routes.{op}.cache", "payment creation is never cached")
        if cache is not None and op == "payments.get":
            longest = cache.ttl_s + max(cache.stale_while_revalidate_s, cache.stale_if_error_s)
            if longest > 5:
                self.fail(
                    f"routes.{op}.cache",
                    "payments.get may be served from cache 5 seconds at most "
                    "(ttl_s plus the longer of the stale windows)",
                )
        limit = RouteRateLimit(**spec["rate_limit"]) if "rate_limit" in spec else None
        if limit is not None:
            self.check_rate(f"routes.{op}.rate_limit.limit", limit.limit)
        rules = build_rules(
            f"routes.{op}", spec.get("rules", []), providers, set(self.doc["providers"]), self.fail
        )
        if op == "payments.create":
            warning = withdrawal_warning(f"routes.{op}", names, rules, providers)
            self.warnings.extend([warning] if warning else [])
        return RouteConfig(
            op=op, providers=names, cache=cache, rate_limit=limit, rules=rules,
            cascade_soft_declines=spec.get("cascade_soft_declines", False),
        )

    # -- the rest

    def check_rate(self, path: str, text: str) -> None:
        try:
            parse_rate(text)
        except ValueError as exc:
            self.fail(path, str(exc))

    def event_settings(self, given: dict[str, Any]) -> EventSettings | None:
        env, name = self.env, given.get("secret_env")
        if isinstance(name, str) and not env.get(name) and env.get(f"{name}_FILE"):
            secret = self.secret_from_file("events.secret_env", env[f"{name}_FILE"])
            if secret is None:
                return None
            env = {**env, name: secret}
        try:
            settings = parse_settings(given, env)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return None
        secret = env.get(given.get("secret_env", ""), "")
        if secret:
            self.secret_values.append(secret)
        return settings

    def wallet(self, given: dict[str, Any] | None) -> WalletSettings | None:
        if given is None:
            return None
        url_problem = check_base_url(given["backend_url"])
        if url_problem:
            self.fail("wallet.backend_url", url_problem)
        secret = self.secret_from_env("wallet.secret_env", given["secret_env"])
        if secret is None or url_problem:
            return None
        return WalletSettings(
            backend_url=given["backend_url"].rstrip("/"),
            secret=secret,
            timeout_ms=given.get("timeout_ms", DEFAULT_WALLET_TIMEOUT_MS),
        )

    def storage(self, given: dict[str, Any]) -> StorageSettings:
        spec = dict(given)
        if "url_env" in spec:  # a URL with a password is a secret like any other
            spec["url"] = self.secret_from_env("storage.url_env", spec.pop("url_env"))
        return StorageSettings(**spec)

    def ledger(self, given: dict[str, Any]) -> LedgerSettings:
        spec = dict(given)
        if "url_env" in spec:
            url = self.secret_from_env("ledger.url_env", spec.pop("url_env"))
            spec["url"] = url
            password = urlsplit(url).password if url else None
            if password:  # a driver error may quote the password without the URL around it
                self.secret_values.append(password)
        return LedgerSettings(**spec)

    def tracing(self, given: dict[str, Any] | None) -> TracingSettings | None:
        if given is None:
            return None
        endpoint = given["otlp_endpoint"]
        problem = check_base_url(endpoint)
        if problem is None and urlsplit(endpoint).password is not None:
            # The config is shown at /admin/config: a collector's credentials belong in
            # OTEL_EXPORTER_OTLP_HEADERS, which the exporter reads itself.
            problem = "must not carry a password; set OTEL_EXPORTER_OTLP_HEADERS instead"
        if problem is not None:
            self.fail("tracing.otlp_endpoint", problem)
            return None
        if not urlsplit(endpoint).path.strip("/"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        return TracingSettings(endpoint, float(given.get("sample_ratio", 1.0)))

    def aliases(self, given: dict[str, str]) -> dict[str, str]:
        return {slugify(k): slugify(v) for k, v in given.items()}

    def studios(
        self, given: dict[str, Any], aliases: Mapping[str, str]
    ) -> dict[str, frozenset[str]]:
        """Studio name as written (any spelling) -> its canonical slug, as game ids use."""
        out: dict[str, frozenset[str]] = {}
        for name, spec in given.items():
            slug = slugify(name)
            if not slug:
                self.fail(f"studios.{name}", "a studio name needs letters or digits")
                continue
            slug = aliases.get(slug, slug)
            out[slug] = out.get(slug, frozenset()) | frozenset(spec.get("blocked_countries", ()))
        return out

def _cache_note(op: str, cache: CacheSettings, affected: list[str]) -> str:
    who = ", ".join(affected)
    if not affected:
        refresh = "ttl_s is ignored: each of its aggregators sets catalog.refresh_s"
    elif cache.ttl_s > 0:
        refresh = f"ttl_s {cache.ttl_s:g} sets catalog.refresh_s of {who}"
    else:
        refresh = f"ttl_s 0 no longer means a fetch per request; {who} keep catalog.refresh_s"
    return (
        f"routes.{op}.cache: games routes now read the catalog snapshot kept warm in the "
        f"background, and no request fetches a catalog. {refresh}; the stale_* windows no "
        "longer apply (catalog.max_stale_s keeps a catalog while its refreshes fail)."
    )
