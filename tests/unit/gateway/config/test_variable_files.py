"""A variable NAME that is not set may be given as NAME_FILE, the path of a file holding it
(Docker's convention), for values no one-line .env entry can hold, like a PEM key."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.errors import ConfigError
from gateway.config.load import parse_config


def doc() -> dict[str, Any]:
    return {
        "version": 1,
        "providers": {
            "stripe": {
                "adapter": "stripe",
                "base_url": "http://127.0.0.1:9103",
                "credentials": {"secret_key_env": "STRIPE_SECRET_KEY"},
            }
        },
        "routes": {"payments.create": {"providers": ["stripe"]}},
        "events": {"webhook_url": "https://backend.example/e", "secret_env": "EVENTS_SECRET"},
    }


def parse(env: dict[str, str]) -> Any:
    return parse_config(yaml.safe_dump(doc()).encode(), env=env)


def test_the_file_named_by_name_file_gives_the_value(tmp_path: Path):
    key, events = "sk_test_" + secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    (tmp_path / "stripe").write_text(key + "\n")
    (tmp_path / "events").write_text(events)
    config = parse(
        {
            "STRIPE_SECRET_KEY_FILE": str(tmp_path / "stripe"),
            "EVENTS_SECRET_FILE": str(tmp_path / "events"),
        }
    )
    assert key in config.secret_values and events in config.secret_values
    assert config.event_settings is not None
    assert config.event_settings.backend is not None
    assert config.event_settings.backend.secret == events


def test_the_variable_itself_wins_over_its_file(tmp_path: Path):
    (tmp_path / "stripe").write_text("sk_test_from_the_file")
    config = parse(
        {
            "STRIPE_SECRET_KEY": "sk_test_from_the_variable",
            "STRIPE_SECRET_KEY_FILE": str(tmp_path / "stripe"),
            "EVENTS_SECRET": "e" * 32,
        }
    )
    assert "sk_test_from_the_variable" in config.secret_values
    assert "sk_test_from_the_file" not in config.secret_values


def test_an_unreadable_file_is_named(tmp_path: Path):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as info:
        parse({"STRIPE_SECRET_KEY_FILE": str(missing), "EVENTS_SECRET_FILE": str(missing)})
    assert info.value.problems == [
        f"providers.stripe.credentials.secret_key_env: cannot read secret file '{missing}': "
        "No such file or directory",
        f"events.secret_env: cannot read secret file '{missing}': No such file or directory",
    ]
