"""The Adyen adapter against the Adyen simulator over a real socket, webhooks included."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters import adyen
from adapters.base import (
    NextAction,
    PaymentEvent,
    PaymentRequest,
    PaymentResult,
    ProviderError,
    UpstreamRequest,
    UpstreamResponse,
    WebhookRejected,
)
from simulators import adyen as adyen_sim
from simulators.faults import Faults, SimulatorServer

API_KEY = "AQEyhmfxK4_sim_api_key"
MERCHANT = "DemoCasino"
HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
OTHER_HMAC_KEY = "00" * 32
PSP = re.compile(r"^[A-Z0-9]{16}$")


class Receiver:
    """The gateway's side of Adyen webhooks: verify with the adapter, then acknowledge."""

    def __init__(self, adapter: adyen.AdyenAdapter) -> None:
        self.adapter = adapter
        self.bodies: list[bytes] = []
        self.events: list[PaymentEvent] = []
        self.rejected = 0
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        self.arrived.set()
        try:
            events = self.adapter.verify_webhook(request.headers, body, 0.0)
        except WebhookRejected:
            self.rejected += 1
            return web.Response(status=401, text="rejected")
        self.events.extend(events)
        status, content_type, ack = self.adapter.webhook_ack()
        return web.Response(status=status, content_type=content_type, body=ack)


def make_adapter(api_key: str = API_KEY, merchant: str = MERCHANT) -> adyen.AdyenAdapter:
    return adyen.create(
        "adyen", {"api_key": api_key, "merchant_account": merchant, "hmac_key": HMAC_KEY}
    )


def payment_request(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "type": "deposit",
        "amount": 2500,
        "currency": "EUR",
        "player_id": "player-7f3a",
        "method_type": "card",
        "return_url": "https://casino.example/return",
        "metadata": {"campaign": "welcome"},
        "reference": "pay_01HZX",
        "idempotency_key": "idem-5b1d7c",
    }
    fields.update(overrides)
    return PaymentRequest(**fields)


StartSim = Callable[..., Awaitable[SimulatorServer]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    servers: list[SimulatorServer] = []

    async def start(**settings: Any) -> SimulatorServer:
        settings.setdefault("api_key", API_KEY)
        settings.setdefault("merchant_account", MERCHANT)
        server = await SimulatorServer(adyen_sim.create_app(**settings)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def sim(start_sim: StartSim) -> SimulatorServer:
    return await start_sim()


@pytest.fixture
async def receiver(aiohttp_server: Any) -> tuple[Receiver, str]:
    recv = Receiver(make_adapter())
    app = web.Application()
    app.router.add_post("/webhooks/adyen", recv.handle)
    server = await aiohttp_server(app)
    return recv, str(server.make_url("/webhooks/adyen"))


async def send(
    http: aiohttp.ClientSession, server: SimulatorServer, req: UpstreamRequest
) -> UpstreamResponse:
    async with http.request(
        req.method, server.url + req.path, headers=dict(req.headers), data=req.body
    ) as resp:
        return UpstreamResponse(status=resp.status, headers=resp.headers, body=await resp.read())


async def create(
    http: aiohttp.ClientSession,
    server: SimulatorServer,
    request: PaymentRequest,
    adapter: adyen.AdyenAdapter | None = None,
) -> PaymentResult:
    adapter = adapter or make_adapter()
    response = await send(http, server, adapter.create_request(request))
    return adapter.parse_create(response, request)


async def create_error(
    http: aiohttp.ClientSession,
    server: SimulatorServer,
    request: PaymentRequest,
    adapter: adyen.AdyenAdapter | None = None,
) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await create(http, server, request, adapter)
    return info.value


async def stored_payments(http: aiohttp.ClientSession, server: SimulatorServer) -> list[dict]:
    async with http.get(server.url + "/_sim/payments") as resp:
        return (await resp.json())["payments"]


async def complete(
    http: aiohttp.ClientSession, server: SimulatorServer, psp: str, outcome: str
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        f"{server.url}/_sim/payments/{psp}/complete", json={"outcome": outcome}
    ) as resp:
        return resp.status, await resp.json()


# ---- payments ------------------------------------------------------------------------------


async def test_card_payment_needs_a_redirect(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    result = await create(http, sim, payment_request())
    assert result.status == "requires_action"
    assert PSP.match(result.provider_reference)
    assert (result.amount, result.currency) == (2500, "EUR")
    assert result.next_action == NextAction(
        type="redirect",
        url=f"https://checkoutshopper-test.adyen.example/redirect/{result.provider_reference}",
    )
    [stored] = await stored_payments(http, sim)
    assert stored == {
        "pspReference": result.provider_reference,
        "merchantReference": "pay_01HZX",
        "merchantAccount": MERCHANT,
        "amount": {"value": 2500, "currency": "EUR"},
        "refunded": 0,
        "paymentMethodType": "scheme",
        "state": "pending",
    }


@pytest.mark.parametrize("method_type", ["ewallet", "bank_transfer"])
async def test_other_methods_are_pending(
    http: aiohttp.ClientSession, sim: SimulatorServer, method_type: str
) -> None:
    result = await create(http, sim, payment_request(method_type=method_type))
    assert (result.status, result.next_action) == ("processing", None)


async def test_same_idempotency_key_replays_the_first_answer(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    adapter = make_adapter()
    req = adapter.create_request(payment_request())
    first = await send(http, sim, req)
    second = await send(http, sim, req)
    assert (first.status, second.status) == (200, 200)
    assert json.loads(first.body) == json.loads(second.body)
    assert second.headers["Idempotency-Key"] == "idem-5b1d7c"
    one = adapter.parse_create(first, payment_request())
    two = adapter.parse_create(second, payment_request())
    assert one.provider_reference == two.provider_reference
    assert len(await stored_payments(http, sim)) == 1
    assert sim.stats["/v71/payments"] == 2


async def test_same_key_with_another_body_is_an_idempotency_error(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    await create(http, sim, payment_request())
    err = await create_error(http, sim, payment_request(amount=9900))
    assert (err.status, err.provider_code) == (409, "704")
    assert (err.rejected, err.failover_safe, err.retry_same) == (False, False, True)
    assert len(await stored_payments(http, sim)) == 1


async def test_a_key_in_use_by_a_running_request_is_704(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    sim.faults = Faults(hold_ms=500)
    adapter = make_adapter()
    req = adapter.create_request(payment_request())
    first = asyncio.create_task(send(http, sim, req))
    await asyncio.sleep(0.1)
    err = await create_error(http, sim, payment_request())
    assert (err.status, err.provider_code) == (409, "704")
    # Adyen holds a request under this key: only the same key may learn its outcome.
    assert (err.rejected, err.failover_safe, err.retry_same) == (False, False, True)
    assert (await first).status == 200
    assert len(await stored_payments(http, sim)) == 1


async def test_new_key_makes_a_new_payment(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    one = await create(http, sim, payment_request())
    two = await create(http, sim, payment_request(idempotency_key="idem-other"))
    assert one.provider_reference != two.provider_reference
    assert len(await stored_payments(http, sim)) == 2


async def test_magic_amount_is_refused(http: aiohttp.ClientSession, sim: SimulatorServer) -> None:
    result = await create(http, sim, payment_request(amount=adyen_sim.MAGIC_REFUSED))
    assert (result.status, result.decline_code) == ("failed", "2")
    assert PSP.match(result.provider_reference)
    [stored] = await stored_payments(http, sim)
    assert stored["state"] == "refused"


async def test_magic_internal_error_is_ambiguous_and_the_retry_finds_the_payment(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    request = payment_request(amount=adyen_sim.MAGIC_INTERNAL_ERROR)
    err = await create_error(http, sim, request)
    assert (err.status, err.retry_same, err.failover_safe, err.rejected) == (
        500, True, False, False
    )
    [stored] = await stored_payments(http, sim)
    assert stored["pspReference"] in err.message
    # Retrying with the same key gets the payment Adyen recorded, not a second one.
    result = await create(http, sim, request)
    assert result.provider_reference == stored["pspReference"]
    assert result.status == "requires_action"
    assert len(await stored_payments(http, sim)) == 1


# ---- refusals and faults -------------------------------------------------------------------


async def test_wrong_api_key_is_failover_safe(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    err = await create_error(http, sim, payment_request(), make_adapter(api_key="wrong"))
    assert (err.status, err.provider_code) == (401, "000")
    assert (err.failover_safe, err.rejected, err.retry_same) == (True, True, False)
    assert await stored_payments(http, sim) == []


async def test_unknown_merchant_account_is_failover_safe(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    err = await create_error(http, sim, payment_request(), make_adapter(merchant="Other"))
    assert (err.status, err.provider_code, err.failover_safe) == (403, "901", True)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"amount": 0}, "137"), ({"currency": "eur"}, "138"), ({"reference": ""}, "130")],
)
async def test_validation_errors_are_failover_safe(
    http: aiohttp.ClientSession, sim: SimulatorServer, overrides: dict[str, Any], code: str
) -> None:
    err = await create_error(http, sim, payment_request(**overrides))
    assert (err.status, err.provider_code) == (422, code)
    assert (err.failover_safe, err.rejected, err.retry_same) == (True, True, False)
    assert await stored_payments(http, sim) == []


async def test_a_rejected_request_does_not_use_up_its_key(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    await create_error(http, sim, payment_request(amount=0))
    result = await create(http, sim, payment_request())
    assert result.status == "requires_action"


@pytest.mark.parametrize("mode", ["error", "garbage", "truncated"])
async def test_faults_are_ambiguous(
    http: aiohttp.ClientSession, sim: SimulatorServer, mode: str
) -> None:
    sim.faults = Faults(mode=mode)
    err = await create_error(http, sim, payment_request())
    assert (err.retry_same, err.failover_safe, err.rejected) == (True, False, False)
    if mode == "error":
        assert (err.status, err.provider_code) == (500, "905")
    assert await stored_payments(http, sim) == []


async def test_rate_limit_fault_is_failover_safe(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    sim.faults = Faults(mode="rate_limited", retry_after_s=3)
    err = await create_error(http, sim, payment_request())
    assert (err.status, err.failover_safe, err.retry_same, err.retry_after_s) == (
        429, True, False, 3.0
    )


async def test_health_request(http: aiohttp.ClientSession, sim: SimulatorServer) -> None:
    ok = await send(http, sim, make_adapter().health_request())
    assert ok.status == 200
    types = [m["type"] for m in json.loads(ok.body)["paymentMethods"]]
    assert types == ["scheme", "paypal", "bankTransfer_IBAN"]
    denied = await send(http, sim, make_adapter(api_key="wrong").health_request())
    assert denied.status == 401
    assert json.loads(denied.body) == {
        "status": 401, "errorCode": "000", "message": "HTTP Status Response - Unauthorized",
        "errorType": "security",
    }


# ---- webhooks ------------------------------------------------------------------------------


async def test_completed_payment_sends_a_notification_the_adapter_verifies(
    http: aiohttp.ClientSession, start_sim: StartSim, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    server = await start_sim(webhook_url=url, hmac_key=HMAC_KEY)
    result = await create(http, server, payment_request())
    psp = result.provider_reference

    status, answer = await complete(http, server, psp, "authorised")
    assert status == 200
    assert answer["delivery"] == {"status": 200, "body": "[accepted]", "accepted": True,
                                  "error": None}
    assert answer["payment"]["state"] == "authorised"
    [event] = recv.events
    assert event.type == "payment.succeeded"
    assert event.event_id == f"{psp}:AUTHORISATION:true"
    assert (event.provider_reference, event.merchant_reference) == (psp, "pay_01HZX")
    assert (event.amount, event.currency) == (2500, "EUR")
    assert event.occurred_at == answer["notification"]["eventDate"]

    status, answer = await complete(http, server, psp, "refund")
    assert (status, answer["delivery"]["accepted"]) == (200, True)
    refund = recv.events[1]
    # A refund made on Adyen's side for the whole payment: a refund event naming the payment.
    assert refund.type == "refund.succeeded"
    assert refund.provider_reference == psp
    assert refund.refund_reference == answer["notification"]["pspReference"]
    assert refund.event_id.startswith(answer["notification"]["pspReference"] + ":REFUND:")
    async with http.get(server.url + "/_sim/webhooks") as resp:
        deliveries = (await resp.json())["webhooks"]
    assert [d["accepted"] for d in deliveries] == [True, True]


async def test_refused_and_cancelled_notifications(
    http: aiohttp.ClientSession, start_sim: StartSim, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    server = await start_sim(webhook_url=url, hmac_key=HMAC_KEY)
    one = await create(http, server, payment_request())
    two = await create(http, server, payment_request(idempotency_key="idem-2", reference="p2"))
    assert (await complete(http, server, one.provider_reference, "refused"))[0] == 200
    assert (await complete(http, server, two.provider_reference, "cancelled"))[0] == 200
    assert [(e.type, e.provider_reference) for e in recv.events] == [
        ("payment.failed", one.provider_reference),
        ("payment.canceled", two.provider_reference),
    ]


async def test_tampered_notification_is_rejected(
    http: aiohttp.ClientSession, start_sim: StartSim, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    server = await start_sim(webhook_url=url, hmac_key=HMAC_KEY)
    result = await create(http, server, payment_request())
    await complete(http, server, result.provider_reference, "authorised")
    notification = json.loads(recv.bodies[0])
    notification["notificationItems"][0]["NotificationRequestItem"]["amount"]["value"] = 999999
    with pytest.raises(WebhookRejected):
        recv.adapter.verify_webhook({}, json.dumps(notification).encode(), 0.0)


async def test_notification_signed_with_another_key_is_not_accepted(
    http: aiohttp.ClientSession, start_sim: StartSim, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    server = await start_sim(webhook_url=url, hmac_key=OTHER_HMAC_KEY)
    result = await create(http, server, payment_request())
    status, answer = await complete(http, server, result.provider_reference, "authorised")
    assert status == 200
    assert answer["delivery"] == {"status": 401, "body": "rejected", "accepted": False,
                                  "error": None}
    assert (recv.rejected, recv.events) == (1, [])


async def test_unsigned_notification_is_not_accepted(
    http: aiohttp.ClientSession, start_sim: StartSim, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    server = await start_sim(webhook_url=url)
    result = await create(http, server, payment_request())
    _, answer = await complete(http, server, result.provider_reference, "authorised")
    assert answer["notification"]["additionalData"] == {}
    assert answer["delivery"]["accepted"] is False
    assert recv.rejected == 1


async def test_unreachable_webhook_url_is_recorded(
    http: aiohttp.ClientSession, start_sim: StartSim
) -> None:
    server = await start_sim(webhook_url="http://127.0.0.1:9/unreachable", hmac_key=HMAC_KEY)
    result = await create(http, server, payment_request())
    status, answer = await complete(http, server, result.provider_reference, "authorised")
    assert status == 200
    assert answer["delivery"]["accepted"] is False
    assert answer["delivery"]["error"]


async def test_complete_checks_the_payment_and_the_outcome(
    http: aiohttp.ClientSession, sim: SimulatorServer
) -> None:
    result = await create(http, sim, payment_request())
    psp = result.provider_reference
    assert (await complete(http, sim, psp, "refund"))[0] == 409  # not authorised yet
    assert (await complete(http, sim, psp, "teleport"))[0] == 400
    assert (await complete(http, sim, "NOSUCHPAYMENT000", "authorised"))[0] == 404
    status, answer = await complete(http, sim, psp, "authorised")
    assert (status, answer["delivery"]) == (200, None)  # no webhook_url configured
    assert (await complete(http, sim, psp, "refused"))[0] == 409


async def test_auto_complete_authorises_and_notifies(
    http: aiohttp.ClientSession, start_sim: StartSim, receiver: tuple[Receiver, str]
) -> None:
    recv, url = receiver
    server = await start_sim(webhook_url=url, hmac_key=HMAC_KEY, auto_complete_s=0.01)
    result = await create(http, server, payment_request())
    await asyncio.wait_for(recv.arrived.wait(), timeout=5)
    [event] = recv.events
    assert (event.type, event.provider_reference) == (
        "payment.succeeded", result.provider_reference
    )


async def test_pending_auto_completions_are_cancelled_on_cleanup(
    http: aiohttp.ClientSession,
) -> None:
    server = await SimulatorServer(
        adyen_sim.create_app(api_key=API_KEY, auto_complete_s=3600)
    ).start()
    try:
        await create(http, server, payment_request())
        tasks = list(server.app[adyen_sim.STATE].tasks)
        assert len(tasks) == 1
    finally:
        await server.close()
    assert tasks[0].cancelled()
    assert server.app[adyen_sim.STATE].tasks == set()
