"""CORS over real sockets: preflights, actual requests, no `cors` block, and hot reloads."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientResponse, web

from gateway.http import cors
from gateway.http.context import GATEWAY
from gateway.runtime.gateway import Gateway
from simulators.stack import Stack
from tests.conftest import GatewayUnderTest, MakeGateway, base_config, build_config, merge

FRONTEND = "http://127.0.0.1:3000"
OTHER = "http://127.0.0.1:4000"
CORS = {
    "cors": {
        "allow_origins": [FRONTEND],
        "allow_headers": ["Content-Type", "Idempotency-Key", "X-API-Key"],
        "allow_methods": ["GET", "POST"],
        "max_age_s": 600,
    }
}
DEFAULT_EXPOSED = {
    "x-request-id",
    "x-cache",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "idempotent-replayed",
}
DEPOSIT = {
    "type": "deposit",
    "amount": 2500,
    "currency": "EUR",
    "player_id": "player-42",
    "method": {"type": "card"},
    "return_url": "https://casino.example/cashier",
}
STRIPE_CREATE = "/v1/payment_intents"


def cors_headers(resp: ClientResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.headers.items() if k.lower().startswith("access-control")}


def names(value: str) -> set[str]:
    return {v.strip().lower() for v in value.split(",") if v.strip()}


def provider_calls(gw: GatewayUnderTest) -> int:
    return gw.calls("stripe", STRIPE_CREATE)


async def preflight(
    gw: GatewayUnderTest,
    origin: str | None,
    path: str = "/v1/payments",
    method: str | None = "POST",
    headers: str | None = "content-type,idempotency-key,x-api-key",
) -> ClientResponse:
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return await gw.client.options(path, headers={k: v for k, v in sent.items() if v is not None})


async def reload_with(gw: GatewayUnderTest, changes: dict[str, Any]) -> None:
    """What a hot reload does: parse a whole new config and swap the runtime."""
    doc = merge(base_config(gw.stack), changes)
    gw.gateway.apply(build_config(doc, gw.stack.secrets))


@pytest.fixture
async def cors_gw(make_gateway: MakeGateway) -> GatewayUnderTest:
    return await make_gateway(CORS)


# ---- preflight ----------------------------------------------------------------------------


async def test_preflight_from_an_allowed_origin_is_answered_by_the_gateway(
    cors_gw: GatewayUnderTest,
):
    resp = await preflight(cors_gw, FRONTEND)
    assert resp.status == 200
    got = cors_headers(resp)
    assert got["access-control-allow-origin"] == FRONTEND
    assert "post" in names(got["access-control-allow-methods"])
    assert names(got["access-control-allow-headers"]) == {
        "content-type",
        "idempotency-key",
        "x-api-key",
    }
    assert got["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in got
    assert {"origin", "access-control-request-method"} <= names(resp.headers["Vary"])
    assert resp.headers["X-Request-ID"]
    # Answered by the gateway itself: nothing reached the payment provider.
    assert provider_calls(cors_gw) == 0


async def test_preflight_lists_every_allowed_method_the_route_serves(cors_gw: GatewayUnderTest):
    resp = await preflight(cors_gw, FRONTEND, path="/v1/games", method="GET", headers=None)
    assert resp.status == 200
    # GET and POST are allowed, but /v1/games serves GET (and HEAD) only.
    assert names(resp.headers["Access-Control-Allow-Methods"]) == {"get"}
    assert "Access-Control-Allow-Headers" not in resp.headers


async def test_preflight_from_another_origin_gets_no_cors_headers(cors_gw: GatewayUnderTest):
    resp = await preflight(cors_gw, OTHER)
    assert resp.status == 403
    assert cors_headers(resp) == {}
    problem = await resp.json(content_type="application/problem+json")
    assert (problem["status"], problem["code"], problem["title"]) == (403, "forbidden", "Forbidden")
    assert OTHER in problem["detail"]


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/v1/payments", "POST", "content-type,x-unlisted"),  # header not allowed
        ("/admin/cache", "DELETE", None),  # served by the route, not in allow_methods
        ("/v1/payments", "PUT", None),  # not in allow_methods, not served either
        ("/v1/games", "POST", None),  # allowed method, but the route does not serve it
    ],
)
async def test_preflight_refuses_what_the_policy_or_route_does_not_allow(
    cors_gw: GatewayUnderTest, path: str, method: str, headers: str | None
):
    resp = await preflight(cors_gw, FRONTEND, path=path, method=method, headers=headers)
    assert resp.status == 403
    assert cors_headers(resp) == {}


async def test_preflight_needs_no_api_key_but_the_actual_request_does(
    make_gateway: MakeGateway,
):
    # Browsers never send X-API-Key (or any custom header) on the preflight itself.
    key = uuid.uuid4().hex
    clients = {"clients": [{"id": "web", "key_env": "WEB_KEY"}]}
    gw = await make_gateway(merge(CORS, clients), env={"WEB_KEY": key})
    answer = await preflight(gw, FRONTEND)
    assert answer.status == 200, (
        "the policy step must let CORS preflights through unauthenticated "
        "(gateway.http.cors.is_preflight)"
    )
    denied = await gw.client.post(
        "/v1/payments", json=DEPOSIT, headers={"Origin": FRONTEND, "Idempotency-Key": "k1"}
    )
    assert denied.status == 401
    assert denied.headers["Access-Control-Allow-Origin"] == FRONTEND  # readable 401 problem
    paid = await gw.client.post(
        "/v1/payments",
        json=DEPOSIT,
        headers={"Origin": FRONTEND, "Idempotency-Key": "k2", "X-API-Key": key},
    )
    assert paid.status == 201
    assert paid.headers["Access-Control-Allow-Origin"] == FRONTEND


async def test_preflights_do_not_count_against_rate_limits(make_gateway: MakeGateway):
    limited = {"routes": {"games.list": {"rate_limit": {"limit": "1/minute", "per": "ip"}}}}
    gw = await make_gateway(merge(CORS, limited))
    for _ in range(3):
        resp = await preflight(gw, FRONTEND, path="/v1/games", method="GET", headers=None)
        assert resp.status == 200
    first = await gw.client.get(
        "/v1/games", params={"page_size": "1"}, headers={"Origin": FRONTEND}
    )
    assert first.status == 200, "preflights used up the route's rate limit"
    second = await gw.client.get(
        "/v1/games", params={"page_size": "1"}, headers={"Origin": FRONTEND}
    )
    assert second.status == 429
    # A refusal the page can read, and the headers saying when to retry are exposed to it.
    assert second.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "retry-after" in names(second.headers["Access-Control-Expose-Headers"])


async def test_origin_matching_ignores_case_and_trailing_slash_in_the_config(
    make_gateway: MakeGateway,
):
    gw = await make_gateway({"cors": {"allow_origins": ["HTTP://127.0.0.1:3000/"]}})
    resp = await preflight(gw, FRONTEND, headers="content-type")
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == FRONTEND


async def test_plain_options_is_a_405_problem_not_a_bare_403(cors_gw: GatewayUnderTest):
    for headers in ({}, {"Origin": FRONTEND}):  # no Access-Control-Request-Method: no preflight
        resp = await cors_gw.client.options("/v1/payments", headers=headers)
        assert resp.status == 405
        assert resp.headers["Allow"] == "POST"
        assert cors_headers(resp) == {}
        problem = await resp.json(content_type="application/problem+json")
        assert problem["code"] == "method_not_allowed"


# ---- actual requests ------------------------------------------------------------------------


async def test_simple_request_from_an_allowed_origin_gets_cors_headers(
    cors_gw: GatewayUnderTest,
):
    resp = await cors_gw.client.get(
        "/v1/games", params={"page_size": "1"}, headers={"Origin": FRONTEND}
    )
    assert resp.status == 200
    got = cors_headers(resp)
    assert got["access-control-allow-origin"] == FRONTEND
    exposed = names(got["access-control-expose-headers"])
    assert exposed >= DEFAULT_EXPOSED, f"missing {DEFAULT_EXPOSED - exposed} (CorsConfig default)"
    assert "access-control-allow-credentials" not in got
    assert "origin" in names(resp.headers["Vary"])


async def test_simple_request_from_another_origin_gets_none(cors_gw: GatewayUnderTest):
    resp = await cors_gw.client.get(
        "/v1/games", params={"page_size": "1"}, headers={"Origin": OTHER}
    )
    assert resp.status == 200  # served: it is the browser that withholds the answer
    assert cors_headers(resp) == {}
    # Still marked as depending on Origin, so a shared cache cannot hand it to FRONTEND.
    assert "origin" in names(resp.headers["Vary"])


async def test_request_without_origin_gets_no_cors_headers(cors_gw: GatewayUnderTest):
    resp = await cors_gw.client.get("/v1/games", params={"page_size": "1"})
    assert resp.status == 200
    assert cors_headers(resp) == {}


async def test_problem_responses_carry_cors_headers_so_frontends_can_read_them(
    cors_gw: GatewayUnderTest,
):
    resp = await cors_gw.client.get(
        "/v1/games", params={"bogus": "1"}, headers={"Origin": FRONTEND}
    )
    assert resp.status == 400
    assert resp.headers["Access-Control-Allow-Origin"] == FRONTEND
    body = await resp.json(content_type="application/problem+json")
    assert body["code"] == "invalid_request"


async def test_preflighted_post_from_an_allowed_origin_reaches_the_provider(
    cors_gw: GatewayUnderTest,
):
    resp = await cors_gw.client.post(
        "/v1/payments",
        json=DEPOSIT,
        headers={"Origin": FRONTEND, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert resp.status == 201
    assert resp.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert provider_calls(cors_gw) == 1


async def test_a_method_left_out_of_allow_methods_gets_no_cors_headers(
    make_gateway: MakeGateway,
):
    gw = await make_gateway(merge(CORS, {"cors": {"allow_methods": ["GET"]}}))
    resp = await gw.client.post(
        "/v1/payments",
        json=DEPOSIT,
        headers={"Origin": FRONTEND, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert cors_headers(resp) == {}
    head = await gw.client.head("/healthz", headers={"Origin": FRONTEND})
    assert head.headers["Access-Control-Allow-Origin"] == FRONTEND  # HEAD follows GET


async def test_wildcard_allows_any_origin_but_never_with_credentials(make_gateway: MakeGateway):
    gw = await make_gateway({"cors": {"allow_origins": ["*", FRONTEND], "allow_credentials": True}})
    anyone = await gw.client.get("/healthz", headers={"Origin": "http://127.0.0.1:5555"})
    assert anyone.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:5555"
    assert "Access-Control-Allow-Credentials" not in anyone.headers
    listed = await gw.client.get("/healthz", headers={"Origin": FRONTEND})
    assert listed.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert listed.headers["Access-Control-Allow-Credentials"] == "true"
    pre = await preflight(gw, "http://127.0.0.1:5555", headers="content-type")
    assert pre.status == 200
    assert "Access-Control-Allow-Credentials" not in pre.headers


# ---- no cors block --------------------------------------------------------------------------


async def test_without_a_cors_block_there_are_no_cors_headers(gw: GatewayUnderTest):
    resp = await gw.client.get("/v1/games", params={"page_size": "1"}, headers={"Origin": FRONTEND})
    assert resp.status == 200
    assert cors_headers(resp) == {}
    assert "Vary" not in resp.headers


async def test_without_a_cors_block_options_is_a_405_problem(gw: GatewayUnderTest):
    for headers in ({}, {"Origin": FRONTEND, "Access-Control-Request-Method": "POST"}):
        resp = await gw.client.options("/v1/payments", headers=headers)
        assert resp.status == 405
        assert resp.headers["Allow"] == "POST"
        assert resp.headers["X-Request-ID"]
        assert cors_headers(resp) == {}
        problem = await resp.json(content_type="application/problem+json")
        assert problem["code"] == "method_not_allowed"
        assert problem["detail"] == "CORS is not enabled on this gateway"
    games = await gw.client.options("/v1/games/some-game")
    assert games.status == 405
    assert games.headers["Allow"] == "GET, HEAD"


# ---- hot reload -----------------------------------------------------------------------------


async def test_reload_swaps_the_allowed_origins_without_a_restart(cors_gw: GatewayUnderTest):
    assert (await preflight(cors_gw, FRONTEND)).status == 200
    assert (await preflight(cors_gw, OTHER)).status == 403

    await reload_with(cors_gw, merge(CORS, {"cors": {"allow_origins": [OTHER]}}))

    new = await preflight(cors_gw, OTHER)
    assert new.status == 200
    assert new.headers["Access-Control-Allow-Origin"] == OTHER
    old = await preflight(cors_gw, FRONTEND)
    assert old.status == 403
    assert cors_headers(old) == {}
    simple_new = await cors_gw.client.get("/healthz", headers={"Origin": OTHER})
    assert simple_new.headers["Access-Control-Allow-Origin"] == OTHER
    simple_old = await cors_gw.client.get("/healthz", headers={"Origin": FRONTEND})
    assert cors_headers(simple_old) == {}


async def test_reload_changes_headers_methods_max_age_and_exposed_headers(
    cors_gw: GatewayUnderTest,
):
    assert (await preflight(cors_gw, FRONTEND, headers="x-request-id")).status == 403
    await reload_with(
        cors_gw,
        merge(
            CORS,
            {
                "cors": {
                    "allow_headers": ["X-Request-ID"],
                    "allow_methods": ["GET"],
                    "max_age_s": 30,
                    "expose_headers": ["X-Cache"],
                }
            },
        ),
    )
    resp = await preflight(
        cors_gw, FRONTEND, path="/v1/games", method="GET", headers="x-request-id"
    )
    assert resp.status == 200
    assert resp.headers["Access-Control-Max-Age"] == "30"
    assert (await preflight(cors_gw, FRONTEND)).status == 403  # POST and its headers: gone
    simple = await cors_gw.client.get("/healthz", headers={"Origin": FRONTEND})
    assert simple.headers["Access-Control-Expose-Headers"] == "X-Cache"


async def test_reload_can_turn_cors_on_and_off(gw: GatewayUnderTest):
    assert (await preflight(gw, FRONTEND)).status == 405
    await reload_with(gw, CORS)
    on = await preflight(gw, FRONTEND)
    assert on.status == 200
    assert on.headers["Access-Control-Allow-Origin"] == FRONTEND
    await reload_with(gw, {})
    off = await preflight(gw, FRONTEND)
    assert off.status == 405
    assert cors_headers(off) == {}
    simple = await gw.client.get("/healthz", headers={"Origin": FRONTEND})
    assert cors_headers(simple) == {}


async def test_an_edit_of_the_config_file_changes_the_policy(
    make_gateway: MakeGateway, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The file watcher reads *_env secrets from the process environment.
    for name, value in stack.secrets.env().items():
        monkeypatch.setenv(name, value)
    doc = merge(base_config(stack), CORS)
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(doc))
    gateway = Gateway(build_config(doc, stack.secrets))
    gateway.reload_interval_s = 0.05  # read when the app starts
    gw = await make_gateway(CORS, gateway=gateway, config_path=str(path))
    assert (await preflight(gw, OTHER)).status == 403

    path.write_text(yaml.safe_dump(merge(doc, {"cors": {"allow_origins": [OTHER]}})))

    deadline = time.monotonic() + 5
    while (status := (await preflight(gw, OTHER)).status) != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert status == 200
    assert gw.gateway.last_reload["result"] == "success"
    assert (await preflight(gw, FRONTEND)).status == 403


# ---- setup ----------------------------------------------------------------------------------


async def test_setup_refuses_a_catch_all_route(stack: Stack):
    app = web.Application()
    app[GATEWAY] = Gateway(build_config(base_config(stack), stack.secrets))

    async def anything(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_route("*", "/{tail:.*}", anything)
    with pytest.raises(ValueError, match="catch-all"):
        cors.setup(app)
    await app[GATEWAY].close()
