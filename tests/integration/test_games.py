"""Catalog and launch through the gateway, against the simulators over real sockets."""

from __future__ import annotations

import asyncio
import logging

import jsonschema
import pytest

from gateway.http.validation import openapi_document
from simulators.faults import Faults
from simulators.stack import Stack
from tests.conftest import GatewayUnderTest, MakeGateway

HUB88_LIST = "/operator/generic/v2/game/list"
HUB88_LAUNCH = "/operator/generic/v2/game/url"
SLOT_INIT = "/games/init"
REAL_LAUNCH = {
    "player_id": "player-42",
    "currency": "EUR",
    "mode": "real",
    "platform": "desktop",
    "language": "en",
    "session_token": "sess-1",
    "return_url": "https://casino.example/lobby",
}


def schema_of(name: str) -> dict:
    doc = openapi_document()
    return {**doc["components"]["schemas"][name], "components": doc["components"]}


async def test_catalog_merges_both_aggregators_and_dedupes_shared_games(gw: GatewayUnderTest):
    resp = await gw.client.get("/v1/games", params={"page_size": "500"})
    assert resp.status == 200
    body = await resp.json()
    jsonschema.validate(body, schema_of("GameList"))
    # 22 Hub88 games + 20 Slotegrator games, 8 of them sold by both.
    assert body["meta"] == {
        "total": 34,
        "page": 1,
        "page_size": 500,
        "partial": False,
        "providers": {"hub88": "ok", "slotegrator": "ok"},
    }
    by_id = {g["id"]: g for g in body["data"]}
    bonanza = by_id["pragmatic-play:sweet-bonanza"]
    assert bonanza["offers"] == [
        {"provider": "hub88", "provider_game_id": "pp_sweet_bonanza"},
        {"provider": "slotegrator", "provider_game_id": "6f1c9a2e-0001-4a8b-9c1d-000000000001"},
    ]
    assert bonanza["rtp"] == "96.48" and bonanza["studio"] == "Pragmatic Play"
    assert len(by_id["evolution:crazy-time"]["offers"]) == 2
    assert len(by_id["play-n-go:book-of-dead"]["offers"]) == 2
    shared = [g for g in body["data"] if len(g["offers"]) == 2]
    assert len(shared) == 8
    # Slotegrator's catalog spans three pages of eight: all were followed.
    assert gw.calls("slotegrator", "/games") == 3
    assert gw.calls("hub88", HUB88_LIST) == 1


async def test_filters_and_paging(gw: GatewayUnderTest):
    async def ids(**params: str) -> tuple[int, list[str]]:
        resp = await gw.client.get("/v1/games", params=params)
        assert resp.status == 200
        body = await resp.json()
        return body["meta"]["total"], [g["id"] for g in body["data"]]

    total, _ = await ids(provider="slotegrator", page_size="500")
    assert total == 20
    total, found = await ids(studio="PragmaticPlay", page_size="500")
    assert total == 8 and all(i.startswith("pragmatic-play:") for i in found)
    total, found = await ids(q="BONANZA")
    assert sorted(found) == [
        "big-time-gaming:bonanza-megaways",
        "pragmatic-play:big-bass-bonanza",
        "pragmatic-play:sweet-bonanza",
    ]
    total, found = await ids(category="live", page_size="500")
    assert total == 5
    total, _ = await ids(platform="mobile", page_size="500")
    assert total == 31  # three desktop-only games
    total, page2 = await ids(page="2", page_size="10")
    _, all_ids = await ids(page_size="500")
    assert page2 == all_ids[10:20]
    _, empty = await ids(page="99")
    assert empty == []


async def test_get_one_game_and_unknown_game(gw: GatewayUnderTest):
    resp = await gw.client.get("/v1/games/netent:starburst")
    assert resp.status == 200
    game = await resp.json()
    jsonschema.validate(game, schema_of("Game"))
    assert [o["provider"] for o in game["offers"]] == ["hub88", "slotegrator"]
    resp = await gw.client.get("/v1/games/netent:no-such-game")
    assert resp.status == 404
    problem = await resp.json()
    assert resp.content_type == "application/problem+json"
    assert problem["code"] == "not_found"
    assert problem["request_id"] == resp.headers["X-Request-ID"]


async def test_an_aggregator_down_from_the_start_gives_a_partial_catalog(
    make_gateway: MakeGateway, stack: Stack
):
    await stack.servers["hub88"].stop_listening()
    gw = await make_gateway()
    resp = await gw.client.get("/v1/games", params={"page_size": "500"})
    assert resp.status == 200
    body = await resp.json()
    assert body["meta"]["partial"] is True
    assert body["meta"]["providers"] == {"hub88": "error", "slotegrator": "ok"}
    assert body["meta"]["total"] == 20
    # A game that may be Hub88's is not called unknown while Hub88 has no catalog.
    resp = await gw.client.get("/v1/games/spribe:aviator")
    assert resp.status == 502 and (await resp.json())["code"] == "provider_unavailable"


async def test_hanging_aggregator_is_reported_as_timeout(make_gateway: MakeGateway, stack: Stack):
    stack.servers["hub88"].faults = Faults(mode="hang")
    gw = await make_gateway({"providers": {"hub88": {"timeout_ms": 200}}})
    resp = await gw.client.get("/v1/games")
    assert resp.status == 200
    body = await resp.json()
    assert body["meta"]["providers"] == {"hub88": "timeout", "slotegrator": "ok"}


async def test_garbage_from_aggregator_is_a_classified_error(
    make_gateway: MakeGateway, stack: Stack
):
    stack.servers["slotegrator"].faults = Faults(mode="garbage")
    gw = await make_gateway()
    resp = await gw.client.get("/v1/games")
    assert resp.status == 200
    body = await resp.json()
    assert body["meta"]["providers"] == {"hub88": "ok", "slotegrator": "error"}


async def test_both_aggregators_down_is_a_problem_not_a_500(
    make_gateway: MakeGateway, stack: Stack
):
    await stack.servers["hub88"].stop_listening()
    stack.servers["slotegrator"].faults = Faults(mode="error")
    gw = await make_gateway()
    resp = await gw.client.get("/v1/games")
    assert resp.status == 502
    problem = await resp.json()
    assert problem["code"] == "provider_unavailable"
    assert "hub88 error" in problem["detail"] and "slotegrator error" in problem["detail"]


async def test_an_aggregator_that_comes_back_is_listed_again(
    make_gateway: MakeGateway, stack: Stack
):
    await stack.servers["hub88"].stop_listening()
    gw = await make_gateway()
    await gw.catalog_ready()
    await stack.servers["hub88"].start_listening()
    # Failed first attempts are retried in the background, soon (1 s, 2 s, ...).
    for _ in range(150):
        body = await (await gw.client.get("/v1/games", params={"page_size": "500"})).json()
        if not body["meta"]["partial"]:
            break
        await asyncio.sleep(0.02)
    assert body["meta"]["total"] == 34 and body["meta"]["providers"]["hub88"] == "ok"


async def test_launch_through_first_provider_in_route_order(gw: GatewayUnderTest):
    resp = await gw.client.post("/v1/games/pragmatic-play:sweet-bonanza/launch", json=REAL_LAUNCH)
    assert resp.status == 200
    body = await resp.json()
    jsonschema.validate(body, schema_of("LaunchResponse"))
    assert body["provider"] == "hub88"
    assert body["game_id"] == "pragmatic-play:sweet-bonanza"
    assert body["launch_url"].startswith("https://games.hub88.example/launch/pp_sweet_bonanza")
    assert gw.calls("slotegrator", SLOT_INIT) == 0


LAUNCH_CACHED = {"routes": {"games.launch": {"cache": {"ttl_s": 60}}}}


async def test_launch_fails_over_to_the_second_aggregator(
    make_gateway: MakeGateway, caplog: pytest.LogCaptureFixture
):
    gw = await make_gateway(LAUNCH_CACHED)
    # The catalog is fetched (and cached) first, so only the launch call meets the fault.
    await gw.client.post("/v1/games/netent:starburst/launch", json={"mode": "demo"})
    gw.stack.servers["hub88"].faults = Faults(mode="error")
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        resp = await gw.client.post(
            "/v1/games/pragmatic-play:sweet-bonanza/launch", json=REAL_LAUNCH
        )
    assert resp.status == 200
    (line,) = [r for r in caplog.records if r.name == "gateway.access"]
    assert (line.route, line.provider, line.failover) == ("games.launch", "slotegrator", True)
    body = await resp.json()
    assert body["provider"] == "slotegrator"
    assert "6f1c9a2e-0001-4a8b-9c1d-000000000001" in body["launch_url"]
    assert gw.calls("hub88", HUB88_LAUNCH) == 2  # the demo launch, then the failed one
    assert gw.calls("slotegrator", SLOT_INIT) == 1


async def test_launch_fails_over_when_primary_times_out(make_gateway: MakeGateway):
    gw = await make_gateway({**LAUNCH_CACHED, "providers": {"hub88": {"timeout_ms": 200}}})
    await gw.client.post("/v1/games/netent:starburst/launch", json=REAL_LAUNCH)
    gw.stack.servers["hub88"].faults = Faults(mode="hang")
    resp = await gw.client.post("/v1/games/netent:starburst/launch", json=REAL_LAUNCH)
    assert resp.status == 200
    assert (await resp.json())["provider"] == "slotegrator"


async def test_launch_of_a_game_only_the_failed_aggregator_sells(make_gateway: MakeGateway):
    gw = await make_gateway(LAUNCH_CACHED)
    await gw.client.post("/v1/games/netent:starburst/launch", json={"mode": "demo"})
    gw.stack.servers["hub88"].faults = Faults(mode="error")
    resp = await gw.client.post("/v1/games/spribe:aviator/launch", json=REAL_LAUNCH)
    assert resp.status == 502
    problem = await resp.json()
    assert problem["code"] == "provider_unavailable"
    assert problem["provider"] == "hub88"
    assert gw.calls("slotegrator", SLOT_INIT) == 0


async def test_demo_launch_needs_no_player(gw: GatewayUnderTest):
    resp = await gw.client.post(
        "/v1/games/relax-gaming:money-train-2/launch", json={"mode": "demo", "platform": "mobile"}
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["provider"] == "slotegrator" and "demo=1" in body["launch_url"]
