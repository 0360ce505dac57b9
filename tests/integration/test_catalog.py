"""The catalog kept warm, over real sockets: no request fetches a catalog once one exists,
skipped aggregators' games stay known, jurisdiction, the admin routes and the metrics."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from simulators.faults import Faults
from simulators.stack import Stack
from tests.conftest import GatewayUnderTest, MakeGateway, base_config, build_config, merge

HUB88_LIST = "/operator/generic/v2/game/list"
HUB88_LAUNCH = "/operator/generic/v2/game/url"
SLOT_LIST = "/games"
SLOT_INIT = "/games/init"
SHARED = "pragmatic-play:sweet-bonanza"  # sold by both aggregators
HUB88_ONLY = "spribe:aviator"
SLOT_ONLY = "relax-gaming:money-train-2"
REAL = {
    "player_id": "player-42",
    "currency": "EUR",
    "mode": "real",
    "session_token": "sess-1",
    "return_url": "https://casino.example/lobby",
}


def catalog_calls(gw: GatewayUnderTest) -> tuple[int, int]:
    return gw.calls("hub88", HUB88_LIST), gw.calls("slotegrator", SLOT_LIST)


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    assert condition()


async def test_reads_and_launches_fetch_no_catalog_once_the_snapshot_exists(
    gw: GatewayUnderTest,
):
    # The default test config: no `cache:` on any games route.
    assert all(gw.gateway.runtime.config.routes[op].cache is None for op in ("games.get",))
    await gw.catalog_ready()
    assert catalog_calls(gw) == (1, 3)  # fetched at start: Slotegrator's three pages
    for i in range(10):
        resp = await gw.client.get(f"/v1/games/{SHARED if i % 2 else HUB88_ONLY}")
        assert resp.status == 200 and resp.headers["X-Cache"] == "HIT"
        resp = await gw.client.post(f"/v1/games/{SHARED if i % 2 else SLOT_ONLY}/launch", json=REAL)
        assert resp.status == 200
        resp = await gw.client.get("/v1/games", params={"page": str(i + 1), "page_size": "3"})
        assert resp.status == 200
    assert catalog_calls(gw) == (1, 3)
    assert gw.calls("hub88", HUB88_LAUNCH) == 5 and gw.calls("slotegrator", SLOT_INIT) == 5


async def test_only_the_first_fetch_is_waited_for(make_gateway: MakeGateway, stack: Stack):
    stack.servers["slotegrator"].faults = Faults(latency_ms=150)
    gw = await make_gateway()
    first = await gw.client.get("/v1/games", params={"page_size": "500"})
    assert first.status == 200 and first.headers["X-Cache"] == "MISS"
    assert (await first.json())["meta"]["total"] == 34  # both catalogs, not a partial one
    second = await gw.client.get("/v1/games", params={"page_size": "500"})
    assert second.headers["X-Cache"] == "HIT"
    assert catalog_calls(gw) == (1, 3)


async def test_catalogs_refresh_in_the_background(make_gateway: MakeGateway):
    gw = await make_gateway({"defaults": {"catalog": {"refresh_s": 0.1}}})
    # No request made any of these: three fetches of each, Slotegrator's in three pages.
    await until(lambda: catalog_calls(gw)[0] >= 3 and catalog_calls(gw)[1] >= 9)
    assert gw.catalog.trackers["hub88"].last_outcome == "fetched"


async def test_an_unhealthy_aggregators_games_stay_known(make_gateway: MakeGateway):
    health = {"enabled": True, "interval_s": 0.05, "unhealthy_after": 2}
    gw = await make_gateway({"providers": {"hub88": {"health": health}}})
    await gw.catalog_ready()
    gw.stack.servers["hub88"].faults = Faults(mode="error")
    state = gw.gateway.runtime.providers["hub88"]
    await until(lambda: not state.health.healthy)

    resp = await gw.client.get(f"/v1/games/{HUB88_ONLY}")
    assert resp.status == 200
    listing = await (await gw.client.get("/v1/games", params={"provider": "hub88"})).json()
    assert listing["meta"]["total"] == 22 and listing["meta"]["partial"] is False

    resp = await gw.client.post(f"/v1/games/{HUB88_ONLY}/launch", json=REAL)
    assert resp.status == 503
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["code"] == "no_provider_available"
    assert int(resp.headers["Retry-After"]) >= 1
    assert problem["retry_after_s"] == int(resp.headers["Retry-After"])
    resp = await gw.client.post(f"/v1/games/{SHARED}/launch", json=REAL)
    assert (await resp.json())["provider"] == "slotegrator"
    assert gw.calls("hub88", HUB88_LAUNCH) == 0


async def test_a_breaker_open_aggregators_games_stay_known(make_gateway: MakeGateway):
    breaker = {"failure_threshold": 2, "recovery_timeout_s": 30}
    gw = await make_gateway({"providers": {"hub88": {"breaker": breaker}}})
    await gw.catalog_ready()
    gw.stack.servers["hub88"].faults = Faults(mode="error")
    for _ in range(2):  # only Hub88 sells it: each failure is a 502, and opens the breaker
        resp = await gw.client.post(f"/v1/games/{HUB88_ONLY}/launch", json=REAL)
        assert resp.status == 502
    assert (await gw.client.get(f"/v1/games/{HUB88_ONLY}")).status == 200
    resp = await gw.client.post(f"/v1/games/{HUB88_ONLY}/launch", json=REAL)
    assert resp.status == 503
    assert 25 <= int(resp.headers["Retry-After"]) <= 30  # when the breaker may probe again
    assert gw.calls("hub88", HUB88_LAUNCH) == 2


JURISDICTION = {
    "providers": {"slotegrator": {"blocked_countries": ["GB"]}},
    "studios": {"Relax Gaming": {"blocked_countries": ["SE"]}},
}


async def test_country_filtering_of_the_catalog(make_gateway: MakeGateway):
    gw = await make_gateway(JURISDICTION)

    async def listed(country: str) -> list[dict[str, Any]]:
        resp = await gw.client.get("/v1/games", params={"country": country, "page_size": "500"})
        assert resp.status == 200
        body = await resp.json()
        assert body["meta"]["total"] == len(body["data"])
        data: list[dict[str, Any]] = body["data"]
        return data

    # The simulated Hub88 blocks every game in the US: only Slotegrator's may be offered.
    us = await listed("US")
    assert len(us) == 20
    assert all("slotegrator" in {o["provider"] for o in g["offers"]} for g in us)
    assert len(await listed("us")) == 20
    assert len(await listed("GB")) == 22  # Slotegrator blocked by the config: Hub88's games
    se = await listed("SE")
    assert len(se) == 33 and SLOT_ONLY not in {g["id"] for g in se}  # the studio's block
    assert len(await listed("DE")) == 34
    for bad in ("USA", "1A", "D"):
        resp = await gw.client.get("/v1/games", params={"country": bad})
        assert resp.status == 400 and (await resp.json())["code"] == "invalid_request"
    aviator = await (await gw.client.get(f"/v1/games/{HUB88_ONLY}")).json()
    assert aviator["blocked_countries"] == ["US"]
    bonanza = await (await gw.client.get(f"/v1/games/{SHARED}")).json()
    assert bonanza["blocked_countries"] == []  # each country has an offer that may serve it


async def test_a_launch_moves_to_an_offer_allowed_in_the_country_or_is_451(
    make_gateway: MakeGateway,
):
    gw = await make_gateway(JURISDICTION)
    resp = await gw.client.post(f"/v1/games/{SHARED}/launch", json={**REAL, "country": "US"})
    assert resp.status == 200 and (await resp.json())["provider"] == "slotegrator"
    assert gw.calls("hub88", HUB88_LAUNCH) == 0  # not tried, then failed over: never asked

    resp = await gw.client.post(f"/v1/games/{HUB88_ONLY}/launch", json={**REAL, "country": "US"})
    assert resp.status == 451
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["code"] == "unavailable_for_legal_reasons"
    assert problem["title"] == "Unavailable for legal reasons"
    assert problem["country"] == "US" and problem["request_id"] == resp.headers["X-Request-ID"]
    resp = await gw.client.post(f"/v1/games/{SLOT_ONLY}/launch", json={**REAL, "country": "SE"})
    assert resp.status == 451
    assert gw.calls("hub88", HUB88_LAUNCH) == 0 and gw.calls("slotegrator", SLOT_INIT) == 1

    resp = await gw.client.post(f"/v1/games/{SHARED}/launch", json={**REAL, "country": "GB"})
    assert (await resp.json())["provider"] == "hub88"
    resp = await gw.client.post(f"/v1/games/{HUB88_ONLY}/launch", json={**REAL, "country": "DE"})
    assert resp.status == 200 and (await resp.json())["provider"] == "hub88"
    # Blocked where the aggregator is unusable too: the law answers first, 451 not 503.
    gw.gateway.runtime.providers["slotegrator"].drained = True
    resp = await gw.client.post(f"/v1/games/{SLOT_ONLY}/launch", json={**REAL, "country": "SE"})
    assert resp.status == 451


# ---- the admin routes and the metrics ----------------------------------------------------------

KEYS = {
    "VIEW_KEY": "view_" + secrets.token_urlsafe(24),
    "OP_KEY": "op_" + secrets.token_urlsafe(24),
}
ADMIN = {
    "clients": [
        {"id": "ops-viewer", "key_env": "VIEW_KEY", "roles": ["viewer"]},
        {"id": "ops", "key_env": "OP_KEY", "roles": ["operator"]},
    ]
}
VIEWER = {"X-API-Key": KEYS["VIEW_KEY"]}
OPERATOR = {"X-API-Key": KEYS["OP_KEY"]}


async def metrics_of(gw: GatewayUnderTest) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = await (await gw.client.get("/metrics")).text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_admin_catalog_shows_each_aggregators_catalog(make_gateway: MakeGateway):
    gw = await make_gateway(ADMIN, env=KEYS)
    await gw.catalog_ready()
    resp = await gw.client.get("/admin/catalog", headers=VIEWER)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["shared"] is False and list(body["providers"]) == ["hub88", "slotegrator"]
    hub88 = body["providers"]["hub88"]
    assert (hub88["games"], hub88["status"], hub88["last_outcome"], hub88["stale"]) == (
        22,
        "ok",
        "fetched",
        False,
    )
    assert 0 <= hub88["age_s"] < 60 and hub88["refresh_s"] == 300
    assert 270 <= hub88["next_refresh_in_s"] <= 330  # jittered
    assert body["providers"]["slotegrator"]["games"] == 20
    assert (await gw.client.get("/admin/catalog")).status == 401


async def test_a_forced_refresh_and_the_catalog_metrics(make_gateway: MakeGateway):
    gw = await make_gateway(ADMIN, env=KEYS)
    await gw.catalog_ready()
    refused = await gw.client.post("/admin/catalog/refresh", headers=VIEWER)
    assert refused.status == 403 and (await refused.json())["code"] == "forbidden"
    assert catalog_calls(gw) == (1, 3)

    resp = await gw.client.post("/admin/catalog/refresh", headers=OPERATOR)
    assert resp.status == 200
    assert (await resp.json())["refreshed"] == {"hub88": "fetched", "slotegrator": "fetched"}
    assert catalog_calls(gw) == (2, 6)
    resp = await gw.client.post("/admin/catalog/refresh?provider=hub88", headers=OPERATOR)
    assert (await resp.json())["refreshed"] == {"hub88": "fetched"}
    assert catalog_calls(gw) == (3, 6)
    resp = await gw.client.post("/admin/catalog/refresh?provider=stripe", headers=OPERATOR)
    assert resp.status == 404
    resp = await gw.client.post("/admin/catalog/refresh?providers=hub88", headers=OPERATOR)
    assert resp.status == 400

    gw.stack.servers["hub88"].faults = Faults(mode="error")
    resp = await gw.client.post("/admin/catalog/refresh?provider=hub88", headers=OPERATOR)
    body = await resp.json()
    assert body["refreshed"] == {"hub88": "error"}
    hub88 = body["providers"]["hub88"]
    assert (hub88["games"], hub88["status"], hub88["stale"]) == (22, "error", True)
    assert "HTTP 500" in hub88["last_error"]
    resp = await gw.client.get("/v1/games", params={"page_size": "500"}, headers=VIEWER)
    assert resp.headers["X-Cache"] == "STALE"
    assert (await resp.json())["meta"]["total"] == 34  # the kept catalog serves on

    samples = await metrics_of(gw)
    refreshes = "gateway_catalog_refreshes_total"
    assert metric(samples, refreshes, provider="hub88", outcome="fetched") == 3
    assert metric(samples, refreshes, provider="hub88", outcome="error") == 1
    assert metric(samples, refreshes, provider="slotegrator", outcome="fetched") == 2
    duration = "gateway_catalog_refresh_duration_seconds_count"
    assert metric(samples, duration, provider="hub88") == 4
    assert metric(samples, "gateway_catalog_snapshot_games", provider="hub88") == 22
    assert metric(samples, "gateway_catalog_snapshot_games", provider="slotegrator") == 20
    age = metric(samples, "gateway_catalog_snapshot_age_seconds", provider="hub88")
    assert age is not None and 0 < age < 60
    operation = {"provider": "hub88", "operation": "catalog"}
    assert metric(samples, "gateway_upstream_requests_total", **operation, outcome="ok") == 3


async def test_a_reload_that_changes_an_aggregator_keeps_its_games_known(
    make_gateway: MakeGateway, stack: Stack
):
    gw = await make_gateway()
    await gw.catalog_ready()
    gw.stack.servers["hub88"].faults = Faults(latency_ms=300)  # the refresh takes a while
    doc = merge(base_config(stack), {"providers": {"hub88": {"timeout_ms": 900}}})
    gw.gateway.apply(build_config(doc, stack.secrets))
    resp = await gw.client.get(f"/v1/games/{HUB88_ONLY}")  # served while hub88 refreshes
    assert resp.status == 200 and resp.headers["X-Cache"] == "HIT"
    await until(lambda: catalog_calls(gw)[0] == 2)  # new settings: fetched again at once
