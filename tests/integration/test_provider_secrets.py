"""What a provider says stays inside: clients see a classified sentence, operators a redacted
last error, and a provider refusing the gateway's own credentials is a 502 that fails over.

The provider here is a stand-in that answers 401 and echoes the Authorization header it got,
as a mock server given a wrong key did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from simulators.faults import SimulatorServer
from tests.conftest import GatewayUnderTest, MakeGateway
from tests.wired import DEPOSIT

WRONG_KEY = "sk_test_" + secrets.token_hex(16)
KEYS = {"WEB_KEY": "web_" + secrets.token_hex(12), "VIEW_KEY": "view_" + secrets.token_hex(12)}
CLIENTS = {
    "clients": [
        {"id": "web", "key_env": "WEB_KEY", "roles": ["client"]},
        {"id": "ops", "key_env": "VIEW_KEY", "roles": ["viewer"]},
    ]
}
WEB = {"X-API-Key": KEYS["WEB_KEY"]}
VIEWER = {"X-API-Key": KEYS["VIEW_KEY"]}


@pytest.fixture
async def echoing_provider() -> AsyncIterator[SimulatorServer]:
    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        given = request.headers.get("Authorization", "")
        body = {"error": {"type": "authentication_error",
                          "message": f"Invalid API Key provided: {given}"}}
        return web.json_response(body, status=401)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    server = await SimulatorServer(app).start()
    yield server
    await server.close()


async def gateway_on(
    make_gateway: MakeGateway, provider: SimulatorServer, **changes: Any
) -> GatewayUnderTest:
    config: dict[str, Any] = {
        **CLIENTS,
        "providers": {"stripe": {"base_url": provider.url,
                                 "credentials": {"secret_key_env": "TEST_WRONG_STRIPE_KEY"}}},
        "routes": {"payments.create": {"providers": ["stripe"]},
                   "payments.get": {"providers": ["stripe"]}},
    }
    config.update(changes)
    return await make_gateway(config, env={**KEYS, "TEST_WRONG_STRIPE_KEY": WRONG_KEY})


async def pay(gw: GatewayUnderTest) -> tuple[int, str]:
    resp = await gw.client.post(
        "/v1/payments", json=DEPOSIT, headers={**WEB, "Idempotency-Key": uuid.uuid4().hex}
    )
    return resp.status, await resp.text()


async def test_a_refused_key_is_502_and_never_echoed(
    make_gateway: MakeGateway, echoing_provider: SimulatorServer,
    caplog: pytest.LogCaptureFixture,
):
    gw = await gateway_on(make_gateway, echoing_provider)
    with caplog.at_level(logging.DEBUG):
        status, text = await pay(gw)
    assert status == 502
    problem = json.loads(text)
    assert problem["code"] == "provider_unavailable"
    assert problem["detail"] == "stripe refused the gateway's credentials"
    assert WRONG_KEY not in text and "Bearer" not in text
    assert WRONG_KEY not in caplog.text

    metrics = await (await gw.client.get("/metrics")).text()
    assert 'gateway_provider_auth_failures_total{provider="stripe"} 1.0' in metrics

    # A client key sees health only; a viewer sees the last error, redacted.
    public = await (await gw.client.get("/v1/providers/status", headers=WEB)).json()
    assert public["providers"]["stripe"] == {"name": "stripe", "kind": "payments",
                                              "healthy": True}
    ops = await (await gw.client.get("/v1/providers/status", headers=VIEWER)).json()
    last_error = ops["providers"]["stripe"]["last_error"]
    assert last_error.startswith("auth: ") and "Invalid API Key provided" in last_error
    assert WRONG_KEY not in last_error


async def test_a_refused_key_fails_over(
    make_gateway: MakeGateway, echoing_provider: SimulatorServer
):
    gw = await gateway_on(
        make_gateway,
        echoing_provider,
        routes={"payments.create": {"providers": ["stripe", "adyen"]}},
    )
    status, text = await pay(gw)
    assert status == 201, text
    assert json.loads(text)["provider"] == "adyen"


async def test_the_health_probe_takes_a_provider_that_refuses_its_key_out(
    make_gateway: MakeGateway, echoing_provider: SimulatorServer
):
    gw = await gateway_on(
        make_gateway,
        echoing_provider,
        defaults={"health": {"enabled": True, "interval_s": 0.05, "unhealthy_after": 1,
                             "timeout_ms": 500}},
    )
    for _ in range(100):
        ready = await gw.client.get("/readyz")
        if ready.status == 503:
            break
        await asyncio.sleep(0.05)
    assert ready.status == 503
    body = await ready.json()
    assert body["routes"]["payments.create"]["skipped"] == {"stripe": "unhealthy"}
