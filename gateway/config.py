"""providers.yaml: parse, validate whole, resolve secrets, build typed settings.

A config is accepted only when every check passes; `ConfigError` lists every problem found,
each named by its key path (`routes.games.list.providers[1]: unknown provider 'hub99'`).
Secrets are read from the environment (`*_env`) or files (`*_file`) here and nowhere else,
and the typed settings never print them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

import adapters
from adapters.base import OPERATIONS, AdapterSpec
from policies.ratelimit import parse_rate

DEFAULT_TIMEOUT_MS = 2000
DEFAULT_MAX_BODY = 65536
SECRET_SUFFIXES = ("_env", "_file")
REDACTED = "***"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigError(Exception):
    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in problems))


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failure_threshold: int = 5
    recovery_timeout_s: float = 30.0
    half_open_probes: int = 1


@dataclass(frozen=True, slots=True)
class HealthSettings:
    path: str | None = None
    interval_s: float = 10.0
    timeout_ms: int = 1000
    unhealthy_after: int = 3
    healthy_after: int = 2
    enabled: bool = True


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
    # without keeping or comparing the secrets themselves.
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    ttl_s: float = 0.0
    stale_while_revalidate_s: float = 0.0
    stale_if_error_s: float = 0.0


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
class CacheLimits:
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024


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
    payment_id_secret: bytes | None = field(default=None, repr=False)
    payment_retries: int = 1
    clients: tuple[ClientConfig, ...] = ()
    cors: CorsConfig | None = None
    cache_limits: CacheLimits = CacheLimits()
    storage: StorageSettings = StorageSettings()
    events: Mapping[str, Any] = field(default_factory=dict)
    event_settings: Any = field(default=None, repr=False)  # gateway.events.EventSettings
    source: str = ""
    hash: str = ""
    redacted: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # Every secret value read, so logs can mask them wherever they might slip in.
    secret_values: tuple[str, ...] = field(default=(), repr=False)


# ---- loading ----------------------------------------------------------------------------


@cache
def config_schema() -> dict[str, Any]:
    text = resources.files("gateway").joinpath("schemas/config.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = config_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read file: {exc.strerror or exc}"], str(path)) from None
    return parse_config(data, source=str(path), env=env, base_dir=path.parent)


def parse_config(
    data: bytes,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    env = os.environ if env is None else env
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}invalid YAML: {problem}"], source) from None
    if not isinstance(doc, dict):
        raise ConfigError(["the file must hold a mapping (version, providers, routes)"], source)
    bad_keys = list(_non_string_keys(doc))
    if bad_keys:
        raise ConfigError(bad_keys, source)
    problems = [
        f"{key_path(err.absolute_path)}: {_schema_message(err)}"
        for err in sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.path)))
    ]
    if problems:
        raise ConfigError(problems, source)
    builder = _Builder(doc, env, base_dir or Path.cwd())
    config = builder.build(source, hashlib.sha256(data).hexdigest())
    if builder.problems:
        raise ConfigError(builder.problems, source)
    return config


def _schema_message(err: jsonschema.ValidationError) -> str:
    """The schema's message, unless the value may be a secret pasted in the wrong place."""
    last = str(err.absolute_path[-1]).lower() if err.absolute_path else ""
    if last.endswith(SECRET_SUFFIXES) or any(word in last for word in _SECRET_WORDS):
        return f"not a valid value for {last} (the value is not repeated here)"
    return str(err.message)


def _non_string_keys(node: Any, path: tuple[Any, ...] = ()) -> Iterable[str]:
    """YAML allows `1:` as a key; everything here expects names."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                yield f"{key_path(path)}: key {key!r} must be a string"
            else:
                yield from _non_string_keys(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _non_string_keys(value, (*path, i))


def key_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


class _Builder:
    """Semantic checks past the JSON Schema, collecting every problem instead of the first."""

    def __init__(self, doc: dict[str, Any], env: Mapping[str, str], base_dir: Path) -> None:
        self.doc = doc
        self.env = env
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.secret_values: list[str] = []

    def fail(self, path: str, problem: str) -> None:
        self.problems.append(f"{path}: {problem}")

    def build(self, source: str, digest: str) -> Config:
        doc = self.doc
        defaults = doc.get("defaults", {})
        providers = {
            name: p
            for name, spec in doc["providers"].items()
            if (p := self.provider(name, spec, defaults)) is not None
        }
        routes = {op: self.route(op, spec, providers) for op, spec in doc["routes"].items()}
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
            studio_aliases=self.aliases(doc.get("studio_aliases", {})),
            payment_id_secret=secret,
            payment_retries=defaults.get("payment_retries", 1),
            clients=self.clients(doc.get("clients", [])),
            cors=self.cors(doc.get("cors")),
            cache_limits=CacheLimits(**doc.get("cache", {})),
            storage=self.storage(doc.get("storage", {})),
            events=doc.get("events", {}),
            event_settings=self.event_settings(doc.get("events", {})),
            source=source,
            hash=digest,
            redacted=redact(doc),
            secret_values=tuple(self.secret_values),
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
        )

    def credentials(
        self, path: str, given: dict[str, Any], spec: AdapterSpec
    ) -> dict[str, Any] | None:
        resolved: dict[str, Any] = {}
        ok = True
        known = set(spec.credentials) | set(spec.optional)
        for key, value in given.items():
            kpath = f"{path}.credentials.{key}"
            base, suffix = split_secret_key(key)
            if base not in known:
                self.fail(
                    kpath, f"unknown credential for adapter (expected one of {sorted(known)})"
                )
                ok = False
                continue
            if suffix is None and base in spec.secrets:
                self.fail(kpath, f"'{base}' is a secret: give it as {base}_env or {base}_file")
                ok = False
                continue
            if suffix == "_env":
                secret = self.secret_from_env(kpath, value)
            elif suffix == "_file":
                secret = self.secret_from_file(kpath, value)
            else:
                resolved[base] = value
                continue
            if secret is None:
                ok = False
            else:
                resolved[base] = secret
        for required in spec.credentials:
            if required not in resolved and ok:
                hint = f"{required}_env" if required in spec.secrets else required
                self.fail(f"{path}.credentials", f"missing '{hint}'")
                ok = False
        return resolved if ok else None

    def secret_from_env(self, path: str, name: Any) -> str | None:
        # Not echoed when it is no variable name: it may be the secret itself, pasted here.
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            self.fail(path, "must name an environment variable (letters, digits, _)")
            return None
        value = self.env.get(name)
        if not value:
            self.fail(path, f"environment variable '{name}' is not set")
            return None
        self.secret_values.append(value)
        return value

    def secret_from_file(self, path: str, name: Any) -> str | None:
        if not isinstance(name, str) or not name:
            self.fail(path, "must name a file")
            return None
        file = Path(name) if Path(name).is_absolute() else self.base_dir / name
        try:
            value = file.read_text().strip()
        except OSError as exc:
            self.fail(path, f"cannot read secret file '{name}': {exc.strerror or exc}")
            return None
        self.secret_values.append(value)
        return value

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
        return RouteConfig(op=op, providers=names, cache=cache, rate_limit=limit)

    # -- the rest

    def check_rate(self, path: str, text: str) -> None:
        try:
            parse_rate(text)
        except ValueError as exc:
            self.fail(path, str(exc))

    def event_settings(self, given: dict[str, Any]) -> Any:
        from gateway.events import parse_settings  # events imports config: import late

        try:
            settings = parse_settings(given, self.env)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return None
        secret = self.env.get(given.get("secret_env", ""), "")
        if secret:
            self.secret_values.append(secret)
        return settings

    def storage(self, given: dict[str, Any]) -> StorageSettings:
        spec = dict(given)
        if "url_env" in spec:  # a URL with a password is a secret like any other
            spec["url"] = self.secret_from_env("storage.url_env", spec.pop("url_env"))
        return StorageSettings(**spec)

    def aliases(self, given: dict[str, str]) -> dict[str, str]:
        from gateway.catalog import slugify

        return {slugify(k): slugify(v) for k, v in given.items()}

    def clients(self, given: list[dict[str, Any]]) -> tuple[ClientConfig, ...]:
        out: list[ClientConfig] = []
        seen_ids: set[str] = set()
        seen_keys: set[bytes] = set()
        for i, spec in enumerate(given):
            path = f"clients[{i}]"
            if spec["id"] in seen_ids:
                self.fail(f"{path}.id", f"duplicate client id '{spec['id']}'")
            seen_ids.add(spec["id"])
            if "key_sha256" in spec:
                digest = bytes.fromhex(spec["key_sha256"])
            else:
                key = (
                    self.secret_from_env(f"{path}.key_env", spec["key_env"])
                    if "key_env" in spec
                    else self.secret_from_file(f"{path}.key_file", spec["key_file"])
                )
                if key is None:
                    continue
                digest = hashlib.sha256(key.encode()).digest()
            if "rate_limit" in spec:
                self.check_rate(f"{path}.rate_limit", spec["rate_limit"])
            if digest in seen_keys:
                self.fail(path, "two clients share one key")
            seen_keys.add(digest)
            out.append(
                ClientConfig(
                    id=spec["id"],
                    key_digest=digest,
                    roles=frozenset(spec.get("roles", ["client"])),
                    rate_limit=spec.get("rate_limit"),
                )
            )
        return tuple(out)

    def cors(self, given: dict[str, Any] | None) -> CorsConfig | None:
        if given is None:
            return None
        spec: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in given.items()
        }
        return CorsConfig(**spec)


def split_secret_key(key: str) -> tuple[str, str | None]:
    for suffix in SECRET_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)], suffix
    return key, None


def check_base_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"'{url}' is not an http(s) URL"
    if not parts.hostname:
        return f"'{url}' has no host"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return f"'{url}' has a bad port"
    if parts.query or parts.fragment:
        return f"'{url}' must not carry a query or fragment"
    return None


_SECRET_WORDS = ("key", "secret", "token", "password")


def redact(doc: Any, parent_key: str = "") -> Any:
    """The config as written, with anything secret-looking replaced (for the admin API).

    Values of `*_env`/`*_file` keys only name where a secret lives, but are redacted too:
    a path or variable name is still more than a viewer needs.
    """
    if isinstance(doc, dict):
        return {k: _redact_value(k, v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [redact(v, parent_key) for v in doc]
    return doc


def _redact_value(key: str, value: Any) -> Any:
    lowered = str(key).lower()
    if any(word in lowered for word in _SECRET_WORDS) or lowered.endswith(SECRET_SUFFIXES):
        return REDACTED  # whatever its shape: a list of tokens is still tokens
    if isinstance(value, dict | list):
        return redact(value, key)
    if isinstance(value, str) and "@" in value and "://" in value:
        return _without_password(value)
    return value


def _without_password(url: str) -> str:
    """`redis://:pw@host` -> `redis://***@host`: credentials inside a URL are secrets too."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=f"{REDACTED}@{host}").geturl()
