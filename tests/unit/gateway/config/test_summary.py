"""What `casino-gateway check` prints of a valid config's deliveries: where, never with the
credentials a URL may carry."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.config.summary import delivery_summary
from simulators.stack import DemoSecrets
from tests.conftest import build_config, merge

SHIPPED = Path(__file__).resolve().parents[4] / "config" / "providers.yaml"


def test_events_wallet_and_tracing_each_get_a_line_without_credentials(
    demo_secrets: DemoSecrets,
) -> None:
    doc = merge(
        yaml.safe_load(SHIPPED.read_text()),
        {
            "events": {
                "webhook_url": "https://hook:s3cret@backend.example:8443/events?token=t0ken",
                "secret_env": "WALLET_SIGNING_SECRET",
                "retention_days": 3,
            },
            "wallet": {
                "backend_url": "http://user:pw@127.0.0.1:9200/wallet",
                "secret_env": "WALLET_SIGNING_SECRET",
                "timeout_ms": 1500,
            },
            "tracing": {"otlp_endpoint": "http://[::1]:4318", "sample_ratio": 0.25},
        },
    )
    lines = delivery_summary(build_config(doc, demo_secrets))
    assert lines == [
        "events: delivered to https://backend.example:8443/events, kept 3 days",
        "wallet: backend http://127.0.0.1:9200/wallet, timeout 1500 ms",
        "tracing: spans to http://[::1]:4318/v1/traces, 0.25 of the traces the gateway starts",
    ]


def test_a_config_that_sends_nothing_anywhere_gets_no_line(demo_secrets: DemoSecrets) -> None:
    assert delivery_summary(build_config(yaml.safe_load(SHIPPED.read_text()), demo_secrets)) == []
