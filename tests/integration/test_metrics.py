"""/metrics parses with the Prometheus text parser and every metric moves as traffic does."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client.parser import text_string_to_metric_families

from simulators.faults import Faults
from simulators.stack import Stack
from tests.conftest import GatewayUnderTest, MakeGateway


async def scrape(gw: GatewayUnderTest) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await gw.client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_every_metric_moves(make_gateway: MakeGateway, stack: Stack):
    # Slow enough that the first listing has to wait for the catalog: a miss.
    stack.servers["slotegrator"].faults = Faults(latency_ms=100)
    gw = await make_gateway(
        {
            "clients": [{"id": "web", "key_env": "WEB_KEY"}],
            "providers": {
                "hub88": {
                    "timeout_ms": 200,
                    "breaker": {"failure_threshold": 2, "recovery_timeout_s": 60},
                    "health": {"enabled": True, "interval_s": 0.05, "unhealthy_after": 3},
                }
            },
            "routes": {
                "games.list": {"cache": {"ttl_s": 60}},
                "games.launch": {"cache": {"ttl_s": 60}},
                "games.get": {"rate_limit": {"limit": "1/minute", "per": "route"}},
            },
        },
        env={"WEB_KEY": "k" * 20},
    )
    auth = {"X-API-Key": "k" * 20}
    before = await scrape(gw)
    assert value(before, "gateway_config_info", hash=gw.gateway.runtime.config.hash) == 1
    assert value(before, "gateway_config_last_reload_success_timestamp_seconds") > 0

    await gw.client.get("/v1/games", headers=auth)  # miss: waits for the first fetch
    await gw.client.get("/v1/games", headers=auth)  # hit
    assert (await gw.client.get("/v1/games/netent:starburst", headers=auth)).status == 200
    assert (await gw.client.get("/v1/games/netent:starburst", headers=auth)).status == 429
    launch = "/v1/games/netent:starburst/launch"
    await gw.client.post(launch, json={"mode": "demo"}, headers=auth)
    gw.stack.servers["hub88"].faults = Faults(mode="error")
    for _ in range(2):  # two failures open Hub88's launch breaker; each fails over
        resp = await gw.client.post(launch, json={"mode": "demo"}, headers=auth)
        assert (await resp.json())["provider"] == "slotegrator"
    await asyncio.sleep(0.4)  # the health checker sees the fault three times
    await gw.client.post(
        "/v1/payments",
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "type": "deposit",
            "amount": 500,
            "currency": "EUR",
            "player_id": "p",
            "method": {"type": "card"},
        },
    )
    after = await scrape(gw)

    assert (
        value(after, "gateway_requests_total", route="games.list", status="200", client="web") == 2
    )
    assert (
        value(after, "gateway_requests_total", route="games.get", status="429", client="web") == 1
    )
    assert value(after, "gateway_request_duration_seconds_count", route="games.list") == 2
    assert (
        value(
            after,
            "gateway_upstream_requests_total",
            provider="slotegrator",
            operation="catalog",
            outcome="ok",
        )
        == 3  # one catalog of three pages
    )
    assert (
        value(
            after,
            "gateway_upstream_requests_total",
            provider="hub88",
            operation="games.launch",
            outcome="error",
        )
        == 2
    )
    assert (
        value(
            after,
            "gateway_upstream_duration_seconds_count",
            provider="stripe",
            operation="payments.create",
            outcome="ok",
        )
        == 1
    )
    assert value(after, "gateway_breaker_state", provider="hub88", operation="launch") == 2
    assert (
        value(
            after,
            "gateway_breaker_transitions_total",
            provider="hub88",
            operation="launch",
            from_state="closed",
            to_state="open",
        )
        == 1
    )
    assert value(after, "gateway_provider_healthy", provider="hub88") == 0
    assert value(after, "gateway_provider_healthy", provider="slotegrator") == 1
    assert value(after, "gateway_cache_requests_total", route="games.list", result="miss") == 1
    assert value(after, "gateway_cache_requests_total", route="games.list", result="hit") == 1
    assert value(after, "gateway_rate_limited_total", route="games.get", scope="route") == 1
    assert (
        value(
            after,
            "gateway_failovers_total",
            route="games.launch",
            from_provider="hub88",
            to_provider="slotegrator",
        )
        == 2
    )
