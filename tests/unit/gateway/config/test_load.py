"""providers.yaml parsing: every problem named by key path, secrets kept out of messages."""

from __future__ import annotations

import copy
import hashlib
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.errors import ConfigError
from gateway.config.load import load_config, parse_config
from gateway.config.model import (
    DEFAULT_MAX_BODY,
    DEFAULT_TIMEOUT_MS,
    CatalogSettings,
    Config,
    TracingSettings,
)
from gateway.config.redact import redact
from policies.breaker import BreakerSettings
from policies.health import HealthSettings
from simulators.hub88 import generate_operator_keypair

HUB88_URL = "http://127.0.0.1:9101"
SLOTEGRATOR_URL = "http://127.0.0.1:9102"
STRIPE_URL = "http://127.0.0.1:9103"
ADYEN_URL = "http://127.0.0.1:9104"


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    private_pem, _ = generate_operator_keypair()  # RSA generation is slow: once per module
    return {
        "HUB88_PRIVATE_KEY": private_pem,
        "SLOTEGRATOR_KEY": secrets.token_hex(20),
        "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_urlsafe(24),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(24),
        "ADYEN_API_KEY": "AQE" + secrets.token_urlsafe(32),
        "ADYEN_HMAC_KEY": secrets.token_hex(32).upper(),
        "PAYMENT_ID_SECRET": secrets.token_urlsafe(32),
        "WEB_API_KEY": "web_" + secrets.token_urlsafe(24),
    }


def base_doc() -> dict[str, Any]:
    return {
        "version": 1,
        "studio_aliases": {
            "pragmaticplay": "pragmatic-play",
            "evolution-gaming": "evolution",
            "playn-go": "play-n-go",
        },
        "defaults": {
            "timeout_ms": 500,
            "breaker": {"failure_threshold": 5, "recovery_timeout_s": 30},
            "health": {"enabled": False, "interval_s": 0.2, "timeout_ms": 200},
        },
        "providers": {
            "hub88": {
                "adapter": "hub88",
                "base_url": HUB88_URL,
                "credentials": {"operator_id": 1, "private_key_env": "HUB88_PRIVATE_KEY"},
            },
            "slotegrator": {
                "adapter": "slotegrator",
                "base_url": SLOTEGRATOR_URL,
                "credentials": {"merchant_id": "demo", "merchant_key_env": "SLOTEGRATOR_KEY"},
            },
            "stripe": {
                "adapter": "stripe",
                "base_url": STRIPE_URL,
                "credentials": {
                    "secret_key_env": "STRIPE_SECRET_KEY",
                    "webhook_secret_env": "STRIPE_WEBHOOK_SECRET",
                },
            },
            "adyen": {
                "adapter": "adyen",
                "base_url": ADYEN_URL,
                "credentials": {
                    "api_key_env": "ADYEN_API_KEY",
                    "merchant_account": "DemoCasino",
                    "hmac_key_env": "ADYEN_HMAC_KEY",
                },
            },
        },
        "routes": {
            "games.list": {"providers": ["hub88", "slotegrator"]},
            "games.get": {"providers": ["hub88", "slotegrator"]},
            "games.launch": {"providers": ["hub88", "slotegrator"]},
            "payments.create": {"providers": ["stripe", "adyen"]},
            "payments.get": {"providers": ["stripe", "adyen"]},
        },
    }


def dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False).encode()


def parse(doc: dict[str, Any], env: dict[str, str]) -> Config:
    return parse_config(dump(doc), env=env)


def problems_of(doc: dict[str, Any], env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(doc, env)
    return info.value.problems


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


# ---- a valid file ------------------------------------------------------------------------


def test_valid_config_builds_typed_settings(env: dict[str, str]):
    data = dump(base_doc())
    config = parse_config(data, source="providers.yaml", env=env)
    assert config.source == "providers.yaml"
    assert config.hash == hashlib.sha256(data).hexdigest()
    assert list(config.providers) == ["hub88", "slotegrator", "stripe", "adyen"]
    assert {n: (p.adapter_name, p.kind, p.base_url) for n, p in config.providers.items()} == {
        "hub88": ("hub88", "games", HUB88_URL),
        "slotegrator": ("slotegrator", "games", SLOTEGRATOR_URL),
        "stripe": ("stripe", "payments", STRIPE_URL),
        "adyen": ("adyen", "payments", ADYEN_URL),
    }
    assert {op: r.providers for op, r in config.routes.items()} == {
        "games.list": ("hub88", "slotegrator"),
        "games.get": ("hub88", "slotegrator"),
        "games.launch": ("hub88", "slotegrator"),
        "payments.create": ("stripe", "adyen"),
        "payments.get": ("stripe", "adyen"),
    }
    assert all(r.cache is None and r.rate_limit is None for r in config.routes.values())
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 8080)
    assert config.max_body_bytes == DEFAULT_MAX_BODY == 65536
    assert config.log_level == "INFO"
    assert config.payment_retries == 1
    assert config.payment_id_secret is None
    assert config.clients == ()
    assert config.cors is None


def test_top_level_settings_are_read(env: dict[str, str]):
    doc = {
        **base_doc(),
        "listen": {"host": "0.0.0.0", "port": 9000},
        "max_body_bytes": 1024,
        "log_level": "debug",
        "payment_id_secret_env": "PAYMENT_ID_SECRET",
    }
    doc["defaults"]["payment_retries"] = 3
    config = parse(doc, env)
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 9000)
    assert config.max_body_bytes == 1024
    assert config.log_level == "DEBUG"
    assert config.payment_retries == 3
    assert config.payment_id_secret == env["PAYMENT_ID_SECRET"].encode()


def test_trailing_slash_of_base_url_is_dropped(env: dict[str, str]):
    doc = base_doc()
    doc["providers"]["hub88"]["base_url"] = HUB88_URL + "/"
    assert parse(doc, env).providers["hub88"].base_url == HUB88_URL


# ---- semantic problems, by key path --------------------------------------------------------


def test_unknown_provider_in_a_route(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["games.list"]["providers"] = ["hub88", "hub99"]
    assert problems_of(doc, env) == ["routes.games.list.providers[1]: unknown provider 'hub99'"]


def test_missing_environment_variable(env: dict[str, str]):
    problems = problems_of(base_doc(), without(env, "STRIPE_SECRET_KEY"))
    assert problems == [
        "providers.stripe.credentials.secret_key_env: "
        "environment variable 'STRIPE_SECRET_KEY' is not set"
    ]


def test_empty_environment_variable_counts_as_not_set(env: dict[str, str]):
    problems = problems_of(base_doc(), {**env, "ADYEN_API_KEY": ""})
    assert problems == [
        "providers.adyen.credentials.api_key_env: environment variable 'ADYEN_API_KEY' is not set"
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://x", "'ftp://x' is not an http(s) URL"),
        ("http://", "'http://' has no host"),
        ("not a url", "'not a url' is not an http(s) URL"),
        ("127.0.0.1:9101", "'127.0.0.1:9101' is not an http(s) URL"),
        ("http://127.0.0.1:99999", "'http://127.0.0.1:99999' has a bad port"),
        (
            "http://127.0.0.1:9101/?a=1",
            "'http://127.0.0.1:9101/?a=1' must not carry a query or fragment",
        ),
        ("https://h.example#top", "'https://h.example#top' must not carry a query or fragment"),
    ],
)
def test_bad_base_url(env: dict[str, str], url: str, problem: str):
    doc = base_doc()
    doc["providers"]["hub88"]["base_url"] = url
    assert problems_of(doc, env) == [f"providers.hub88.base_url: {problem}"]


def test_payment_route_served_by_a_games_adapter(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["payments.create"]["providers"] = ["hub88", "stripe"]
    assert problems_of(doc, env) == [
        "routes.payments.create.providers[0]: provider 'hub88' uses the games adapter 'hub88', "
        "which cannot serve payments.create"
    ]


def test_games_route_served_by_a_payments_adapter(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["games.launch"]["providers"] = ["hub88", "adyen"]
    assert problems_of(doc, env) == [
        "routes.games.launch.providers[1]: provider 'adyen' uses the payments adapter 'adyen', "
        "which cannot serve games.launch"
    ]


@pytest.mark.parametrize("adapter", ["nope", "base", "Hub88", "../hub88"])
def test_unknown_adapter(env: dict[str, str], adapter: str):
    doc = base_doc()
    doc["providers"]["x"] = {"adapter": adapter, "base_url": "http://127.0.0.1:9105"}
    assert problems_of(doc, env) == [f"providers.x.adapter: unknown adapter '{adapter}'"]


def test_inline_secret_is_refused_and_not_echoed(env: dict[str, str]):
    doc = base_doc()
    doc["providers"]["hub88"]["credentials"] = {
        "operator_id": 1,
        "private_key": env["HUB88_PRIVATE_KEY"],
    }
    with pytest.raises(ConfigError) as info:
        parse(doc, env)
    assert info.value.problems == [
        "providers.hub88.credentials.private_key: "
        "'private_key' is a secret: give it as private_key_env or private_key_file"
    ]
    assert "PRIVATE KEY" not in str(info.value)


def test_unknown_credential(env: dict[str, str]):
    doc = base_doc()
    doc["providers"]["hub88"]["credentials"]["signing_key_env"] = "HUB88_PRIVATE_KEY"
    assert problems_of(doc, env) == [
        "providers.hub88.credentials.signing_key_env: "
        "unknown credential for adapter (expected one of ['hub88_public_key', 'operator_id', "
        "'private_key'])"
    ]


def test_missing_required_credential(env: dict[str, str]):
    doc = base_doc()
    del doc["providers"]["adyen"]["credentials"]["merchant_account"]
    del doc["providers"]["slotegrator"]["credentials"]["merchant_key_env"]
    assert problems_of(doc, env) == [
        "providers.slotegrator.credentials: missing 'merchant_key_env'",
        "providers.adyen.credentials: missing 'merchant_account'",
    ]


def test_credential_the_adapter_rejects(env: dict[str, str]):
    publishable = "pk_live_" + secrets.token_urlsafe(16)
    with pytest.raises(ConfigError) as info:
        parse(base_doc(), {**env, "STRIPE_SECRET_KEY": publishable})
    assert info.value.problems == [
        "providers.stripe.credentials: "
        "stripe: stripe secret_key must be a secret (sk_...) or restricted (rk_...) key"
    ]
    assert publishable not in str(info.value)


def test_secret_file_is_read_relative_to_the_config(env: dict[str, str], tmp_path: Path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "slotegrator.key").write_text(env["SLOTEGRATOR_KEY"] + "\n")
    doc = base_doc()
    doc["providers"]["slotegrator"]["credentials"] = {
        "merchant_id": "demo",
        "merchant_key_file": "secrets/slotegrator.key",
    }
    path = tmp_path / "providers.yaml"
    path.write_bytes(dump(doc))
    config = load_config(path, env=without(env, "SLOTEGRATOR_KEY"))
    assert env["SLOTEGRATOR_KEY"] in config.secret_values
    doc["providers"]["slotegrator"]["credentials"]["merchant_key_file"] = "secrets/missing.key"
    path.write_bytes(dump(doc))
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert info.value.problems == [
        "providers.slotegrator.credentials.merchant_key_file: "
        "cannot read secret file 'secrets/missing.key': No such file or directory"
    ]


def test_route_cache_rules(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["payments.create"]["cache"] = {"ttl_s": 1}
    doc["routes"]["payments.get"]["cache"] = {"ttl_s": 2, "stale_if_error_s": 10}
    assert problems_of(doc, env) == [
        "routes.payments.create.cache: payment creation is never cached",
        "routes.payments.get.cache: payments.get may be served from cache 5 seconds at most "
        "(ttl_s plus the longer of the stale windows)",
    ]


def test_rates_the_limiter_cannot_read_are_refused_at_load(env: dict[str, str]):
    doc = base_doc()
    doc["providers"]["stripe"]["rate_limit"] = "100/s"
    doc["routes"]["games.list"]["rate_limit"] = {"limit": "0/second"}
    problems = problems_of(doc, env)
    assert [p.split(":")[0] for p in problems] == [
        "providers.stripe.rate_limit",
        "routes.games.list.rate_limit.limit",
    ]


def test_a_secret_pasted_into_an_env_field_is_not_echoed_by_the_schema(env: dict[str, str]):
    doc = {**base_doc(), "clients": [{"id": "web", "key_env": "pk live SECRETKEY!!"}]}
    problems = problems_of(doc, env)
    assert problems and all("SECRETKEY" not in p for p in problems)
    assert problems[0].startswith("clients[0].key_env: ")


def test_duplicate_client_id(env: dict[str, str]):
    doc = {
        **base_doc(),
        "clients": [
            {"id": "web", "key_env": "WEB_API_KEY"},
            {"id": "web", "key_sha256": "ab" * 32},
        ],
    }
    assert problems_of(doc, env) == ["clients[1].id: duplicate client id 'web'"]


def test_several_problems_are_reported_at_once(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["games.list"]["providers"] = ["hub88", "hub99"]
    doc["providers"]["stripe"]["base_url"] = "ftp://x"
    doc["providers"]["x"] = {"adapter": "nope", "base_url": "http://127.0.0.1:9105"}
    problems = problems_of(doc, without(env, "ADYEN_API_KEY"))
    assert problems == [
        "providers.stripe.base_url: 'ftp://x' is not an http(s) URL",
        "providers.adyen.credentials.api_key_env: environment variable 'ADYEN_API_KEY' is not set",
        "providers.x.adapter: unknown adapter 'nope'",
        "routes.games.list.providers[1]: unknown provider 'hub99'",
    ]


def test_several_schema_problems_are_reported_at_once(env: dict[str, str]):
    doc = base_doc()
    del doc["version"]
    doc["providers"]["hub88"]["timeout_ms"] = 0
    doc["routes"]["games.list"]["providers"] = []
    assert problems_of(doc, env) == [
        "(top level): 'version' is a required property",
        "providers.hub88.timeout_ms: 0 is less than the minimum of 1",
        "routes.games.list.providers: [] should be non-empty",
    ]


def test_error_message_names_the_source(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["games.get"]["providers"] = ["hub99"]
    with pytest.raises(ConfigError) as info:
        parse_config(dump(doc), source="config/providers.yaml", env=env)
    assert info.value.source == "config/providers.yaml"
    assert str(info.value) == (
        "config/providers.yaml: routes.games.get.providers[0]: unknown provider 'hub99'"
    )


# ---- schema and syntax problems --------------------------------------------------------------


def test_missing_version(env: dict[str, str]):
    doc = base_doc()
    del doc["version"]
    assert problems_of(doc, env) == ["(top level): 'version' is a required property"]


def test_unsupported_version(env: dict[str, str]):
    assert problems_of({**base_doc(), "version": 2}, env) == ["version: 1 was expected"]


def test_unknown_top_level_key(env: dict[str, str]):
    assert problems_of({**base_doc(), "provider": {}}, env) == [
        "(top level): Additional properties are not allowed ('provider' was unexpected)"
    ]


def test_unknown_route_operation(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["payments.refund"] = {"providers": ["stripe"]}
    assert problems_of(doc, env) == [
        "routes: Additional properties are not allowed ('payments.refund' was unexpected)"
    ]


def test_invalid_yaml_names_line_and_column(env: dict[str, str]):
    text = dump(base_doc()).decode().splitlines()
    at = text.index("providers:")
    text.insert(at + 1, "  hub77: {adapter: hub88")  # an unclosed flow mapping
    with pytest.raises(ConfigError) as info:
        parse_config("\n".join(text).encode(), source="p.yaml", env=env)
    assert info.value.problems == [
        f"line {at + 3}, column 8: invalid YAML: expected ',' or '}}', but got ':'"
    ]
    assert str(info.value).startswith(f"p.yaml: line {at + 3}, column 8: invalid YAML")


def test_tab_indentation_is_invalid_yaml(env: dict[str, str]):
    with pytest.raises(ConfigError) as info:
        parse_config(b"version: 1\nproviders:\n\thub88: {}\n", env=env)
    assert info.value.problems == [
        "line 3, column 1: invalid YAML: found character '\\t' that cannot start any token"
    ]


@pytest.mark.parametrize("data", [b"", b"# only a comment\n", b"- a\n- b\n", b"42\n", b"null\n"])
def test_file_that_is_not_a_mapping(env: dict[str, str], data: bytes):
    with pytest.raises(ConfigError) as info:
        parse_config(data, env=env)
    assert info.value.problems == ["the file must hold a mapping (version, providers, routes)"]


def test_binary_garbage_is_a_config_error(env: dict[str, str]):
    with pytest.raises(ConfigError) as info:
        parse_config(b"\xff\xfe\x00\x01garbage", env=env)
    assert len(info.value.problems) == 1
    assert "invalid YAML" in info.value.problems[0]


def test_truncated_file_is_a_config_error(env: dict[str, str]):
    data = dump(base_doc())
    with pytest.raises(ConfigError) as info:
        parse_config(data[: len(data) // 2], env=env)
    assert info.value.problems  # named problems, not a traceback


def test_every_truncation_is_a_config_error_or_a_config(env: dict[str, str]):
    data = dump(base_doc())
    outcomes: dict[str, int] = {"error": 0, "ok": 0}
    for cut in range(0, len(data), 17):
        try:
            parse_config(data[:cut], env=env)
        except ConfigError as exc:
            assert exc.problems, cut
            outcomes["error"] += 1
        else:
            outcomes["ok"] += 1
    assert outcomes["error"] > 0
    parse_config(data, env=env)


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.source == str(path)
    assert info.value.problems == ["cannot read file: No such file or directory"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"events": {1: "log"}}, id="events"),
        pytest.param({"studio_aliases": {7: "seven"}}, id="studio_aliases"),
        pytest.param({"providers": {"hub88": {"credentials": {1: "x"}}}}, id="credentials"),
    ],
)
def test_non_string_keys_are_a_config_error_not_a_crash(env: dict[str, str], change: dict):
    doc = base_doc()
    for section, value in change.items():
        if section == "providers":
            doc["providers"]["hub88"]["credentials"].update(value["hub88"]["credentials"])
        else:
            doc[section] = value
    with pytest.raises(ConfigError) as info:
        parse(doc, env)
    assert info.value.problems


# ---- secrets ---------------------------------------------------------------------------------


def secret_values(env: dict[str, str]) -> list[str]:
    pem_lines = [
        line for line in env["HUB88_PRIVATE_KEY"].splitlines() if "PRIVATE KEY" not in line
    ]
    return [*env.values(), *pem_lines]


def test_secrets_never_appear_in_errors(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["games.list"]["providers"] = ["hub88", "hub99"]
    doc["providers"]["adyen"]["credentials"]["hmac_key_env"] = "STRIPE_SECRET_KEY"  # not hex
    with pytest.raises(ConfigError) as info:
        parse(doc, {**env, "SLOTEGRATOR_KEY": "has a space " + env["SLOTEGRATOR_KEY"]})
    assert info.value.problems == [
        "providers.slotegrator.credentials: "
        "provider 'slotegrator': merchant_key must not contain spaces or control characters",
        "providers.adyen.credentials: provider 'adyen': hmac_key must be the hex-encoded HMAC "
        "key from Adyen's webhook settings",
        "routes.games.list.providers[1]: unknown provider 'hub99'",
    ]
    text = str(info.value) + repr(info.value)
    for value in secret_values(env):
        assert value not in text


def test_secret_pasted_where_a_variable_name_belongs_is_not_echoed(env: dict[str, str]):
    # An API key or a PEM given as `*_env` is a secret in the wrong place, not a variable name.
    pasted_api_key = "AQE" + secrets.token_hex(16) + "+Zz/0="
    doc = base_doc()
    doc["providers"]["adyen"]["credentials"]["api_key_env"] = pasted_api_key
    doc["providers"]["hub88"]["credentials"]["private_key_env"] = env["HUB88_PRIVATE_KEY"]
    with pytest.raises(ConfigError) as info:
        parse(doc, env)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "providers.hub88.credentials.private_key_env",
        "providers.adyen.credentials.api_key_env",
    ]
    text = str(info.value)
    assert pasted_api_key not in text
    for line in env["HUB88_PRIVATE_KEY"].splitlines():
        assert line not in text


def test_secrets_never_appear_in_the_config_repr(env: dict[str, str]):
    doc = {
        **base_doc(),
        "payment_id_secret_env": "PAYMENT_ID_SECRET",
        "clients": [{"id": "web", "key_env": "WEB_API_KEY"}],
    }
    config = parse(doc, env)
    text = repr(config) + str(config) + repr(config.redacted)
    for value in secret_values(env):
        assert value not in text
    assert hashlib.sha256(env["WEB_API_KEY"].encode()).hexdigest() not in text
    # The log redactor is given every secret that was read.
    assert sorted(config.secret_values) == sorted(env.values())


def test_redacted_config_hides_secret_locations_and_values(env: dict[str, str]):
    doc = {
        **base_doc(),
        "payment_id_secret_env": "PAYMENT_ID_SECRET",
        "clients": [
            {"id": "web", "key_env": "WEB_API_KEY", "roles": ["client"]},
            {"id": "ops", "key_sha256": "ab" * 32, "roles": ["admin"]},
        ],
    }
    redacted = parse(doc, env).redacted
    assert redacted["payment_id_secret_env"] == "***"
    assert redacted["providers"]["hub88"] == {
        "adapter": "hub88",
        "base_url": HUB88_URL,
        "credentials": {"operator_id": 1, "private_key_env": "***"},
    }
    assert redacted["providers"]["slotegrator"]["credentials"] == {
        "merchant_id": "demo",
        "merchant_key_env": "***",
    }
    assert redacted["providers"]["stripe"]["credentials"] == {
        "secret_key_env": "***",
        "webhook_secret_env": "***",
    }
    assert redacted["providers"]["adyen"]["credentials"] == {
        "api_key_env": "***",
        "merchant_account": "DemoCasino",
        "hmac_key_env": "***",
    }
    assert redacted["clients"] == [
        {"id": "web", "key_env": "***", "roles": ["client"]},
        {"id": "ops", "key_sha256": "***", "roles": ["admin"]},
    ]
    # Keys a later config section may bring are judged by their names too.
    assert redact(
        {"sink": {"url": "https://hooks.example/casino", "password": "hunter2"},
         "auth_token": "tok-123", "api_key": "k-1"}
    ) == {
        "sink": {"url": "https://hooks.example/casino", "password": "***"},
        "auth_token": "***",
        "api_key": "***",
    }
    assert redacted["routes"] == base_doc()["routes"]
    assert redacted["defaults"] == base_doc()["defaults"]


def test_redacted_config_hides_values_nested_under_a_secret_name():
    doc = {
        "sink": {
            "fallback_tokens": ["tok-one", "tok-two"],
            "secret": {"value": "s3cr3t"},
        }
    }
    text = repr(redact(doc))
    for leaked in ("tok-one", "tok-two", "s3cr3t"):
        assert leaked not in text


# ---- derived settings ----------------------------------------------------------------------


def test_studio_aliases_are_slugified(env: dict[str, str]):
    doc = base_doc()
    doc["studio_aliases"] = {
        "Pragmatic Play": "Pragmatic-Play Ltd",
        "Play'n GO": "Play N Go",
        "Évolution  Gaming!": "evolution",
        "Red Tiger (RT)": "Red Tiger",
    }
    assert parse(doc, env).studio_aliases == {
        "pragmatic-play": "pragmatic-play-ltd",
        "playn-go": "play-n-go",
        "evolution-gaming": "evolution",
        "red-tiger-rt": "red-tiger",
    }


def test_defaults_merge_into_providers(env: dict[str, str]):
    doc = base_doc()
    doc["providers"]["hub88"]["timeout_ms"] = 200
    doc["providers"]["hub88"]["breaker"] = {"failure_threshold": 2}
    doc["providers"]["stripe"]["health"] = {"path": "/health", "unhealthy_after": 1}
    providers = parse(doc, env).providers
    assert providers["hub88"].timeout_ms == 200
    assert providers["hub88"].breaker == BreakerSettings(
        failure_threshold=2, recovery_timeout_s=30, half_open_probes=1
    )
    assert providers["hub88"].health == HealthSettings(
        path=None,
        interval_s=0.2,
        timeout_ms=200,
        unhealthy_after=3,
        healthy_after=2,
        enabled=False,
    )
    assert providers["stripe"].timeout_ms == 500
    assert providers["stripe"].breaker == BreakerSettings(5, 30, 1)
    assert providers["stripe"].health == HealthSettings(
        path="/health",
        interval_s=0.2,
        timeout_ms=200,
        unhealthy_after=1,
        healthy_after=2,
        enabled=False,
    )
    for name in ("slotegrator", "adyen"):
        assert providers[name].timeout_ms == 500
        assert providers[name].breaker == BreakerSettings(5, 30, 1)
        assert providers[name].health == HealthSettings(None, 0.2, 200, 3, 2, False)


def test_without_defaults_the_built_in_values_apply(env: dict[str, str]):
    doc = base_doc()
    del doc["defaults"]
    for provider in parse(doc, env).providers.values():
        assert provider.timeout_ms == DEFAULT_TIMEOUT_MS == 2000
        assert provider.breaker == BreakerSettings()
        assert provider.health == HealthSettings()
        assert provider.max_connections == 100
        assert provider.rate_limit is None


def test_fingerprint_follows_settings_and_secrets(env: dict[str, str]):
    first = parse(base_doc(), env).providers
    again = parse(base_doc(), env).providers
    assert {n: p.fingerprint for n, p in first.items()} == {
        n: p.fingerprint for n, p in again.items()
    }
    rotated = parse(base_doc(), {**env, "STRIPE_SECRET_KEY": "sk_test_rotated"}).providers
    assert rotated["stripe"].fingerprint != first["stripe"].fingerprint
    assert rotated["adyen"].fingerprint == first["adyen"].fingerprint
    doc = copy.deepcopy(base_doc())
    doc["providers"]["adyen"]["timeout_ms"] = 900
    assert parse(doc, env).providers["adyen"].fingerprint != first["adyen"].fingerprint


# ---- the catalog and jurisdiction ---------------------------------------------------------


def test_catalog_settings_default_then_defaults_then_provider(env: dict[str, str]):
    providers = parse(base_doc(), env).providers
    assert providers["hub88"].catalog == CatalogSettings(300, 86400)
    doc = base_doc()
    doc["defaults"]["catalog"] = {"refresh_s": 120}
    doc["providers"]["slotegrator"]["catalog"] = {"refresh_s": 30, "max_stale_s": 600}
    providers = parse(doc, env).providers
    assert providers["hub88"].catalog == CatalogSettings(120, 86400)
    assert providers["slotegrator"].catalog == CatalogSettings(30, 600)


def test_catalog_settings_leave_the_fingerprint_alone(env: dict[str, str]):
    doc = base_doc()
    doc["providers"]["hub88"]["catalog"] = {"refresh_s": 5}
    doc["providers"]["hub88"]["blocked_countries"] = ["DE"]
    changed = parse(doc, env).providers["hub88"]
    assert changed.fingerprint == parse(base_doc(), env).providers["hub88"].fingerprint
    assert changed.blocked_countries == frozenset({"DE"})


def test_cache_on_a_games_route_sets_the_refresh_and_says_so(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["games.list"]["cache"] = {"ttl_s": 60, "stale_if_error_s": 600}
    doc["routes"]["games.get"]["cache"] = {"ttl_s": 30}
    doc["providers"]["slotegrator"]["catalog"] = {"refresh_s": 900}
    config = parse(doc, env)
    # The shortest ttl of the routes naming a provider; its own refresh_s wins.
    assert config.providers["hub88"].catalog.refresh_s == 30
    assert config.providers["slotegrator"].catalog.refresh_s == 900
    assert config.notes == (
        "routes.games.list.cache: games routes now read the catalog snapshot kept warm in the "
        "background, and no request fetches a catalog. ttl_s 60 sets catalog.refresh_s of "
        "hub88; the stale_* windows no longer apply (catalog.max_stale_s keeps a catalog while "
        "its refreshes fail).",
        "routes.games.get.cache: games routes now read the catalog snapshot kept warm in the "
        "background, and no request fetches a catalog. ttl_s 30 sets catalog.refresh_s of "
        "hub88; the stale_* windows no longer apply (catalog.max_stale_s keeps a catalog while "
        "its refreshes fail).",
    )
    assert parse(base_doc(), env).notes == ()


def test_ttl_zero_on_a_games_route_keeps_the_refresh(env: dict[str, str]):
    doc = base_doc()
    doc["routes"]["games.launch"]["cache"] = {"ttl_s": 0}
    config = parse(doc, env)
    assert config.providers["hub88"].catalog.refresh_s == 300
    assert "ttl_s 0 no longer means a fetch per request; hub88, slotegrator keep" in (
        config.notes[0]
    )


def test_catalog_problems_by_key_path(env: dict[str, str]):
    doc = base_doc()
    doc["providers"]["hub88"]["catalog"] = {"refresh_s": 600, "max_stale_s": 60}
    doc["providers"]["stripe"]["blocked_countries"] = ["DE"]
    doc["providers"]["adyen"]["catalog"] = {"refresh_s": 60}
    assert problems_of(doc, env) == [
        "providers.hub88.catalog: max_stale_s (60) must be at least refresh_s (600), "
        "or a catalog expires before its next refresh",
        "providers.stripe.blocked_countries: only a game aggregator has a catalog",
        "providers.adyen.catalog: only a game aggregator has a catalog",
    ]
    doc = base_doc()
    doc["defaults"]["catalog"] = {"max_stale_s": 10}
    assert problems_of(doc, env) == [
        "defaults.catalog: max_stale_s (10) must be at least refresh_s (300), "
        "or a catalog expires before its next refresh"
    ]


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("providers", "hub88", "blocked_countries"), ["de"]),
        (("providers", "hub88", "blocked_countries"), ["DEU"]),
        (("providers", "hub88", "blocked_countries"), ["DE", "DE"]),
        (("providers", "hub88", "catalog"), {"refresh_s": 0}),
        (("providers", "hub88", "catalog"), {"refresh": 10}),
        (("studios",), {"NetEnt": {"blocked_countries": ["us"]}}),
        (("studios",), {"NetEnt": {}}),
    ],
)
def test_jurisdiction_and_catalog_values_the_schema_refuses(
    env: dict[str, str], where: tuple[str, ...], value: Any
):
    doc = base_doc()
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    problems = problems_of(doc, env)
    assert len(problems) == 1 and problems[0].startswith(".".join(where)), problems


def test_studio_blocks_are_keyed_by_the_canonical_slug(env: dict[str, str]):
    doc = base_doc()
    doc["studios"] = {
        "Pragmatic Play": {"blocked_countries": ["DE"]},
        "PragmaticPlay": {"blocked_countries": ["NL"]},  # an alias of the same studio
        "NetEnt": {"blocked_countries": []},
    }
    assert parse(doc, env).studio_blocked_countries == {
        "pragmatic-play": frozenset({"DE", "NL"}),
        "netent": frozenset(),
    }


def test_the_tracing_block_of_the_config(env: dict[str, str]) -> None:
    doc = base_doc()
    assert parse(doc, env).tracing is None
    doc["tracing"] = {"otlp_endpoint": "http://otel-collector:4318"}
    assert parse(doc, env).tracing == TracingSettings("http://otel-collector:4318/v1/traces", 1.0)
    doc["tracing"] = {"otlp_endpoint": "https://otel.example/otlp/v1/traces", "sample_ratio": 0.25}
    assert parse(doc, env).tracing == TracingSettings("https://otel.example/otlp/v1/traces", 0.25)
    doc["tracing"] = {"otlp_endpoint": "https://otel.example", "sample_ratio": 2}
    assert [p.split(":")[0] for p in problems_of(doc, env)] == ["tracing.sample_ratio"]
    doc["tracing"] = {"otlp_endpoint": "https://user:hunter22@otel.example"}
    problems = problems_of(doc, env)
    assert any(
        p.startswith("tracing.otlp_endpoint") and "OTEL_EXPORTER_OTLP_HEADERS" in p
        for p in problems
    ), problems
    assert not any("hunter22" in p for p in problems)
    doc["tracing"] = {"otlp_endpoint": "grpc://otel:4317"}
    assert any(p.startswith("tracing.otlp_endpoint") for p in problems_of(doc, env))
