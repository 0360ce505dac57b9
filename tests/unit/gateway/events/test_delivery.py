"""Signing of event deliveries, the retry policy and the events settings.

The delivery worker and the outbox are `test_worker.py`; the stream buffer `test_stream_log.py`.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway.config.errors import ConfigError
from gateway.config.events import BackendSettings, RetryPolicy, StreamSettings, parse_settings
from gateway.events.delivery import equal_jitter, sign, verify_signature

# ---- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(backoff_initial_s=0.1, backoff_max_s=1.0)
    assert [policy.delay(n) for n in range(1, 8)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    )
    assert policy.delay(10_000) == 1.0  # no overflow on very long outages


def test_jitter_stays_between_half_and_the_full_delay():
    values = [equal_jitter(2.0) for _ in range(200)]
    assert all(1.0 <= v <= 2.0 for v in values)
    assert len(set(values)) > 1


# ---- signing ---------------------------------------------------------------------------


def test_signature_verifies_and_binds_body_secret_and_time():
    body = b'{"event_id":"evt_1"}'
    now = int(time.time())
    header = sign("s3cret", now, body)
    assert header.startswith(f"t={now},v1=")
    assert verify_signature("s3cret", header, body, now)
    assert not verify_signature("s3cret", header, body + b" ", now)
    assert not verify_signature("other", header, body, now)
    assert not verify_signature("s3cret", header, body, now + 301)
    assert not verify_signature("s3cret", "v1=" + header.partition("v1=")[2], body, now)
    assert not verify_signature("s3cret", "", body, now)


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", 1700000000, body) == f"t=1700000000,v1={expected}"


# ---- settings ------------------------------------------------------------------------------


def test_defaults_without_an_events_block():
    settings = parse_settings({}, {})
    assert settings.backend is None
    assert settings.retry == RetryPolicy()
    assert settings.stream == StreamSettings()
    assert settings.retention_days == 7


def test_backend_settings_read_the_secret_from_the_environment():
    settings = parse_settings(
        {"webhook_url": "https://backend.example/ev", "secret_env": "EV", "timeout_ms": 2500},
        {"EV": "the-secret-value"},
    )
    assert settings.backend == BackendSettings(
        "https://backend.example/ev", "the-secret-value", 2.5
    )
    assert "the-secret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "env", "problem"),
    [
        ({"webhook_url": "https://b.example/e"}, {}, "events: webhook_url and secret_env go"),
        ({"secret_env": "EV"}, {"EV": "x"}, "events: webhook_url and secret_env go"),
        (
            {"webhook_url": "https://b.example/e", "secret_env": "EV"},
            {},
            "events.secret_env: environment variable 'EV' is not set",
        ),
        ({"max_attempts": -1}, {}, "events.max_attempts: must be an integer from 0"),
        ({"max_queue": True}, {}, "events.max_queue: must be an integer"),
        ({"backoff_initial_s": float("nan")}, {}, "events.backoff_initial_s: must be a number"),
        ({"stream": []}, {}, "events.stream: must be a mapping"),
        ({"stream": {"buffer": 5}}, {}, "events.stream.buffer: unknown setting"),
        ({"retention_days": 0}, {}, "events.retention_days: must be an integer from 1"),
    ],
)
def test_bad_settings_are_named_by_key_path(raw: dict[str, Any], env: dict[str, str], problem: str):
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, env)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


