"""Events across processes: two gateways on one ledger (two processes on one SQLite file, and
PostgreSQL), and `run --workers 2` on one SQLite file, over real sockets.

Each gateway is `python -m gateway run`. A payment is created through one of them and moved
on by Stripe webhooks (signed here, as the simulator would) sent to the one the test
chooses. The casino backend is a server in this process that records every delivery,
and how many deliveries of one event overlap in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from gateway.events.delivery import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature
from simulators.faults import SimulatorServer
from simulators.stack import Stack
from tests.conftest import base_config, merge
from tests.integration.test_events import SseClient, data
from tests.integration.test_workers import children_of
from tests.pg import create_database, drop_database
from tests.procs import GatewayProcess, free_port
from tests.wired import DEPOSIT, EVENTS_SECRET, SECRET_ENV, stripe_event, stripe_headers

# ---- the casino backend ----------------------------------------------------------------------


@dataclass
class Backend:
    status: int = 200
    hold_s: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted, in arrival order
    attempts: int = 0
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    overlaps: list[str] = field(default_factory=list)  # event ids sent twice at once
    unsigned: int = 0
    server: SimulatorServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        event_id = request.headers.get(EVENT_ID_HEADER, "")
        if not verify_signature(EVENTS_SECRET, request.headers.get(SIGNATURE_HEADER, ""), body,
                                time.time()):
            self.unsigned += 1
            return web.Response(status=401)
        self.in_flight[event_id] += 1
        if self.in_flight[event_id] > 1:
            self.overlaps.append(event_id)
        try:
            await asyncio.sleep(self.hold_s)
            status = self.status
            if status < 300:
                self.received.append(orjson.loads(body))
            return web.Response(status=status)
        finally:
            self.in_flight[event_id] -= 1

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/gateway-events"

    def ids(self) -> list[str]:
        return [e["event_id"] for e in self.received]


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    sink = Backend()
    app = web.Application()
    app.router.add_post("/gateway-events", sink.handle)
    sink.server = await SimulatorServer(app, "127.0.0.1", free_port()).start()
    yield sink
    await sink.server.close()


# ---- gateways on one ledger ------------------------------------------------------------------


@dataclass
class Shared:
    kind: str
    block: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shared]:
    if request.param == "sqlite":
        yield Shared("sqlite", {"backend": "sqlite", "path": str(tmp_path / "ledger.db")})
        return
    url = create_database()
    yield Shared("postgres", {"backend": "postgres", "url_env": "TEST_LEDGER_URL"},
                 {"TEST_LEDGER_URL": url})
    drop_database(url)


Start = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
async def start(
    stack: Stack, tmp_path: Path, shared: Shared, backend: Backend
) -> AsyncIterator[Start]:
    started: list[GatewayProcess] = []

    async def start_one(*, deliver: bool = True, port: int | None = None) -> GatewayProcess:
        events: dict[str, Any] = {
            "backoff_initial_s": 0.1,
            "backoff_max_s": 0.5,
            "timeout_ms": 1000,
            "stream": {"heartbeat_s": 0.5},
        }
        if deliver:
            events.update(webhook_url=backend.url, secret_env=SECRET_ENV)
        config = merge(base_config(stack), {"ledger": shared.block, "events": events})
        env = {**stack.secrets.env(), **shared.env, SECRET_ENV: EVENTS_SECRET}
        proc = GatewayProcess(config, env, tmp_path, port=port)
        started.append(proc)
        return await proc.start()

    yield start_one
    for proc in started:
        proc.stop()


# ---- payments and their webhooks ---------------------------------------------------------------


async def pay(gateway: GatewayProcess, player: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.post(
        gateway.url + "/v1/payments", json={**DEPOSIT, "player_id": player},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    ) as resp:
        assert resp.status == 201, await resp.text()
        payment: dict[str, Any] = await resp.json()
        return payment


async def signed_event(
    stack: Stack, payment: dict[str, Any], status: str
) -> tuple[bytes, dict[str, str]]:
    """A signed Stripe event moving `payment` to `status`, as Stripe would send it."""
    auth = {"Authorization": f"Bearer {stack.secrets.stripe_secret_key}"}
    url = f"{stack.url('stripe')}/v1/payment_intents/{payment['provider_reference']}"
    async with aiohttp.ClientSession() as http, http.get(url, headers=auth) as resp:
        intent = await resp.json()
    body = stripe_event(intent, f"payment_intent.{status}")
    return body, stripe_headers(stack.secrets.stripe_webhook_secret, body)


async def post_webhook(gateway: GatewayProcess, body: bytes, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http, http.post(
        gateway.url + "/v1/webhooks/stripe", data=body, headers=headers
    ) as resp:
        assert resp.status == 200, await resp.text()


async def webhook(
    gateway: GatewayProcess, stack: Stack, payment: dict[str, Any], status: str
) -> None:
    """`payment` moved to `status` by a webhook that `gateway` receives."""
    await post_webhook(gateway, *await signed_event(stack, payment, status))


@asynccontextmanager
async def open_stream(
    gateway: GatewayProcess, query: str, last_event_id: str | None = None
) -> AsyncIterator[SseClient]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with aiohttp.ClientSession() as http, http.get(
        f"{gateway.url}/v1/events?{query}", headers=headers
    ) as response:
        assert response.status == 200, await response.text()
        stream = SseClient(response)
        assert await stream.block() == {"retry": "3000"}
        yield stream


async def eventually(check: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def metric(gateway: GatewayProcess, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(gateway.url + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def in_order(received: list[dict[str, Any]], payment_id: str) -> list[str]:
    """The types the backend took for one payment, first delivery of each event only."""
    seen: set[str] = set()
    types = []
    for event in received:
        if event["payment_id"] == payment_id and event["event_id"] not in seen:
            seen.add(event["event_id"])
            types.append(event["type"])
    return types


# ---- delivery --------------------------------------------------------------------------------


async def test_deliveries_queued_at_a_sigkill_are_delivered_after_the_restart(
    start: Start, stack: Stack, backend: Backend
):
    port = free_port()
    first = await start(port=port)
    backend.status = 503  # the backend is failing: deliveries queue up
    a, b = await pay(first, "ivy"), await pay(first, "jack")
    await webhook(first, stack, a, "processing")
    await webhook(first, stack, b, "succeeded")
    await webhook(first, stack, a, "succeeded")
    await eventually(lambda: backend.attempts >= 4)
    first.kill()
    assert backend.received == []

    backend.status = 200
    attempts_before = backend.attempts
    restarted = await start(port=port)
    await eventually(lambda: len(set(backend.ids())) == 3, timeout_s=20)
    assert backend.attempts > attempts_before and backend.unsigned == 0
    assert in_order(backend.received, a["payment_id"]) == [
        "payment.processing", "payment.succeeded"
    ]
    assert in_order(backend.received, b["payment_id"]) == ["payment.succeeded"]
    pending = await metric(restarted, "gateway_event_deliveries_pending")
    deadline = time.monotonic() + 3  # the gauges are read from the ledger every second
    while pending != 0.0 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        pending = await metric(restarted, "gateway_event_deliveries_pending")
    assert pending == 0.0
    assert await metric(restarted, "gateway_event_outbox_lag_seconds") == 0.0


async def test_two_processes_never_deliver_one_event_at_the_same_time(
    start: Start, stack: Stack, backend: Backend
):
    backend.hold_s = 0.05  # each delivery takes a while: overlaps would show
    one, two = await start(), await start()
    payments = [await pay(one if n % 2 else two, f"p{n}") for n in range(8)]
    for n, payment in enumerate(payments):
        await webhook(one if n % 2 else two, stack, payment, "processing")
    for n, payment in enumerate(payments):
        await webhook(two if n % 2 else one, stack, payment, "succeeded")
    await eventually(lambda: len(set(backend.ids())) == 16, timeout_s=20)
    await asyncio.sleep(1.0)  # a second delivery of any of them would show by now
    assert backend.overlaps == []
    assert len(backend.ids()) == 16  # each event once: nobody delivered a row twice
    for payment in payments:
        assert in_order(backend.received, payment["payment_id"]) == [
            "payment.processing", "payment.succeeded"
        ]


# ---- streams -----------------------------------------------------------------------------------


async def test_a_webhook_received_by_one_replica_reaches_the_other_s_stream_within_a_second(
    start: Start, stack: Stack
):
    a, b = await start(deliver=False), await start(deliver=False)
    payment = await pay(a, "mia")
    latencies = []
    async with open_stream(b, "player_id=mia") as stream:
        for status in ("processing", "succeeded"):
            body, headers = await signed_event(stack, payment, status)
            sent = time.monotonic()  # from the webhook sent to A to the event read from B
            await post_webhook(a, body, headers)
            block = await stream.event(timeout_s=1.0)
            latencies.append(time.monotonic() - sent)
            assert (data(block)["payment_id"], data(block)["type"]) == (
                payment["payment_id"], f"payment.{status}"
            )
    print(f"replica-to-replica stream latency: {[round(s, 3) for s in latencies]} s")
    assert max(latencies) < 1.0


async def test_a_stream_resumed_on_another_replica_misses_nothing(start: Start, stack: Stack):
    a, b = await start(deliver=False), await start(deliver=False)
    first, second = await pay(a, "noa"), await pay(b, "noa")
    other = await pay(a, "oli")
    async with open_stream(a, "player_id=noa") as stream:
        await webhook(a, stack, first, "processing")
        last_id = (await stream.event())["id"]
    # Missed while disconnected, received by either replica; one of another player.
    await webhook(b, stack, first, "succeeded")
    await webhook(a, stack, other, "succeeded")
    await webhook(a, stack, second, "canceled")

    # Resumed on B, at once (before B's own reading of the ledger could have caught up).
    async with open_stream(b, "player_id=noa", last_id) as stream:
        replayed = [await stream.event(), await stream.event()]
        assert all("event" not in block for block in replayed)  # no gap notice
        assert [(data(x)["payment_id"], data(x)["type"]) for x in replayed] == [
            (first["payment_id"], "payment.succeeded"),
            (second["payment_id"], "payment.canceled"),
        ]
        assert int(last_id) < int(replayed[0]["id"]) < int(replayed[1]["id"])
        # Then live, whichever replica the next webhook reaches; nothing twice.
        await webhook(a, stack, second, "processing")  # not news after canceled
        third = await pay(a, "noa")
        await webhook(a, stack, third, "succeeded")
        live = await stream.event()
        assert data(live)["payment_id"] == third["payment_id"]
        assert await stream.quiet(0.6) == []

    # A restart of both keeps the ids: the same resume point gives the same events.
    a.stop()
    b.stop()
    c = await start(deliver=False)
    async with open_stream(c, "player_id=noa", last_id) as stream:
        again = [data(await stream.event())["type"] for _ in range(3)]
    assert again == ["payment.succeeded", "payment.canceled", "payment.succeeded"]


# ---- run --workers 2 on one SQLite file ------------------------------------------------------


def worker_serving(workers: list[int], gateway_port: int, client_port: int) -> int | None:
    """Which worker process holds the server side of the connection from `client_port`."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)) == (
                gateway_port, client_port
            ):
                inodes.add(f"socket:[{inode}]")
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None


async def test_with_two_workers_every_stream_sees_every_event(
    stack: Stack, tmp_path: Path
):
    config = merge(base_config(stack), {
        "ledger": {"backend": "sqlite", "path": str(tmp_path / "ledger.db")},
        "events": {"stream": {"heartbeat_s": 0.5}},
    })
    gateway = await GatewayProcess(config, stack.secrets.env(), tmp_path, workers=2).start()
    try:
        assert gateway.proc is not None
        workers = children_of(gateway.proc.pid)
        assert len(workers) == 2
        payment = await pay(gateway, "ren")
        async with contextlib.AsyncExitStack() as opened:
            # New connections until each worker holds one of this player's streams.
            streams: dict[int, SseClient] = {}
            for _ in range(40):
                if len(streams) == 2:
                    break
                stream = await opened.enter_async_context(open_stream(gateway, "player_id=ren"))
                transport = stream.response.connection.transport  # type: ignore[union-attr]
                client_port = transport.get_extra_info("sockname")[1]
                pid = worker_serving(workers, gateway.port, client_port)
                if pid is not None:
                    streams.setdefault(pid, stream)
            assert len(streams) == 2, "the kernel never spread the streams over both workers"
            body, headers = await signed_event(stack, payment, "succeeded")
            sent = time.monotonic()
            await post_webhook(gateway, body, headers)  # received by one of the two
            for stream in streams.values():
                block = await stream.event(timeout_s=1.0)
                assert data(block)["type"] == "payment.succeeded"
            elapsed = time.monotonic() - sent
            last_id = block["id"]
        print(f"--workers 2: both workers' streams had the event after {elapsed:.3f} s")
        assert elapsed < 1.0

        # Missed while away, resumed on whichever worker takes the new connection.
        await webhook(gateway, stack, payment, "canceled")
        for _ in range(4):
            async with open_stream(gateway, "player_id=ren", last_id) as stream:
                replayed = await stream.event()
                assert "event" not in replayed
                assert data(replayed)["type"] == "payment.canceled"
    finally:
        gateway.stop()
