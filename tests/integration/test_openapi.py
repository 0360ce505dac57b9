"""The served OpenAPI document matches the routes, and real responses match the document."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from gateway.http import api
from gateway.http.middleware import UNAUTHENTICATED
from gateway.http.players import PLAYER_ROUTES
from gateway.http.validation import openapi_document
from gateway.problems import CODES, TYPE_BASE
from simulators.faults import Faults
from tests.conftest import GatewayUnderTest, MakeGateway

# HEAD is added by aiohttp to every GET route; OPTIONS answers CORS preflights.
PROTOCOL_METHODS = {"HEAD", "OPTIONS"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

DEPOSIT = {
    "type": "deposit",
    "amount": 2500,
    "currency": "EUR",
    "player_id": "player-42",
    "method": {"type": "card"},
    "return_url": "https://casino.example/cashier",
    "metadata": {"campaign": "welcome"},
}
REAL_LAUNCH = {
    "player_id": "player-42",
    "currency": "EUR",
    "mode": "real",
    "platform": "desktop",
    "language": "en",
    "session_token": "sess-1",
    "return_url": "https://casino.example/lobby",
}
GAME = "pragmatic-play:sweet-bonanza"


# Success bodies that are not JSON: the event stream, the metrics page, and webhook
# acknowledgements in each provider's own format.
SUCCESS_TYPES = {
    "/v1/events": {"text/event-stream"},
    "/metrics": {"text/plain"},
    "/v1/webhooks/{provider}": {"application/json", "text/plain"},
}


def app_operations(app: web.Application) -> set[tuple[str, str]]:
    ops = set()
    for route in app.router.routes():
        if route.method in PROTOCOL_METHODS:
            continue
        assert route.resource is not None
        ops.add((route.method.lower(), route.resource.canonical))
    return ops


def doc_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


class Recorder:
    """Checks each response against the document and remembers which statuses it saw."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.seen: dict[tuple[str, str], set[int]] = {}

    async def check(
        self, resp: aiohttp.ClientResponse, method: str, template: str
    ) -> dict[str, Any]:
        operation = self.doc["paths"][template][method]
        responses = operation["responses"]
        label = f"{method.upper()} {template} -> {resp.status}"
        assert str(resp.status) in responses, f"{label} is not documented"
        content = responses[str(resp.status)]["content"]
        assert resp.content_type in content, f"{label}: {resp.content_type} not documented"
        body = await resp.json(content_type=None)
        schema = {**content[resp.content_type]["schema"], "components": self.doc["components"]}
        jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        ).validate(body)
        if resp.content_type == "application/problem+json":
            assert body["status"] == resp.status
            assert CODES[body["code"]][0] == resp.status
            assert body["request_id"] == resp.headers["X-Request-ID"]
        self.seen.setdefault((method, template), set()).add(resp.status)
        return body


@pytest.fixture
def doc() -> dict[str, Any]:
    return openapi_document()


# ---- the document itself ---------------------------------------------------------------------


async def test_served_document_is_openapi_3_1(gw: GatewayUnderTest, doc: dict[str, Any]):
    resp = await gw.client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    served = await resp.json()
    assert served == doc
    assert re.fullmatch(r"3\.1\.\d+", served["openapi"])
    assert served["info"]["title"] == "casino-gateway unified API"
    assert served["info"]["version"]


def test_every_schema_is_valid_and_every_ref_resolves(doc: dict[str, Any]):
    schemas = doc["components"]["schemas"]
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_every_operation_is_fully_described(doc: dict[str, Any]):
    operation_ids = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            label = f"{method} {path}"
            operation_ids.append(operation["operationId"])
            assert operation["responses"], label
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status), label
                assert response["description"], label
                types = set(response["content"])
                if int(status) >= 400 and path != "/readyz":  # not-ready is a report
                    assert types == {"application/problem+json"}, f"{label} {status}"
                elif int(status) < 400:
                    assert types == SUCCESS_TYPES.get(path, {"application/json"}), label
            templated = set(re.findall(r"\{(\w+)\}", path))
            in_path = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert templated == in_path, label
    assert len(operation_ids) == len(set(operation_ids))


async def test_routes_and_paths_agree(gw: GatewayUnderTest, doc: dict[str, Any]):
    app = gw.client.server.app
    described = doc_operations(doc)
    # Every route the gateway serves is in the document, and nothing else is.
    assert app_operations(app) == described
    # Each documented operation is served under the route name its operationId gives.
    names = {
        (route.method.lower(), route.resource.canonical): route.name
        for route in app.router.routes()
        if route.resource is not None
    }
    for method, path in described:
        assert names[(method, path)] == doc["paths"][path][method]["operationId"]


def test_security_matches_what_each_route_checks(gw: GatewayUnderTest, doc: dict[str, Any]):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header",
                                 "name": "X-API-Key"}
    assert schemes["PlayerToken"]["scheme"] == "bearer"
    handlers = {
        (route.method.lower(), route.resource.canonical): route.handler
        for route in gw.client.server.app.router.routes()
        if route.resource is not None
    }
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            label = f"{method} {path}"
            security = operation["security"]
            for requirement in security:
                assert set(requirement) <= set(schemes), label
            name = operation["operationId"]
            role = getattr(handlers[(method, path)], "required_role", None)
            if name.startswith("admin."):
                # The role the handler checks is the scope the document names, and no
                # anonymous alternative is offered.
                assert role is not None, label
                assert security == [{"ApiKey": [role]}], label
            elif name in UNAUTHENTICATED or name.startswith(("webhooks.", "wallet.")):
                assert security == [], label
            else:
                assert {} in security and {"ApiKey": []} in security, label
                if name in PLAYER_ROUTES:
                    assert {"ApiKey": [], "PlayerToken": []} in security, label
                else:
                    assert not any("PlayerToken" in r for r in security), label


def test_list_query_parameters_match_the_handler(doc: dict[str, Any]):
    params = doc["paths"]["/v1/games"]["get"]["parameters"]
    query = {p["name"]: p["schema"] for p in params if p["in"] == "query"}
    assert set(query) == set(api._QUERY_KEYS)
    assert query["page_size"]["maximum"] == api.MAX_PAGE_SIZE
    assert query["page_size"]["default"] == api.DEFAULT_PAGE_SIZE
    assert query["page"]["minimum"] == query["page_size"]["minimum"] == 1


def test_problem_codes_are_unique_and_well_formed():
    assert len(CODES) == len({code.lower() for code in CODES})
    types = [TYPE_BASE + code.replace("_", "-") for code in CODES]
    assert len(types) == len(set(types))
    titles = [title for _, title in CODES.values()]
    assert len(titles) == len(set(titles))
    for code, (status, title) in CODES.items():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code), code
        assert 400 <= status <= 599, code
        assert title and title[0].isupper(), code


def test_every_problem_code_is_in_the_readme_with_its_status():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = {
        code: int(status)
        for code, status in re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", readme, re.M)
    }
    assert documented == {code: status for code, (status, _title) in CODES.items()}


# ---- real responses against the document -----------------------------------------------------


async def test_real_responses_match_the_document(gw: GatewayUnderTest, doc: dict[str, Any]):
    rec = Recorder(doc)
    c = gw.client

    listing = await rec.check(
        await c.get("/v1/games", params={"page_size": "5"}), "get", "/v1/games"
    )
    assert listing["meta"]["page_size"] == 5 and len(listing["data"]) == 5
    game = await rec.check(await c.get(f"/v1/games/{GAME}"), "get", "/v1/games/{game_id}")
    assert game["id"] == GAME
    launch_path = "/v1/games/{game_id}/launch"
    launched = await rec.check(
        await c.post(f"/v1/games/{GAME}/launch", json=REAL_LAUNCH), "post", launch_path
    )
    assert launched["game_id"] == GAME
    demo = await rec.check(
        await c.post(f"/v1/games/{GAME}/launch", json={"mode": "demo"}), "post", launch_path
    )
    assert demo["provider"] == "hub88"

    key = {"Idempotency-Key": uuid.uuid4().hex}
    payment = await rec.check(
        await c.post("/v1/payments", json=DEPOSIT, headers=key), "post", "/v1/payments"
    )
    replay = await c.post("/v1/payments", json=DEPOSIT, headers=key)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await rec.check(replay, "post", "/v1/payments") == payment
    fetched = await rec.check(
        await c.get(f"/v1/payments/{payment['payment_id']}"), "get", "/v1/payments/{payment_id}"
    )
    assert fetched["payment_id"] == payment["payment_id"]

    assert await rec.check(await c.get("/healthz"), "get", "/healthz") == {"status": "ok"}
    ready = await rec.check(await c.get("/readyz"), "get", "/readyz")
    assert ready["status"] == "ready"
    await rec.check(await c.get("/openapi.json"), "get", "/openapi.json")

    problem = await rec.check(await c.get("/v1/games/netent:nothing"), "get", "/v1/games/{game_id}")
    assert problem["code"] == "not_found"

    assert rec.seen == {
        ("get", "/v1/games"): {200},
        ("get", "/v1/games/{game_id}"): {200, 404},
        ("post", "/v1/games/{game_id}/launch"): {200},
        ("post", "/v1/payments"): {201},
        ("get", "/v1/payments/{payment_id}"): {200},
        ("get", "/healthz"): {200},
        ("get", "/readyz"): {200},
        ("get", "/openapi.json"): {200},
    }


async def test_triggered_problems_are_documented_for_their_operation(
    make_gateway: MakeGateway, doc: dict[str, Any]
):
    gw = await make_gateway(
        {"routes": {"games.get": {"rate_limit": {"limit": "2/hour", "per": "route"}}}}
    )
    rec = Recorder(doc)
    c = gw.client
    json_type = {"Content-Type": "application/json"}

    async def problem(resp: aiohttp.ClientResponse, method: str, template: str) -> str:
        body = await rec.check(resp, method, template)
        assert resp.content_type == "application/problem+json"
        return str(body["code"])

    # GET /v1/games
    assert await problem(await c.get("/v1/games", params={"page": "0"}), "get", "/v1/games") == (
        "invalid_request"
    )
    # GET /v1/games/{game_id}: 404, then the route's limit of two an hour
    get_game = "/v1/games/{game_id}"
    assert await problem(await c.get("/v1/games/netent:nothing"), "get", get_game) == "not_found"
    await rec.check(await c.get(f"/v1/games/{GAME}"), "get", get_game)
    limited = await c.get(f"/v1/games/{GAME}")
    assert await problem(limited, "get", get_game) == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # POST /v1/games/{game_id}/launch
    launch = "/v1/games/{game_id}/launch"
    url = f"/v1/games/{GAME}/launch"
    assert await problem(await c.post(url, json={}), "post", launch) == "invalid_request"
    assert (
        await problem(
            await c.post("/v1/games/netent:nothing/launch", json={"mode": "demo"}), "post", launch
        )
        == "not_found"
    )
    assert (
        await problem(
            await c.post(url, data=b"{}", headers={"Content-Type": "text/plain"}), "post", launch
        )
        == "unsupported_media_type"
    )
    assert (
        await problem(await c.post(url, data=b" " * 70000, headers=json_type), "post", launch)
        == "payload_too_large"
    )
    # POST /v1/payments
    pay = "/v1/payments"

    async def post(body: Any, key: str | None = "k-1", **kw: Any) -> aiohttp.ClientResponse:
        headers = {"Idempotency-Key": key} if key else {}
        return await c.post(pay, json=body, headers=headers, **kw)

    assert await problem(await post(DEPOSIT, key=None), "post", pay) == "idempotency_key_required"
    assert await problem(await post({**DEPOSIT, "x": 1}), "post", pay) == "invalid_request"
    assert await problem(await post({**DEPOSIT, "amount": 0}), "post", pay) == "invalid_amount"
    assert await problem(await post({**DEPOSIT, "currency": "XYZ"}), "post", pay) == (
        "unsupported_currency"
    )
    assert (
        await problem(
            await c.post(
                pay, data=b"{}", headers={"Idempotency-Key": "k", "Content-Type": "text/plain"}
            ),
            "post",
            pay,
        )
        == "unsupported_media_type"
    )
    assert (
        await problem(
            await c.post(pay, data=b" " * 70000, headers={**json_type, "Idempotency-Key": "k"}),
            "post",
            pay,
        )
        == "payload_too_large"
    )
    await rec.check(await post(DEPOSIT, key="reused"), "post", pay)
    assert await problem(await post({**DEPOSIT, "amount": 2600}, key="reused"), "post", pay) == (
        "idempotency_conflict"
    )
    # GET /v1/payments/{payment_id}
    get_payment = "/v1/payments/{payment_id}"
    assert await problem(await c.get("/v1/payments/garbage"), "get", get_payment) == "not_found"
    # Only Hub88 sells it, and Hub88 may not offer it in the US (as the simulator says).
    hub88_only = "/v1/games/spribe:aviator/launch"
    in_us = {**REAL_LAUNCH, "country": "US"}
    assert await problem(await c.post(hub88_only, json=in_us), "post", launch) == (
        "unavailable_for_legal_reasons"
    )
    # Only Hub88 sells it, and Hub88 is drained.
    gw.gateway.runtime.providers["hub88"].drained = True
    drained = await c.post(hub88_only, json=REAL_LAUNCH)
    assert await problem(drained, "post", launch) == "no_provider_available"
    assert int(drained.headers["Retry-After"]) >= 1
    gw.gateway.runtime.providers["hub88"].drained = False
    # Every aggregator failing: a launch finds no one; a gateway starting now has no catalog.
    await gw.stack.servers["hub88"].stop_listening()
    gw.stack.servers["slotegrator"].faults = Faults(mode="error")
    assert await problem(await c.post(url, json=REAL_LAUNCH), "post", launch) == (
        "provider_unavailable"
    )
    cold = await make_gateway()
    assert await problem(await cold.client.get("/v1/games"), "get", "/v1/games") == (
        "provider_unavailable"
    )

    assert rec.seen == {
        ("get", "/v1/games"): {400, 502},
        ("get", "/v1/games/{game_id}"): {200, 404, 429},
        ("post", "/v1/games/{game_id}/launch"): {400, 404, 413, 415, 451, 502, 503},
        ("post", "/v1/payments"): {201, 400, 409, 413, 415, 422},
        ("get", "/v1/payments/{payment_id}"): {404},
    }


async def test_unauthorized_is_documented_for_every_v1_operation(
    make_gateway: MakeGateway, doc: dict[str, Any]
):
    gw = await make_gateway({"clients": [{"id": "web", "key_env": "WEB_API_KEY"}]})
    rec = Recorder(doc)
    c = gw.client
    calls = [
        (c.get("/v1/games"), "get", "/v1/games"),
        (c.get(f"/v1/games/{GAME}"), "get", "/v1/games/{game_id}"),
        (
            c.post(f"/v1/games/{GAME}/launch", json=REAL_LAUNCH),
            "post",
            "/v1/games/{game_id}/launch",
        ),
        (
            c.post("/v1/payments", json=DEPOSIT, headers={"Idempotency-Key": "k"}),
            "post",
            "/v1/payments",
        ),
        (c.get("/v1/payments/garbage"), "get", "/v1/payments/{payment_id}"),
        (
            c.post("/v1/payments/garbage/refunds", json={}, headers={"Idempotency-Key": "k"}),
            "post",
            "/v1/payments/{payment_id}/refunds",
        ),
        (
            c.get("/v1/payments/garbage/refunds/rf_1"),
            "get",
            "/v1/payments/{payment_id}/refunds/{refund_id}",
        ),
    ]
    calls += [
        (c.get("/v1/providers/status"), "get", "/v1/providers/status"),
        (c.get("/v1/events", params={"player_id": "player-42"}), "get", "/v1/events"),
    ]
    for call, method, template in calls:
        body = await rec.check(await call, method, template)
        assert body["code"] == "unauthorized"
    # Unauthenticated routes stay open.
    await rec.check(await c.get("/healthz"), "get", "/healthz")
    await rec.check(await c.get("/openapi.json"), "get", "/openapi.json")
    key = {"X-API-Key": gw.stack.secrets.client_key}
    await rec.check(await c.get("/v1/games", headers=key), "get", "/v1/games")
    # Every /v1 operation but the webhooks (signed by providers, not keyed) asks for a key.
    assert {op for op, statuses in rec.seen.items() if 401 in statuses} == {
        op for op in doc_operations(doc) if op[1].startswith("/v1/") and "webhooks" not in op[1]
    }


async def test_refund_responses_match_the_document(
    make_gateway: MakeGateway, doc: dict[str, Any]
):
    gw = await make_gateway({"providers": {"stripe": {"timeout_ms": 200}}})
    rec = Recorder(doc)
    c = gw.client
    create = "/v1/payments/{payment_id}/refunds"
    read = "/v1/payments/{payment_id}/refunds/{refund_id}"
    payment = await (
        await c.post("/v1/payments", json=DEPOSIT, headers={"Idempotency-Key": uuid.uuid4().hex})
    ).json()
    pid = payment["payment_id"]

    async def post(body: Any, key: str | None = None) -> aiohttp.ClientResponse:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        return await c.post(f"/v1/payments/{pid}/refunds", json=body, headers=headers)

    assert (await rec.check(await post({"amount": 100}), "post", create))["code"] == (
        "payment_not_refundable"
    )
    # Captured at Stripe, and known to be by the ledger (as its webhook would tell).
    async with c.session.post(
        gw.stack.url("stripe") + f"/_sim/payment_intents/{payment['provider_reference']}/complete",
        json={"outcome": "succeeded"},
    ) as resp:
        assert resp.status == 200
    await gw.gateway.ledger.update_payment(
        pid, lambda p: (p.replace(status="succeeded", next_action=None), None), source="test"
    )
    made = await rec.check(await post({"amount": 1000}, key="r-1"), "post", create)
    assert made["status"] == "succeeded"
    await rec.check(await post({"amount": 1000}, key="r-1"), "post", create)  # replayed
    got = await rec.check(await c.get(f"/v1/payments/{pid}/refunds/{made['refund_id']}"), "get",
                          read)
    assert got == made
    problems = [
        (await post({"amount": 1001}, key="r-1"), "idempotency_conflict"),
        (await post({"amount": 5000}), "refund_exceeds_amount"),
        (await post({"amount": 10, "currency": "SEK"}), "refund_currency_mismatch"),
        (await post({"amount": "10"}), "invalid_amount"),
        (await post({"amount": 10, "why": "x"}), "invalid_request"),
        (await c.post(f"/v1/payments/{pid}/refunds", json={}), "idempotency_key_required"),
        (
            await c.post(
                f"/v1/payments/{pid}/refunds", data=b"{}",
                headers={"Idempotency-Key": "k", "Content-Type": "text/plain"},
            ),
            "unsupported_media_type",
        ),
        (
            await c.post(
                f"/v1/payments/{pid}/refunds", data=b" " * 70000,
                headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
            ),
            "payload_too_large",
        ),
        (await c.post("/v1/payments/pay_nope/refunds", json={}, headers={"Idempotency-Key": "k"}),
         "not_found"),
    ]
    for resp, code in problems:
        assert (await rec.check(resp, "post", create))["code"] == code
    assert (await rec.check(await c.get(f"/v1/payments/{pid}/refunds/rf_nope"), "get",
                            read))["code"] == "not_found"
    # An answer that never comes: 202, pending.
    gw.stack.servers["stripe"].faults = Faults(mode="hang")
    lost = await rec.check(await post({"amount": 500}), "post", create)
    assert lost["status"] == "pending"
    # A provider asking the gateway to slow down took nothing: 503, nothing kept.
    gw.stack.servers["stripe"].faults = Faults(mode="rate_limited", retry_after_s=1)
    assert (await rec.check(await post({"amount": 100}), "post", create))["code"] == (
        "no_provider_available"
    )
    assert rec.seen == {
        ("post", create): {201, 202, 400, 404, 409, 413, 415, 422, 503},
        ("get", read): {200, 404},
    }


async def test_admin_catalog_answers_match_the_document(
    make_gateway: MakeGateway, doc: dict[str, Any]
):
    keys = {"VIEW_KEY": "view_" + uuid.uuid4().hex, "OP_KEY": "op_" + uuid.uuid4().hex}
    gw = await make_gateway(
        {
            "clients": [
                {"id": "viewer", "key_env": "VIEW_KEY", "roles": ["viewer"]},
                {"id": "ops", "key_env": "OP_KEY", "roles": ["operator"]},
            ]
        },
        env=keys,
    )
    await gw.catalog_ready()
    rec = Recorder(doc)
    c = gw.client
    viewer, ops = {"X-API-Key": keys["VIEW_KEY"]}, {"X-API-Key": keys["OP_KEY"]}
    status = await rec.check(await c.get("/admin/catalog", headers=viewer), "get", "/admin/catalog")
    assert set(status["providers"]) == {"hub88", "slotegrator"}
    await rec.check(await c.get("/admin/catalog"), "get", "/admin/catalog")
    refresh = "/admin/catalog/refresh"
    refreshed = await rec.check(await c.post(refresh, headers=ops), "post", refresh)
    assert refreshed["refreshed"] == {"hub88": "fetched", "slotegrator": "fetched"}
    await rec.check(await c.post(refresh, headers=viewer), "post", refresh)
    await rec.check(await c.post(refresh + "?provider=nope", headers=ops), "post", refresh)
    await rec.check(await c.post(refresh + "?x=1", headers=ops), "post", refresh)
    await rec.check(await c.post(refresh), "post", refresh)
    assert rec.seen == {
        ("get", "/admin/catalog"): {200, 401},
        ("post", "/admin/catalog/refresh"): {200, 400, 401, 403, 404},
    }
