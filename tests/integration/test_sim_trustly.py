"""The Trustly adapter against the Trustly simulator over real sockets: signed calls both ways,
notifications answered with a signed OK, and the fault controls. Keys are made at test time
(the session's DemoSecrets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters import trustly
from adapters.base import (
    PaymentEvent,
    PaymentRequest,
    ProviderError,
    RefundRequest,
    UpstreamRequest,
    UpstreamResponse,
    WebhookRejected,
)
from simulators import trustly as trustly_sim
from simulators.faults import Faults, SimulatorServer
from simulators.stack import TRUSTLY_USERNAME, DemoSecrets


class Receiver:
    """The gateway's side of Trustly notifications: verify with the adapter, answer OK."""

    def __init__(self, adapter: trustly.TrustlyAdapter) -> None:
        self.adapter = adapter
        self.events: list[PaymentEvent] = []
        self.rejected = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            events = self.adapter.verify_webhook(request.headers, body, 0.0)
        except WebhookRejected:
            self.rejected += 1
            return web.Response(status=401, text="rejected")
        self.events.extend(events)
        status, content_type, answer = self.adapter.webhook_ack(body)
        return web.Response(status=status, content_type=content_type, body=answer)


def make_adapter(demo: DemoSecrets, url: str, **changes: str) -> trustly.TrustlyAdapter:
    credentials = {
        "username": TRUSTLY_USERNAME,
        "password": demo.trustly_password,
        "private_key": demo.trustly_merchant_private_pem,
        "trustly_public_key": demo.trustly_public_pem,
        "notification_url": url,
        **changes,
    }
    return trustly.create("trustly", credentials)


def deposit(**changes: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "type": "deposit",
        "amount": 2500,
        "currency": "SEK",
        "player_id": "player-7",
        "method_type": "bank_transfer",
        "return_url": "https://casino.example/cashier",
        "metadata": {},
        "reference": "gw_sim_deposit_1",
        "idempotency_key": "cgw-sim-1",
        "country": "SE",
    }
    fields.update(changes)
    return PaymentRequest(**fields)


@pytest.fixture
async def sim(demo_secrets: DemoSecrets) -> AsyncIterator[SimulatorServer]:
    server = await SimulatorServer(
        trustly_sim.create_app(
            username=TRUSTLY_USERNAME,
            password=demo_secrets.trustly_password,
            merchant_public_key_pem=demo_secrets.trustly_merchant_public_pem,
            trustly_private_key_pem=demo_secrets.trustly_private_pem,
        )
    ).start()
    yield server
    await server.close()


@pytest.fixture
async def receiver(
    aiohttp_server: Any, demo_secrets: DemoSecrets
) -> tuple[Receiver, trustly.TrustlyAdapter]:
    holder: dict[str, Receiver] = {}

    async def handle(request: web.Request) -> web.Response:
        return await holder["recv"].handle(request)

    app = web.Application()
    app.router.add_post("/v1/webhooks/trustly", handle)
    server = await aiohttp_server(app)
    adapter = make_adapter(demo_secrets, str(server.make_url("/v1/webhooks/trustly")))
    holder["recv"] = Receiver(adapter)
    return holder["recv"], adapter


async def send(
    http: aiohttp.ClientSession, sim: SimulatorServer, request: UpstreamRequest
) -> UpstreamResponse:
    async with http.request(
        request.method, sim.url + request.path, headers=request.headers, data=request.body
    ) as resp:
        return UpstreamResponse(resp.status, dict(resp.headers), await resp.read())


async def control(
    http: aiohttp.ClientSession, sim: SimulatorServer, path: str, body: Any
) -> tuple[int, Any]:
    async with http.post(sim.url + path, json=body) as resp:
        return resp.status, await resp.json()


async def test_a_deposit_goes_to_the_bank_flow_and_its_credit_is_answered_ok(
    sim: SimulatorServer, receiver: tuple[Receiver, trustly.TrustlyAdapter]
) -> None:
    recv, adapter = receiver
    request = deposit()
    async with aiohttp.ClientSession() as http:
        result = adapter.parse_create(await send(http, sim, adapter.create_request(request)),
                                      request)
        assert result.status == "requires_action"
        assert result.next_action is not None and result.next_action.url is not None
        assert result.next_action.url.startswith(trustly_sim.CHECKOUT_URL)
        for method in ("pending", "credit"):
            status, answer = await control(
                http, sim, f"/_sim/orders/{result.provider_reference}/notify", {"method": method}
            )
            assert status == 200
            assert answer["delivery"] == {"status": 200, "answered_ok": True, "error": None}
    assert [e.type for e in recv.events] == ["payment.processing", "payment.succeeded"]
    assert {e.provider_reference for e in recv.events} == {result.provider_reference}
    assert recv.events[1].amount == 2500 and recv.events[1].merchant_reference == request.reference


async def test_a_withdrawal_is_confirmed_then_sent(
    sim: SimulatorServer, receiver: tuple[Receiver, trustly.TrustlyAdapter]
) -> None:
    recv, adapter = receiver
    request = deposit(type="withdrawal", reference="gw_sim_payout", idempotency_key="cgw-p")
    async with aiohttp.ClientSession() as http:
        result = adapter.parse_create(await send(http, sim, adapter.create_request(request)),
                                      request)
        assert result.status == "pending" and result.next_action is not None
        for method in ("debit", "payoutconfirmation"):
            await control(
                http, sim, f"/_sim/orders/{result.provider_reference}/notify", {"method": method}
            )
        async with http.get(sim.url + "/_sim/orders") as resp:
            [order] = (await resp.json())["orders"]
    assert (order["method"], order["amount"], order["state"]) == ("Withdraw", "25.00", "sent")
    assert [e.withdrawal_type for e in recv.events] == ["payment.processing", "payment.succeeded"]


async def test_a_partial_refund_then_its_notification(
    sim: SimulatorServer, receiver: tuple[Receiver, trustly.TrustlyAdapter]
) -> None:
    recv, adapter = receiver
    request = deposit()
    async with aiohttp.ClientSession() as http:
        result = adapter.parse_create(await send(http, sim, adapter.create_request(request)),
                                      request)
        order = result.provider_reference
        await control(http, sim, f"/_sim/orders/{order}/notify", {"method": "credit"})
        refund = RefundRequest(order, 1000, "SEK", "rf_1", "cgw-r-1")
        accepted = adapter.parse_refund(await send(http, sim, adapter.refund_request(refund)),
                                        refund)
        assert accepted.status == "pending"
        # More than is left is refused before anything is refunded.
        over = RefundRequest(order, 1600, "SEK", "rf_2", "cgw-r-2")
        with pytest.raises(ProviderError) as info:
            adapter.parse_refund(await send(http, sim, adapter.refund_request(over)), over)
        assert (info.value.provider_code, info.value.failover_safe) == (
            "ERROR_INVALID_AMOUNT", True
        )
        status, _ = await control(
            http, sim, f"/_sim/orders/{order}/notify", {"method": "debit", "refund": True}
        )
        assert status == 200
    assert recv.events[-1].type == "refund.succeeded" and recv.events[-1].amount == 1000


async def test_a_message_id_is_used_once(
    sim: SimulatorServer, receiver: tuple[Receiver, trustly.TrustlyAdapter]
) -> None:
    _, adapter = receiver
    request = deposit(reference="gw_sim_once")
    async with aiohttp.ClientSession() as http:
        adapter.parse_create(await send(http, sim, adapter.create_request(request)), request)
        with pytest.raises(ProviderError) as info:
            adapter.parse_create(await send(http, sim, adapter.create_request(request)), request)
    assert (info.value.provider_code, info.value.retry_same) == (
        "ERROR_DUPLICATE_MESSAGE_ID", True
    )


async def test_wrong_credentials_and_a_bad_signature_are_refused(
    sim: SimulatorServer, demo_secrets: DemoSecrets
) -> None:
    wrong_password = make_adapter(demo_secrets, "https://x.example/n", password="nope")
    other_key, _ = trustly_sim.generate_keypair()
    wrong_key = make_adapter(demo_secrets, "https://x.example/n", private_key=other_key)
    async with aiohttp.ClientSession() as http:
        for made, code in ((wrong_password, "ERROR_INVALID_CREDENTIALS"),
                           (wrong_key, "ERROR_UNABLE_TO_VERIFY_RSA_SIGNATURE")):
            request = deposit(reference=f"gw_{code}")
            with pytest.raises(ProviderError) as info:
                made.parse_create(await send(http, sim, made.create_request(request)), request)
            assert (info.value.provider_code, info.value.status) == (code, 401)
    assert sim.stats["/api/1"] == 2


async def test_a_notification_not_signed_by_trustly_is_refused_by_the_merchant(
    sim: SimulatorServer, receiver: tuple[Receiver, trustly.TrustlyAdapter]
) -> None:
    recv, adapter = receiver
    request = deposit(reference="gw_sim_forged")
    async with aiohttp.ClientSession() as http:
        result = adapter.parse_create(await send(http, sim, adapter.create_request(request)),
                                      request)
        state = sim.app[trustly_sim.STATE]
        order = state.orders[result.provider_reference]
        forged = trustly_sim.notifications.build(state, order, "credit", None, False)
        forged["params"]["data"]["amount"] = "9999.00"
        async with http.post(order.notification_url, json=forged) as resp:
            assert resp.status == 401
    assert recv.rejected == 1 and recv.events == []


@pytest.mark.parametrize(
    ("faults", "retry_same"),
    [
        (Faults(mode="error"), True),
        (Faults(mode="garbage"), True),
        (Faults(mode="rate_limited", retry_after_s=3), False),
    ],
)
async def test_fault_controls(
    sim: SimulatorServer,
    receiver: tuple[Receiver, trustly.TrustlyAdapter],
    faults: Faults,
    retry_same: bool,
) -> None:
    _, adapter = receiver
    sim.faults = faults
    request = deposit(reference="gw_sim_fault")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderError) as info:
            adapter.parse_create(await send(http, sim, adapter.create_request(request)), request)
    assert info.value.retry_same is retry_same
    assert info.value.failover_safe is not retry_same
    assert sim.stats["/api/1"] == 1


async def test_a_held_request_refuses_a_concurrent_one_with_its_message_id(
    sim: SimulatorServer, receiver: tuple[Receiver, trustly.TrustlyAdapter]
) -> None:
    _, adapter = receiver
    sim.faults = Faults(hold_ms=300)
    request = deposit(reference="gw_sim_held")
    async with aiohttp.ClientSession() as http:
        first = asyncio.ensure_future(send(http, sim, adapter.create_request(request)))
        await asyncio.sleep(0.1)
        second = await send(http, sim, adapter.create_request(request))
        answers = [await first, second]
    assert json.loads(answers[0].body)["result"]["data"]["orderid"]
    assert json.loads(answers[1].body)["error"]["code"] == 637
