"""One parse names every problem: the schema's and the checks of meaning, side by side.

The checks of meaning run on the parts of the file the schema accepted, so a broken part
never crashes them and never hides a problem elsewhere.
"""

from __future__ import annotations

import copy
import functools
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from adapters.hub88 import adapter as hub88_adapter
from gateway.config.errors import ConfigError
from gateway.config.load import parse_config
from gateway.config.model import Config
from simulators.hub88 import generate_operator_keypair


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    private_pem, _ = generate_operator_keypair()
    return {
        "HUB88_PRIVATE_KEY": private_pem,
        "SLOTEGRATOR_KEY": secrets.token_hex(20),
        "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_urlsafe(24),
        "ADYEN_API_KEY": "AQE" + secrets.token_urlsafe(32),
        "WEB_API_KEY": "web_" + secrets.token_urlsafe(24),
        "EVENTS_SECRET": secrets.token_urlsafe(32),
        "PLAYER_SECRET": secrets.token_urlsafe(32),
        "PAYMENT_ID_SECRET": secrets.token_urlsafe(32),
    }


def full_doc() -> dict[str, Any]:
    """A valid file using every section the schema knows."""
    return {
        "version": 1,
        "listen": {"host": "127.0.0.1", "port": 8080},
        "max_body_bytes": 65536,
        "log_level": "info",
        "studio_aliases": {"pragmaticplay": "pragmatic-play"},
        "payment_id_secret_env": "PAYMENT_ID_SECRET",
        "defaults": {
            "timeout_ms": 500,
            "payment_retries": 1,
            "breaker": {"failure_threshold": 5, "recovery_timeout_s": 30},
            "health": {"path": None, "interval_s": 10, "timeout_ms": 200},
        },
        "providers": {
            "hub88": {
                "adapter": "hub88",
                "base_url": "http://127.0.0.1:9101",
                "rate_limit": "100/second",
                "credentials": {"operator_id": 1, "private_key_env": "HUB88_PRIVATE_KEY"},
            },
            "slotegrator": {
                "adapter": "slotegrator",
                "base_url": "http://127.0.0.1:9102",
                "credentials": {"merchant_id": "demo", "merchant_key_env": "SLOTEGRATOR_KEY"},
            },
            "stripe": {
                "adapter": "stripe",
                "base_url": "http://127.0.0.1:9103",
                "credentials": {"secret_key_env": "STRIPE_SECRET_KEY"},
            },
            "adyen": {
                "adapter": "adyen",
                "base_url": "http://127.0.0.1:9104",
                "credentials": {"api_key_env": "ADYEN_API_KEY", "merchant_account": "Demo"},
            },
        },
        "clients": [
            {"id": "web", "key_env": "WEB_API_KEY", "rate_limit": "50/second"},
            {"id": "ops", "key_sha256": "ab" * 32, "roles": ["viewer"]},
        ],
        "cache": {"max_entries": 100, "max_bytes": 1 << 20},
        "cors": {"allow_origins": ["https://casino.example"], "allow_methods": ["GET"]},
        "storage": {"backend": "memory"},
        "ledger": {"backend": "sqlite", "path": "data/ledger.db", "retention_days": 30},
        "player_tokens": {
            "algorithm": "HS256",
            "secret_env": "PLAYER_SECRET",
            "audience": "casino-gateway",
        },
        "events": {
            "webhook_url": "https://backend.example/events",
            "secret_env": "EVENTS_SECRET",
            "stream": {"heartbeat_s": 15},
        },
        "routes": {
            "games.list": {
                "providers": ["hub88", "slotegrator"],
                "cache": {"ttl_s": 60},
                "rate_limit": {"limit": "20/second", "per": "client"},
            },
            "games.get": {"providers": ["hub88", "slotegrator"]},
            "games.launch": {"providers": ["hub88", "slotegrator"]},
            "payments.create": {"providers": ["stripe", "adyen"]},
            "payments.get": {"providers": ["stripe", "adyen"]},
        },
    }


def problems_of(doc: dict[str, Any], env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(doc).encode(), env=env)
    return info.value.problems


def test_the_full_document_is_valid(env: dict[str, str]):
    assert isinstance(parse_config(yaml.safe_dump(full_doc()).encode(), env=env), Config)


def test_schema_and_semantic_problems_are_named_together(env: dict[str, str]):
    doc = full_doc()
    doc["providers"]["adyen"]["timeout_ms"] = "fast"  # schema
    doc["routes"]["games.get"]["providers"] = ["hub88", "hub99"]  # meaning
    doc["listen"]["port"] = 70000  # schema
    doc["providers"]["slotegrator"]["base_url"] = "ftp://127.0.0.1:9102"  # meaning
    assert problems_of(doc, {k: v for k, v in env.items() if k != "STRIPE_SECRET_KEY"}) == [
        "listen.port: 70000 is greater than the maximum of 65535",
        "providers.adyen.timeout_ms: 'fast' is not of type 'integer'",
        "providers.slotegrator.base_url: 'ftp://127.0.0.1:9102' is not an http(s) URL",
        "providers.stripe.credentials.secret_key_env: "
        "environment variable 'STRIPE_SECRET_KEY' is not set",
        "routes.games.get.providers[1]: unknown provider 'hub99'",
    ]


def test_a_provider_the_schema_refuses_is_not_also_unknown_to_its_routes(env: dict[str, str]):
    doc = full_doc()
    del doc["providers"]["hub88"]["base_url"]
    assert problems_of(doc, env) == ["providers.hub88: 'base_url' is a required property"]


def test_a_refused_setting_with_a_default_hides_nothing_else_of_its_provider(
    env: dict[str, str],
):
    doc = full_doc()
    doc["providers"]["stripe"]["breaker"] = {"failure_threshold": 0}
    doc["routes"]["games.list"]["cache"] = {"ttl_s": -1}
    doc["routes"]["games.list"]["providers"] = ["hub88", "hub99"]
    assert problems_of(doc, {k: v for k, v in env.items() if k != "STRIPE_SECRET_KEY"}) == [
        "providers.stripe.breaker.failure_threshold: 0 is less than the minimum of 1",
        "routes.games.list.cache.ttl_s: -1 is less than the minimum of 0",
        "providers.stripe.credentials.secret_key_env: "
        "environment variable 'STRIPE_SECRET_KEY' is not set",
        "routes.games.list.providers[1]: unknown provider 'hub99'",
    ]


def test_a_provider_name_the_schema_refuses_is_checked_no_further(env: dict[str, str]):
    doc = full_doc()
    doc["providers"]["Hub_88"] = doc["providers"].pop("hub88")
    doc["routes"]["games.list"]["providers"] = ["Hub_88", "slotegrator"]
    doc["routes"]["games.get"]["providers"] = ["hub88", "slotegrator"]
    assert problems_of(doc, env) == [
        "providers: 'Hub_88' does not match '^[a-z][a-z0-9_-]{0,63}$'",
        "routes.games.get.providers[0]: unknown provider 'hub88'",
        "routes.games.launch.providers[0]: unknown provider 'hub88'",
    ]


def test_an_unknown_route_beside_a_semantic_problem(env: dict[str, str]):
    doc = full_doc()
    doc["routes"]["payments.refund"] = {"providers": ["stripe"]}
    doc["routes"]["payments.get"]["providers"] = ["stripe", "hub88"]
    assert problems_of(doc, env) == [
        "routes: Additional properties are not allowed ('payments.refund' was unexpected)",
        "routes.payments.get.providers[1]: provider 'hub88' uses the games adapter 'hub88', "
        "which cannot serve payments.get",
    ]


def test_missing_sections_beside_a_semantic_problem(env: dict[str, str]):
    doc = full_doc()
    del doc["version"], doc["routes"]
    doc["clients"][0]["key_env"] = "NOT_SET_HERE"
    assert problems_of(doc, env) == [
        "(top level): 'version' is a required property",
        "(top level): 'routes' is a required property",
        "clients[0].key_env: environment variable 'NOT_SET_HERE' is not set",
    ]


def test_a_refused_client_beside_a_semantic_problem_in_another(env: dict[str, str]):
    doc = full_doc()
    doc["clients"][1]["roles"] = ["root"]
    assert problems_of(doc, {k: v for k, v in env.items() if k != "WEB_API_KEY"}) == [
        "clients[1].roles[0]: 'root' is not one of ['client', 'viewer', 'operator', 'admin']",
        "clients[0].key_env: environment variable 'WEB_API_KEY' is not set",
    ]


def leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in a document, containers included."""
    if path:
        yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, (*path, i))


def replaced(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


WRONG_VALUES = [None, "x", -1, True, [], {}]


def test_any_value_anywhere_is_a_config_or_named_problems_never_a_crash(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    # Loading the RSA key is most of a parse's time, and the same key every time here.
    load_key = functools.cache(hub88_adapter.serialization.load_pem_private_key)
    monkeypatch.setattr(hub88_adapter.serialization, "load_pem_private_key", load_key)
    doc = full_doc()
    tried = 0
    for path in leaves(doc):
        for value in WRONG_VALUES:
            try:  # JSON is YAML, and quicker to read
                parse_config(json.dumps(replaced(doc, path, value)).encode(), env=env)
            except ConfigError as exc:
                assert exc.problems, path
            tried += 1
    assert tried > 500
