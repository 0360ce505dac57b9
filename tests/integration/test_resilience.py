"""Rate limits, caching, breakers, health checks and failover, over real sockets."""

from __future__ import annotations

import asyncio
import time
import uuid

from adapters.base import UpstreamRequest
from gateway.upstream.calls import AttemptFailed, call_provider
from simulators.faults import Faults
from simulators.stack import Stack
from tests.conftest import MakeGateway

HUB88_LIST = "/operator/generic/v2/game/list"
HUB88_LAUNCH = "/operator/generic/v2/game/url"
SLOT_INIT = "/games/init"
STRIPE_CREATE = "/v1/payment_intents"
ADYEN_CREATE = "/v71/payments"
WEB_KEY = "web-key-0123456789abcdef"
CLIENTS = {"clients": [{"id": "web", "key_env": "WEB_KEY", "roles": ["client"]}]}
ENV = {"WEB_KEY": WEB_KEY}
AUTH = {"X-API-Key": WEB_KEY}
DEMO_LAUNCH = {"mode": "demo", "platform": "desktop"}
DEPOSIT = {
    "type": "deposit",
    "amount": 1000,
    "currency": "EUR",
    "player_id": "p-1",
    "method": {"type": "card"},
    "return_url": "https://casino.example/back",
}
CACHED = {"cache": {"ttl_s": 60}}


async def test_rate_limit_counts_down_then_refuses(make_gateway: MakeGateway):
    gw = await make_gateway(
        {
            **CLIENTS,
            "routes": {"games.get": {"rate_limit": {"limit": "3/minute", "per": "client"}}},
        },
        env=ENV,
    )
    remaining = []
    for _ in range(3):
        resp = await gw.client.get("/v1/games/netent:starburst", headers=AUTH)
        assert resp.status == 200
        assert resp.headers["RateLimit-Limit"] == "3"
        assert int(resp.headers["RateLimit-Reset"]) >= 1
        remaining.append(resp.headers["RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    resp = await gw.client.get("/v1/games/netent:starburst", headers=AUTH)
    assert resp.status == 429
    assert resp.content_type == "application/problem+json"
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.headers["RateLimit-Remaining"] == "0"
    assert (await resp.json())["code"] == "rate_limited"
    # Other routes have their own budget.
    assert (await gw.client.get("/v1/games", headers=AUTH)).status == 200


async def test_unknown_or_missing_api_key_is_401(make_gateway: MakeGateway):
    gw = await make_gateway(CLIENTS, env=ENV)
    for headers in ({}, {"X-API-Key": "nope"}):
        resp = await gw.client.get("/v1/games", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["code"] == "unauthorized"
    assert (await gw.client.get("/healthz")).status == 200


async def test_client_wide_limit_and_per_ip_route_limit(make_gateway: MakeGateway):
    gw = await make_gateway(
        {
            "clients": [{"id": "web", "key_env": "WEB_KEY", "rate_limit": "2/minute"}],
            "routes": {"games.list": {"rate_limit": {"limit": "10/minute", "per": "ip"}}},
        },
        env=ENV,
    )
    statuses = [(await gw.client.get("/v1/games", headers=AUTH)).status for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_failed_refreshes_keep_serving_the_last_catalogs(make_gateway: MakeGateway):
    gw = await make_gateway({"defaults": {"catalog": {"refresh_s": 0.2}}})
    await gw.catalog_ready()
    assert (await gw.client.get("/v1/games")).headers["X-Cache"] == "HIT"
    await gw.stack.servers["hub88"].stop_listening()
    hub88 = gw.catalog.trackers["hub88"]
    deadline = time.monotonic() + 5
    while hub88.status == "ok" and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert hub88.status == "error"
    resp = await gw.client.get("/v1/games", params={"page_size": "500"})
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "STALE"
    body = await resp.json()
    assert body["meta"]["total"] == 34  # Hub88's games from its last catalog
    assert body["meta"]["partial"] is False
    gw.stack.servers["slotegrator"].faults = Faults(mode="error")
    slot = gw.catalog.trackers["slotegrator"]
    deadline = time.monotonic() + 5
    while slot.status == "ok" and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    resp = await gw.client.get("/v1/games", params={"page_size": "500"})
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "STALE"
    assert (await resp.json())["meta"]["total"] == 34


async def test_requests_are_served_while_a_refresh_hangs(make_gateway: MakeGateway):
    gw = await make_gateway({"providers": {"hub88": {"timeout_ms": 2000}}})
    await gw.catalog_ready()
    gw.stack.servers["hub88"].faults = Faults(mode="hang")
    refresh = asyncio.create_task(gw.catalog.refresh(["hub88"]))
    hub88 = gw.catalog.trackers["hub88"]
    while not hub88.refreshing:
        await asyncio.sleep(0.005)
    for path in ("/v1/games", "/v1/games/spribe:aviator"):
        resp = await gw.client.get(path)
        assert resp.status == 200 and resp.headers["X-Cache"] == "HIT"
    resp = await gw.client.post("/v1/games/relax-gaming:money-train-2/launch", json=DEMO_LAUNCH)
    assert resp.status == 200
    assert hub88.refreshing  # every answer came while the refresh was still hanging
    gw.stack.servers["hub88"].faults = Faults()
    assert await refresh == {"hub88": "timeout"}


async def test_fifty_concurrent_first_requests_make_one_fetch_per_provider(
    make_gateway: MakeGateway, stack: Stack
):
    stack.servers["hub88"].faults = Faults(latency_ms=100)
    gw = await make_gateway()
    responses = await asyncio.gather(*(gw.client.get("/v1/games") for _ in range(50)))
    assert [r.status for r in responses] == [200] * 50
    assert {r.headers["X-Cache"] for r in responses} == {"MISS"}
    assert gw.calls("hub88", HUB88_LIST) == 1
    assert gw.calls("slotegrator", "/games") == 3  # one catalog fetch: its three pages


async def test_breaker_opens_skips_fast_probes_once_and_recovers(make_gateway: MakeGateway):
    gw = await make_gateway(
        {
            "providers": {
                "hub88": {
                    "timeout_ms": 300,
                    "breaker": {"failure_threshold": 3, "recovery_timeout_s": 0.5},
                }
            },
            "routes": {"games.launch": CACHED},
        }
    )
    launch = "/v1/games/netent:starburst/launch"
    assert (await (await gw.client.post(launch, json=DEMO_LAUNCH)).json())["provider"] == "hub88"
    hub88 = gw.stack.servers["hub88"]
    hub88.faults = Faults(mode="hang")
    for _ in range(3):
        resp = await gw.client.post(launch, json=DEMO_LAUNCH)
        assert (await resp.json())["provider"] == "slotegrator"
    assert hub88.stats[HUB88_LAUNCH] == 4
    state = gw.gateway.runtime.providers["hub88"]
    assert state.breaker("games.launch").state == "open"
    # Open: Hub88 is skipped without a network call or its 300 ms timeout.
    for _ in range(5):
        resp = await gw.client.post(launch, json=DEMO_LAUNCH)
        assert (await resp.json())["provider"] == "slotegrator"
    assert hub88.stats[HUB88_LAUNCH] == 4
    skips = []
    for _ in range(20):
        started = time.perf_counter()
        try:
            await call_provider(
                gw.gateway, state, "games.launch", UpstreamRequest("POST", "/x"), lambda r: r
            )
        except AttemptFailed as failed:
            assert failed.outcome == "breaker_open"
        skips.append(time.perf_counter() - started)
    assert max(skips) < 0.010
    # After the recovery timeout exactly one probe reaches Hub88, which has recovered.
    hub88.faults = Faults(latency_ms=100)
    await asyncio.sleep(0.55)
    responses = await asyncio.gather(*(gw.client.post(launch, json=DEMO_LAUNCH) for _ in range(5)))
    providers = sorted([(await r.json())["provider"] for r in responses])
    assert providers == ["hub88", "slotegrator", "slotegrator", "slotegrator", "slotegrator"]
    assert hub88.stats[HUB88_LAUNCH] == 5
    assert state.breaker("games.launch").state == "closed"
    resp = await gw.client.post(launch, json=DEMO_LAUNCH)
    assert (await resp.json())["provider"] == "hub88"


async def test_provider_429_is_honoured_and_payment_fails_over(gw):
    stripe = gw.stack.servers["stripe"]
    stripe.faults = Faults(mode="rate_limited", retry_after_s=30)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    resp = await gw.client.post("/v1/payments", json=DEPOSIT, headers=headers)
    assert resp.status == 201
    payment = await resp.json()
    assert payment["provider"] == "adyen"
    assert [(a["provider"], a["outcome"]) for a in payment["attempts"]] == [
        ("stripe", "rejected"),
        ("adyen", "ok"),
    ]
    # Stripe asked for 30 s: the next payment goes straight to Adyen without knocking.
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    resp = await gw.client.post("/v1/payments", json=DEPOSIT, headers=headers)
    assert [a["provider"] for a in (await resp.json())["attempts"]] == ["adyen"]
    assert stripe.stats[STRIPE_CREATE] == 1
    # The cooldown is an internal: a client key sees health only.
    assert gw.gateway.cooldowns.blocked_for("stripe") > 25
    status = await (await gw.client.get("/v1/providers/status")).json()
    assert status["providers"]["stripe"] == {"name": "stripe", "kind": "payments",
                                              "healthy": True}


async def test_active_health_checks_take_a_provider_out_and_back(make_gateway: MakeGateway):
    health = {"enabled": True, "interval_s": 0.1, "unhealthy_after": 2, "healthy_after": 2}
    gw = await make_gateway(
        {"providers": {"hub88": {"health": health}}, "routes": {"games.launch": CACHED}}
    )
    launch = "/v1/games/netent:starburst/launch"
    assert (await (await gw.client.post(launch, json=DEMO_LAUNCH)).json())["provider"] == "hub88"
    hub88 = gw.stack.servers["hub88"]
    hub88.faults = Faults(mode="error")
    state = gw.gateway.runtime.providers["hub88"]
    for _ in range(50):
        if not state.health.healthy:
            break
        await asyncio.sleep(0.05)
    assert not state.health.healthy
    before = hub88.stats[HUB88_LAUNCH]
    for _ in range(3):
        assert (await (await gw.client.post(launch, json=DEMO_LAUNCH)).json())["provider"] == (
            "slotegrator"
        )
    assert hub88.stats[HUB88_LAUNCH] == before  # no live traffic while unhealthy
    status = await (await gw.client.get("/v1/providers/status")).json()
    assert status["providers"]["hub88"]["healthy"] is False
    hub88.faults = Faults()
    for _ in range(50):
        if state.health.healthy:
            break
        await asyncio.sleep(0.05)
    assert state.health.healthy
    assert (await (await gw.client.post(launch, json=DEMO_LAUNCH)).json())["provider"] == "hub88"


async def test_readyz_turns_503_when_a_route_has_no_usable_provider(gw):
    assert (await gw.client.get("/readyz")).status == 200
    for name in ("stripe", "adyen"):
        gw.gateway.runtime.providers[name].drained = True
    resp = await gw.client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["routes"]["payments.create"]["usable"] == []
    assert body["routes"]["payments.create"]["skipped"] == {"stripe": "drained", "adyen": "drained"}
    assert body["routes"]["games.list"]["usable"] == ["hub88", "slotegrator"]


async def test_slow_provider_does_not_slow_another_route(make_gateway: MakeGateway):
    gw = await make_gateway({"providers": {"hub88": {"timeout_ms": 400}}})
    gw.stack.servers["hub88"].faults = Faults(latency_ms=800)  # twice its timeout
    stop = asyncio.Event()

    async def hammer_games() -> int:
        n = 0
        while not stop.is_set():
            await gw.client.get("/v1/games")
            n += 1
        return n

    background = [asyncio.create_task(hammer_games()) for _ in range(10)]
    await asyncio.sleep(0.1)
    latencies = []
    for _ in range(40):
        started = time.perf_counter()
        resp = await gw.client.post(
            "/v1/payments", json=DEPOSIT, headers={"Idempotency-Key": uuid.uuid4().hex}
        )
        assert resp.status == 201
        latencies.append(time.perf_counter() - started)
    stop.set()
    assert sum(await asyncio.gather(*background)) >= 10
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    # Payments never wait on the slow aggregator: far below its 400 ms timeout.
    assert p99 < 0.2
