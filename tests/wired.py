"""A gateway wired to the simulators and to a casino backend that receives its events.

The gateway listens on a port picked before the simulators start, so they can be told where
to deliver their webhooks. Shared by the webhook, event and payment-ledger tests.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.events.delivery import SIGNATURE_HEADER, verify_signature
from gateway.events.hub import HUB, EventHub
from gateway.http.app import create_app
from gateway.http.context import GATEWAY
from gateway.runtime.gateway import Gateway
from simulators import adyen as adyen_sim
from simulators import stripe as stripe_sim
from simulators.faults import SimulatorServer
from simulators.stack import DemoSecrets, Stack, start_stack
from tests.conftest import ALL_SIMULATORS, base_config, build_config, merge, trustly_provider
from tests.procs import free_port

SECRET_ENV = "TEST_GATEWAY_EVENTS_SECRET"
EVENTS_SECRET = "evsec_test_" + uuid.uuid4().hex
DEPOSIT = {
    "type": "deposit",
    "amount": 2500,
    "currency": "EUR",
    "player_id": "player-42",
    "method": {"type": "card"},
    "return_url": "https://casino.example/cashier",
}
ADYEN_ONLY = {"routes": {"payments.create": {"providers": ["adyen"]}}}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# ---- the test backend ---------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def event(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Backend:
    """The casino backend: checks each signature and answers `status`."""

    secret: str
    server: SimulatorServer | None = None
    received: list[Received] = field(default_factory=list)
    status: int = 200
    attempts: int = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/gateway-events"

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        header = request.headers.get(SIGNATURE_HEADER, "")
        verified = verify_signature(self.secret, header, body, time.time())
        if self.status < 300:
            self.received.append(Received(dict(request.headers), body, verified))
        return web.Response(status=self.status if verified else 401)

    def events(self) -> list[dict[str, Any]]:
        return [r.event for r in self.received]


async def start_backend(secret: str = EVENTS_SECRET, port: int = 0) -> Backend:
    backend = Backend(secret)
    app = web.Application()
    app.router.add_post("/gateway-events", backend.handle)
    backend.server = await SimulatorServer(app, "127.0.0.1", port).start()
    return backend


# ---- a gateway wired to the simulators and the backend -----------------------------------


@dataclass
class Wired:
    client: TestClient
    app: web.Application
    stack: Stack
    backend: Backend | None

    @property
    def gateway(self) -> Gateway:
        return self.app[GATEWAY]

    @property
    def hub(self) -> EventHub:
        return self.app[HUB]

    async def pay(self, **changes: Any) -> dict[str, Any]:
        headers = {"Idempotency-Key": uuid.uuid4().hex, **changes.pop("headers", {})}
        resp = await self.client.post("/v1/payments", json={**DEPOSIT, **changes}, headers=headers)
        assert resp.status == 201, await resp.text()
        payment: dict[str, Any] = await resp.json()
        return payment

    async def get(self, payment_id: str) -> dict[str, Any]:
        resp = await self.client.get(f"/v1/payments/{payment_id}")
        assert resp.status == 200, await resp.text()
        payment: dict[str, Any] = await resp.json()
        return payment

    async def stored_status(self, payment_id: str) -> str:
        record = await self.gateway.ledger.payment(payment_id)
        assert record is not None
        return record.status

    async def sim(self, name: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.stack.url(name) + path
        async with self.client.session.post(url, json=body or {}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def stripe_complete(self, intent_id: str, outcome: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.sim(
            "stripe", f"/_sim/payment_intents/{intent_id}/complete", {"outcome": outcome}
        )
        return answer

    async def adyen_complete(self, psp: str, outcome: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.sim(
            "adyen", f"/_sim/payments/{psp}/complete", {"outcome": outcome}
        )
        return answer

    async def trustly_notify(self, order_id: str, method: str, refund: bool = False) -> Any:
        answer = await self.sim(
            "trustly", f"/_sim/orders/{order_id}/notify", {"method": method, "refund": refund}
        )
        assert answer["delivery"]["answered_ok"], answer
        return answer

    async def intent(self, intent_id: str) -> dict[str, Any]:
        auth = {"Authorization": f"Bearer {self.stack.secrets.stripe_secret_key}"}
        url = f"{self.stack.url('stripe')}/v1/payment_intents/{intent_id}"
        async with self.client.session.get(url, headers=auth) as resp:
            intent: dict[str, Any] = await resp.json()
            return intent

    async def webhook(
        self, provider: str, body: bytes, headers: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        # A stream for large bodies: aiohttp warns about sending them as raw bytes.
        data = io.BytesIO(body) if len(body) > 64 * 1024 else body
        resp: aiohttp.ClientResponse = await self.client.post(
            f"/v1/webhooks/{provider}", data=data, headers=headers or {}
        )
        await resp.read()
        return resp


MakeWired = Callable[..., Awaitable[Wired]]


def events_settings(backend: Backend | None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "backoff_initial_s": 0.1,
        "backoff_max_s": 1,
        "stream": {"heartbeat_s": 0.2},
    }
    if backend is not None:
        settings.update(webhook_url=backend.url, secret_env=SECRET_ENV)
    return settings


@pytest.fixture
async def make_wired(
    demo_secrets: DemoSecrets, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[MakeWired]:
    monkeypatch.setenv(SECRET_ENV, EVENTS_SECRET)
    opened: list[Wired] = []

    async def make(
        changes: dict[str, Any] | None = None,
        *,
        backend: Backend | bool = True,
        **app_options: Any,
    ) -> Wired:
        if backend is True:
            backend = await start_backend()
        sink = backend if isinstance(backend, Backend) else None
        port = free_port()
        stack = await start_stack(
            demo_secrets, ALL_SIMULATORS, webhook_base_url=f"http://127.0.0.1:{port}"
        )
        doc = merge(base_config(stack), {"events": events_settings(sink)})
        # Trustly notifies the NotificationURL each order names: this gateway's.
        hook = f"http://127.0.0.1:{port}/v1/webhooks/trustly"
        doc["providers"]["trustly"] = trustly_provider(stack, hook)
        doc = merge(doc, changes or {})
        app = create_app(build_config(doc, demo_secrets), **app_options)
        client = TestClient(TestServer(app, host="127.0.0.1", port=port))
        wired = Wired(client, app, stack, sink)
        opened.append(wired)
        await client.start_server()
        return wired

    yield make
    for wired in opened:
        await wired.client.close()
        await wired.stack.close()
        if wired.backend is not None and wired.backend.server is not None:
            await wired.backend.server.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def settle(w: Wired, quiet_s: float = 0.5) -> None:
    """Let deliveries finish, then wait a little more so an extra one would show."""
    await w.hub.worker.join(5)
    await asyncio.sleep(quiet_s)


# ---- events made by hand ---------------------------------------------------------------------


def stripe_event(intent: dict[str, Any], event_type: str = "payment_intent.succeeded") -> bytes:
    intent = {**intent, "status": event_type.rpartition(".")[2]}
    event = {
        "id": "evt_" + uuid.uuid4().hex[:24],
        "object": "event",
        "created": int(time.time()),
        "data": {"object": intent},
        "type": event_type,
    }
    return json.dumps(event).encode()


def stripe_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    t = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "Stripe-Signature": f"t={t},v1={stripe_sim.sign(secret, t, body)}",
    }


def adyen_notification(
    hmac_key: str, psp: str, reference: str, value: int, event_code: str = "AUTHORISATION"
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "additionalData": {},
        "amount": {"value": value, "currency": "EUR"},
        "eventCode": event_code,
        "eventDate": "2026-01-02T03:04:05+01:00",
        "merchantAccountCode": "DemoCasino",
        "merchantReference": reference,
        "pspReference": psp,
        "success": "true",
    }
    item["additionalData"]["hmacSignature"] = adyen_sim.sign_notification(
        bytes.fromhex(hmac_key), item
    )
    return {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
