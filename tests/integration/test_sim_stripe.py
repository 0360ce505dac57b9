"""The Stripe adapter against the Stripe simulator, over a real socket."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from adapters import stripe as adapter_module
from adapters.base import (
    PaymentRequest,
    PaymentResult,
    ProviderError,
    UpstreamRequest,
    UpstreamResponse,
    WebhookRejected,
)
from simulators import stripe as sim_module
from simulators.faults import Faults, SimulatorServer

SECRET_KEY = "sk_test_sim0000000000000000000000"
WEBHOOK_SECRET = "whsec_sim000000000000000000000000"


def make_adapter(secret_key: str = SECRET_KEY) -> adapter_module.StripeAdapter:
    return adapter_module.create(
        "stripe", {"secret_key": secret_key, "webhook_secret": WEBHOOK_SECRET}
    )


def make_request(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "type": "deposit",
        "amount": 2500,
        "currency": "EUR",
        "player_id": "p-7f3a",
        "method_type": "card",
        "return_url": None,
        "metadata": {"campaign": "welcome"},
        "reference": "pay_01HZX",
        "idempotency_key": "idem-1",
    }
    fields.update(overrides)
    return PaymentRequest(**fields)


@dataclass
class Receiver:
    url: str
    deliveries: asyncio.Queue[tuple[CIMultiDict[str], bytes]] = field(
        default_factory=asyncio.Queue
    )

    async def next(self) -> tuple[CIMultiDict[str], bytes]:
        return await asyncio.wait_for(self.deliveries.get(), timeout=5)


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    """A stand-in for the gateway's webhook route: records and acknowledges."""
    ack_status, ack_type, ack_body = make_adapter().webhook_ack()
    holder: list[Receiver] = []

    async def hook(request: web.Request) -> web.Response:
        holder[0].deliveries.put_nowait((request.headers.copy(), await request.read()))
        return web.Response(status=ack_status, body=ack_body, content_type=ack_type)

    app = web.Application()
    app.router.add_post("/webhooks/stripe", hook)
    server = await aiohttp_server(app)
    holder.append(Receiver(url=str(server.make_url("/webhooks/stripe"))))
    return holder[0]


async def start_sim(**settings: Any) -> SimulatorServer:
    settings.setdefault("secret_key", SECRET_KEY)
    return await SimulatorServer(sim_module.create_app(**settings)).start()


@pytest.fixture
async def sim(receiver: Receiver) -> AsyncIterator[SimulatorServer]:
    server = await start_sim(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET)
    yield server
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send(
    http: aiohttp.ClientSession, server: SimulatorServer, req: UpstreamRequest
) -> UpstreamResponse:
    async with http.request(
        req.method, server.url + req.path, headers=dict(req.headers), data=req.body or None
    ) as resp:
        return UpstreamResponse(resp.status, resp.headers.copy(), await resp.read())


async def create(
    http: aiohttp.ClientSession, server: SimulatorServer, request: PaymentRequest,
    adapter: adapter_module.StripeAdapter | None = None,
) -> PaymentResult:
    adapter = adapter or make_adapter()
    upstream = await send(http, server, adapter.create_request(request))
    return adapter.parse_create(upstream, request)


async def get(
    http: aiohttp.ClientSession, server: SimulatorServer, reference: str
) -> PaymentResult:
    adapter = make_adapter()
    return adapter.parse_get(await send(http, server, adapter.get_request(reference)))


async def complete(
    http: aiohttp.ClientSession, server: SimulatorServer, reference: str, outcome: str,
) -> tuple[int, dict[str, Any]]:
    url = f"{server.url}/_sim/payment_intents/{reference}/complete"
    async with http.post(url, json={"outcome": outcome}) as resp:
        return resp.status, await resp.json()


async def listed(http: aiohttp.ClientSession, server: SimulatorServer) -> list[dict[str, Any]]:
    req = UpstreamRequest("GET", "/v1/payment_intents?limit=100",
                          make_adapter().health_request().headers)
    resp = await send(http, server, req)
    assert resp.status == 200
    return json.loads(resp.body)["data"]


# ---- create, replay, read back ----------------------------------------------------------


async def test_create_requires_action_with_client_secret(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    result = await create(http, sim, make_request())
    assert result.status == "requires_action"
    assert result.provider_reference.startswith("pi_")
    assert (result.amount, result.currency) == (2500, "EUR")
    assert result.next_action is not None
    assert result.next_action.type == "sdk"
    assert result.next_action.provider == "stripe"
    assert result.next_action.client_secret is not None
    assert result.next_action.client_secret.startswith(f"{result.provider_reference}_secret_")

    [stored] = await listed(http, sim)
    assert stored["metadata"] == {"campaign": "welcome", "gateway_reference": "pay_01HZX",
                                  "player_id": "p-7f3a", "type": "deposit"}
    assert stored["payment_method_types"] == ["card"]
    assert stored["currency"] == "eur"
    assert stored["description"] == "deposit pay_01HZX"
    assert stored["capture_method"] == "automatic_async"


async def test_same_key_replays_one_intent(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    adapter = make_adapter()
    request = make_request()
    first = await send(http, sim, adapter.create_request(request))
    second = await send(http, sim, adapter.create_request(request))
    assert (first.status, second.status) == (200, 200)
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.body == first.body
    assert (adapter.parse_create(first, request).provider_reference
            == adapter.parse_create(second, request).provider_reference)
    assert sim.stats["/v1/payment_intents"] == 2
    assert len(await listed(http, sim)) == 1


async def test_same_key_other_amount_is_an_idempotency_error(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    await create(http, sim, make_request())
    with pytest.raises(ProviderError) as info:
        await create(http, sim, make_request(amount=2600))
    err = info.value
    assert (err.status, err.provider_code) == (400, "idempotency_error")
    assert (err.rejected, err.failover_safe, err.retry_same) == (True, False, False)
    assert len(await listed(http, sim)) == 1


async def test_a_key_in_use_by_a_running_request_is_409_idempotency_error(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    sim.faults = Faults(hold_ms=500)
    adapter = make_adapter()
    request = make_request()
    first = asyncio.create_task(send(http, sim, adapter.create_request(request)))
    await asyncio.sleep(0.1)
    second = await send(http, sim, adapter.create_request(request))
    assert second.status == 409
    assert json.loads(second.body)["error"]["type"] == "idempotency_error"
    with pytest.raises(ProviderError) as info:
        adapter.parse_create(second, request)
    err = info.value
    # Stripe holds a request under this key: only the same key may ask again.
    assert (err.retry_same, err.failover_safe) == (True, False)
    assert (await first).status == 200
    assert len(await listed(http, sim)) == 1


async def test_a_failed_validation_is_not_saved_under_the_key(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ProviderError) as info:
        await create(http, sim, make_request(currency="XYZ"))
    assert (info.value.rejected, info.value.failover_safe) == (True, True)
    assert info.value.status == 400
    # Stripe saves no result for a request that failed validation: the key is still free.
    result = await create(http, sim, make_request())
    assert result.status == "requires_action"


async def test_wrong_key_is_failover_safe(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ProviderError) as info:
        await create(http, sim, make_request(), make_adapter("sk_test_wrong000000000000"))
    err = info.value
    assert err.status == 401
    assert (err.rejected, err.failover_safe, err.retry_same) == (True, True, False)
    assert await listed(http, sim) == []


async def test_missing_auth_is_401(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    req = make_adapter().create_request(make_request())
    headers = {k: v for k, v in req.headers.items() if k != "Authorization"}
    resp = await send(http, sim, UpstreamRequest(req.method, req.path, headers, req.body))
    assert resp.status == 401
    assert json.loads(resp.body)["error"]["type"] == "authentication_error"


async def test_get_reads_back_and_unknown_is_404(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    created = await create(http, sim, make_request())
    assert await get(http, sim, created.provider_reference) == created
    with pytest.raises(ProviderError) as info:
        await get(http, sim, "pi_doesnotexist")
    err = info.value
    assert (err.status, err.provider_code, err.rejected) == (404, "resource_missing", True)


async def test_health_request(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    resp = await send(http, sim, make_adapter().health_request())
    assert resp.status == 200
    assert json.loads(resp.body) == {"object": "list", "data": [], "has_more": False,
                                     "url": "/v1/payment_intents"}


async def test_json_body_is_refused(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    headers = dict(make_adapter().health_request().headers)
    async with http.post(f"{sim.url}/v1/payment_intents", headers=headers,
                         json={"amount": 2500, "currency": "eur"}) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert "application/x-www-form-urlencoded" in error["message"]
    assert await listed(http, sim) == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"amount": 0}, "parameter_invalid_integer"),
     ({"amount": 100_000_000}, "amount_too_large"),
     ({"currency": "XYZ"}, "invalid_request_error"),
     ({"metadata": {"k" * 41: "v"}}, "invalid_request_error")],
)
async def test_validation_errors_are_failover_safe(
    sim: SimulatorServer, http: aiohttp.ClientSession, overrides: dict[str, Any], code: str
) -> None:
    with pytest.raises(ProviderError) as info:
        await create(http, sim, make_request(**overrides))
    err = info.value
    assert (err.status, err.provider_code) == (400, code)
    assert (err.rejected, err.failover_safe, err.retry_same) == (True, True, False)


async def test_sepa_debit_in_another_currency_is_refused_as_stripe_does(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    # The adapter never sends it (it refuses before sending); the simulator still refuses
    # it the way Stripe does, for whoever does.
    request = make_adapter().create_request(make_request(method_type="bank_transfer"))
    body = request.body.replace(b"currency=eur", b"currency=usd")
    assert body != request.body
    forged = UpstreamRequest(request.method, request.path, request.headers, body)
    with pytest.raises(ProviderError) as info:
        make_adapter().parse_create(await send(http, sim, forged), make_request())
    err = info.value
    assert (err.status, err.provider_code) == (400, "payment_intent_invalid_parameter")


async def test_bank_transfer_in_eur_is_sepa_debit(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    result = await create(http, sim, make_request(method_type="bank_transfer"))
    assert result.status == "requires_action"
    [stored] = await listed(http, sim)
    assert stored["payment_method_types"] == ["sepa_debit"]


# ---- magic amounts ----------------------------------------------------------------------


async def test_decline_amount_is_a_failed_payment(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    result = await create(http, sim, make_request(amount=sim_module.DECLINE_AMOUNT))
    assert result.status == "failed"
    assert result.decline_code == "generic_decline"
    assert result.provider_reference.startswith("pi_")
    # Stripe lets the player try another card on the same intent.
    again = await get(http, sim, result.provider_reference)
    assert again.status == "requires_action"


async def test_api_error_amount_is_ambiguous_and_replays_the_500(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    request = make_request(amount=sim_module.API_ERROR_AMOUNT)
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            await create(http, sim, request)
        err = info.value
        assert err.status == 500
        assert (err.rejected, err.failover_safe, err.retry_same) == (False, False, True)
    [stored] = await listed(http, sim)  # the provider did act
    assert stored["amount"] == sim_module.API_ERROR_AMOUNT


# ---- webhooks ---------------------------------------------------------------------------


async def test_completion_sends_a_webhook_the_adapter_accepts(
    sim: SimulatorServer, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    created = await create(http, sim, make_request())
    status, answer = await complete(http, sim, created.provider_reference, "succeeded")
    assert status == 200
    assert answer["delivery"] == {"status": 200, "error": None}
    headers, body = await receiver.next()

    adapter = make_adapter()
    [event] = adapter.verify_webhook(headers, body, time.time())
    assert event.type == "payment.succeeded"
    assert event.event_id == answer["event"]["id"]
    assert event.provider_reference == created.provider_reference
    assert event.merchant_reference == "pay_01HZX"
    assert (event.amount, event.currency) == (2500, "EUR")
    assert event.occurred_at is not None and event.occurred_at.endswith("Z")
    assert (await get(http, sim, created.provider_reference)).status == "succeeded"

    with pytest.raises(WebhookRejected, match="signature mismatch"):
        adapter.verify_webhook(headers, body.replace(b'"amount": 2500', b'"amount": 1'),
                               time.time())
    with pytest.raises(WebhookRejected, match="tolerance"):
        adapter.verify_webhook(headers, body, time.time() + 301)
    stripped = headers.copy()
    del stripped["Stripe-Signature"]
    with pytest.raises(WebhookRejected, match="missing"):
        adapter.verify_webhook(stripped, body, time.time())


@pytest.mark.parametrize(
    ("outcome", "event_type", "status"),
    [("payment_failed", "payment.failed", "requires_action"),
     ("canceled", "payment.canceled", "canceled"),
     ("processing", "payment.processing", "processing")],
)
async def test_other_outcomes(
    sim: SimulatorServer, http: aiohttp.ClientSession, receiver: Receiver,
    outcome: str, event_type: str, status: str,
) -> None:
    created = await create(http, sim, make_request())
    assert (await complete(http, sim, created.provider_reference, outcome))[0] == 200
    headers, body = await receiver.next()
    [event] = make_adapter().verify_webhook(headers, body, time.time())
    assert event.type == event_type
    assert (await get(http, sim, created.provider_reference)).status == status


async def test_requires_action_outcome_gives_a_redirect(
    sim: SimulatorServer, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    created = await create(http, sim, make_request())
    await complete(http, sim, created.provider_reference, "requires_action")
    headers, body = await receiver.next()
    [event] = make_adapter().verify_webhook(headers, body, time.time())
    assert event.type == "payment.requires_action"
    result = await get(http, sim, created.provider_reference)
    assert result.next_action is not None
    assert result.next_action.type == "redirect"
    assert result.next_action.url is not None
    assert result.next_action.url.startswith("https://hooks.stripe.com/")


async def test_resend_delivers_the_same_event_again(
    sim: SimulatorServer, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    created = await create(http, sim, make_request())
    _, answer = await complete(http, sim, created.provider_reference, "succeeded")
    first = make_adapter().verify_webhook(*await receiver.next(), time.time())
    async with http.post(f"{sim.url}/_sim/events/{answer['event']['id']}/resend") as resp:
        assert resp.status == 200
    second = make_adapter().verify_webhook(*await receiver.next(), time.time())
    assert first == second
    async with http.get(f"{sim.url}/_sim/events") as resp:
        [entry] = (await resp.json())["data"]
    assert [d["status"] for d in entry["deliveries"]] == [200, 200]


async def test_control_endpoint_errors(
    sim: SimulatorServer, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    assert (await complete(http, sim, "pi_nope", "succeeded"))[0] == 404
    created = await create(http, sim, make_request())
    assert (await complete(http, sim, created.provider_reference, "refunded"))[0] == 400
    assert (await complete(http, sim, created.provider_reference, "succeeded"))[0] == 200
    status, answer = await complete(http, sim, created.provider_reference, "canceled")
    assert status == 400
    assert answer["error"]["code"] == "payment_intent_unexpected_state"
    assert receiver.deliveries.qsize() == 1
    assert sim.stats["/v1/payment_intents"] == 1  # control calls are not counted


async def test_auto_complete_succeeds_with_a_webhook(
    receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    server = await start_sim(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET,
                             auto_complete_s=0.05)
    try:
        created = await create(http, server, make_request())
        assert created.status == "requires_action"
        headers, body = await receiver.next()
        [event] = make_adapter().verify_webhook(headers, body, time.time())
        assert (event.type, event.provider_reference) == (
            "payment.succeeded", created.provider_reference
        )
        assert (await get(http, server, created.provider_reference)).status == "succeeded"
    finally:
        await server.close()


async def test_pending_auto_completions_are_cancelled_on_cleanup(
    http: aiohttp.ClientSession,
) -> None:
    server = await start_sim(auto_complete_s=60)
    await create(http, server, make_request())
    tasks = list(server.app[sim_module.STATE].tasks)
    assert len(tasks) == 1
    await server.close()
    assert tasks[0].cancelled()


def test_create_app_checks_settings() -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        sim_module.create_app(secret_key=SECRET_KEY, webhook_url="http://127.0.0.1:1/x")
    with pytest.raises(ValueError, match="api_version"):
        sim_module.create_app(secret_key=SECRET_KEY, api_version="latest")
    with pytest.raises(ValueError, match="secret_key"):
        sim_module.create_app(secret_key="")


# ---- faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["error", "garbage", "truncated"])
async def test_faults_are_ambiguous(
    sim: SimulatorServer, http: aiohttp.ClientSession, mode: str
) -> None:
    sim.faults = Faults(mode=mode)
    with pytest.raises(ProviderError) as info:
        await create(http, sim, make_request())
    err = info.value
    assert (err.rejected, err.failover_safe, err.retry_same) == (False, False, True)
    assert err.status == (500 if mode == "error" else 200)


async def test_rate_limited_fault_is_failover_safe(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    sim.faults = Faults(mode="rate_limited", retry_after_s=3)
    with pytest.raises(ProviderError) as info:
        await create(http, sim, make_request())
    err = info.value
    assert (err.status, err.retry_after_s) == (429, 3.0)
    assert (err.rejected, err.failover_safe, err.retry_same) == (True, True, False)


async def test_fail_next_then_recovers(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    sim.faults = Faults(fail_next=1)
    with pytest.raises(ProviderError):
        await create(http, sim, make_request())
    result = await create(http, sim, make_request())
    assert result.status == "requires_action"
    assert sim.stats["/v1/payment_intents"] == 2


# ---- the simulator's own checks ---------------------------------------------------------


async def raw(
    http: aiohttp.ClientSession, server: SimulatorServer, method: str, path: str,
    body: bytes | None = None, **headers: str,
) -> tuple[int, CIMultiDict[str], dict[str, Any]]:
    base_headers = dict(make_adapter().health_request().headers)
    base_headers["Content-Type"] = "application/x-www-form-urlencoded"
    base_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    async with http.request(method, server.url + path, data=body, headers=base_headers) as resp:
        return resp.status, resp.headers.copy(), await resp.json()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param"),
    [
        ("POST", "/v1/payment_intents", b"amount=100&currency=eur&customer=cus_1", 400,
         "customer"),
        ("POST", "/v1/payment_intents", b"currency=eur", 400, "amount"),
        ("POST", "/v1/payment_intents", b"amount=1.5&currency=eur", 400, "amount"),
        ("POST", "/v1/payment_intents", b"amount=100", 400, "currency"),
        ("POST", "/v1/payment_intents", b"amount=100&currency=eur&metadata=x&metadata[a]=b",
         400, "metadata"),
        ("POST", "/v1/payment_intents",
         b"amount=100&currency=eur&payment_method_types[]=card"
         b"&automatic_payment_methods[enabled]=true", 400, "payment_method_types"),
        ("POST", "/v1/payment_intents", b"amount=100&currency=eur&return_url=https://x", 400,
         "return_url"),
        ("GET", "/v1/payment_intents?limit=0", None, 400, "limit"),
        ("GET", "/v1/payment_intents?limit=abc", None, 400, "limit"),
        ("GET", "/v1/payment_intents?customer=cus_1", None, 400, "customer"),
    ],
)
async def test_simulator_validation(
    sim: SimulatorServer, http: aiohttp.ClientSession, method: str, path: str,
    body: bytes | None, status: int, param: str,
) -> None:
    got, _, answer = await raw(http, sim, method, path, body)
    assert got == status
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param
    assert await listed(http, sim) == []


async def test_unknown_route_and_bad_version(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    status, _, answer = await raw(http, sim, "POST", "/v1/transfers", b"amount=1")
    assert status == 404
    assert answer["error"]["message"] == "Unrecognized request URL (POST: /v1/transfers)."
    status, _, answer = await raw(http, sim, "GET", "/v1/payment_intents",
                                  Stripe_Version="yesterday")
    assert status == 400
    assert "Invalid Stripe API version" in answer["error"]["message"]


async def test_version_header_is_honoured(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    status, headers, answer = await raw(
        http, sim, "POST", "/v1/payment_intents", b"amount=100&currency=usd",
        Stripe_Version="2023-10-16",
    )
    assert status == 200
    assert headers["Stripe-Version"] == "2023-10-16"
    assert headers["Request-Id"].startswith("req_")
    assert answer["capture_method"] == "automatic"
    assert answer["automatic_payment_methods"] == {"enabled": True, "allow_redirects": "always"}
    assert answer["status"] == "requires_payment_method"


async def test_basic_auth_with_the_key_as_user(
    sim: SimulatorServer, http: aiohttp.ClientSession
) -> None:
    auth = "Basic " + base64.b64encode(f"{SECRET_KEY}:".encode()).decode()
    status, _, answer = await raw(http, sim, "GET", "/v1/payment_intents", Authorization=auth)
    assert (status, answer["object"]) == (200, "list")
