"""No double charge across crashes, restarts and processes: the ledger on SQLite and PostgreSQL.

Gateways run as real processes (`python -m gateway run`) against the simulators; they are
killed with SIGKILL or stopped, started again on the same ledger, and the client replays its
Idempotency-Key. The simulators' call counters say which provider was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulators import stripe as stripe_sim
from simulators.faults import Faults
from simulators.stack import Stack
from tests.conftest import base_config, merge
from tests.pg import create_database, drop_database
from tests.procs import GatewayProcess

STRIPE_CREATE = "/v1/payment_intents"
ADYEN_CREATE = "/v71/payments"
DEPOSIT = {
    "type": "deposit",
    "amount": 2500,
    "currency": "EUR",
    "player_id": "player-42",
    "method": {"type": "card"},
    "return_url": "https://casino.example/cashier",
}


@dataclass
class Durable:
    kind: str
    block: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(params=["sqlite", "postgres"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Durable]:
    if request.param == "sqlite":
        yield Durable("sqlite", {"backend": "sqlite", "path": str(tmp_path / "ledger.db")})
        return
    url = create_database()
    yield Durable("postgres", {"backend": "postgres", "url_env": "TEST_LEDGER_URL"},
                  {"TEST_LEDGER_URL": url})
    drop_database(url)


Start = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
async def start(stack: Stack, tmp_path: Path, durable: Durable) -> AsyncIterator[Start]:
    started: list[GatewayProcess] = []

    async def start_one(changes: dict[str, Any] | None = None, **kwargs: Any) -> GatewayProcess:
        config = merge(base_config(stack), {"ledger": {**durable.block, "claim_lease_s": 1}})
        config = merge(config, changes or {})
        proc = GatewayProcess(config, {**stack.secrets.env(), **durable.env}, tmp_path, **kwargs)
        started.append(proc)
        return await proc.start()

    yield start_one
    for proc in started:
        proc.stop()


async def pay(base: str, key: str, timeout_s: float = 30) -> tuple[int, dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.post(
        base + "/v1/payments", json=DEPOSIT, headers={"Idempotency-Key": key}
    ) as resp:
        return resp.status, await resp.json()


async def eventually(check: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def calls(stack: Stack, name: str, path: str) -> int:
    return stack.servers[name].stats[path]


def stripe_intents(stack: Stack) -> dict[str, Any]:
    return stack.servers["stripe"].app[stripe_sim.STATE].intents


async def test_sigkill_while_the_provider_holds_the_request_then_replay_on_a_restart(
    start: Start, stack: Stack
):
    first = await start()
    stack.servers["stripe"].faults = Faults(hold_ms=3000)
    key = uuid.uuid4().hex
    cut = asyncio.create_task(pay(first.url, key))
    await eventually(lambda: calls(stack, "stripe", STRIPE_CREATE) == 1)
    first.kill()
    with contextlib.suppress(aiohttp.ClientError):
        await cut

    # Restarted on the same ledger; Stripe now answers 429 to everything.
    stack.servers["stripe"].faults = Faults(mode="rate_limited", retry_after_s=1)
    second = await start()
    status, body = await pay(second.url, key)
    assert status == 202
    assert (body["provider"], body["status"]) == ("stripe", "processing")
    assert [(a["provider"], a["outcome"]) for a in body["attempts"]] == [("stripe", "rejected")]
    assert calls(stack, "adyen", ADYEN_CREATE) == 0

    # Once Stripe answers, the same key learns the outcome there, and only there.
    stack.servers["stripe"].faults = Faults()
    await asyncio.sleep(2.5)  # the held request completes at Stripe meanwhile
    status, body = await pay(second.url, key)
    assert status == 201
    assert body["provider"] == "stripe" and body["provider_reference"].startswith("pi_")
    assert calls(stack, "adyen", ADYEN_CREATE) == 0
    assert len(stripe_intents(stack)) == 1


async def test_plain_restart_after_a_202_then_replay_asks_only_its_owner(
    start: Start, stack: Stack
):
    first = await start()
    # Stripe holds the request past the gateway's 500 ms timeout; the retry finds the key in
    # use there: the outcome is unknown.
    stack.servers["stripe"].faults = Faults(hold_ms=1500)
    key = uuid.uuid4().hex
    status, body = await pay(first.url, key)
    assert status == 202 and body["provider"] == "stripe"
    first.stop()

    stack.servers["stripe"].faults = Faults(mode="rate_limited", retry_after_s=1)
    second = await start()
    status, again = await pay(second.url, key)
    assert status == 202
    assert (again["payment_id"], again["provider"]) == (body["payment_id"], "stripe")
    assert calls(stack, "adyen", ADYEN_CREATE) == 0

    stack.servers["stripe"].faults = Faults()
    await asyncio.sleep(1.6)  # the held request has been processed by now
    status, learnt = await pay(second.url, key)
    assert status == 201
    assert learnt["payment_id"] == body["payment_id"]
    assert learnt["provider_reference"].startswith("pi_")
    assert calls(stack, "adyen", ADYEN_CREATE) == 0
    assert len(stripe_intents(stack)) == 1


async def test_twenty_concurrent_requests_with_one_key_reach_the_provider_once(
    start: Start, stack: Stack, durable: Durable
):
    # A lease long enough that no waiter may take the claim over from its live holder, and a
    # timeout longer than Stripe's hold, so the one request is answered the first time.
    lease = {"ledger": {"claim_lease_s": 30}, "providers": {"stripe": {"timeout_ms": 5000}}}
    if durable.kind == "sqlite":
        # One host, two worker processes sharing the file.
        gateways = [await start(lease, workers=2)]
    else:
        # Two hosts' worth of gateways sharing the database.
        gateways = [await start(lease), await start(lease)]
    stack.servers["stripe"].faults = Faults(hold_ms=500)
    key = uuid.uuid4().hex

    async def one(i: int) -> tuple[int, dict[str, Any]]:
        # A connection of its own per request, so the kernel spreads them over workers.
        return await pay(gateways[i % len(gateways)].url, key)

    results = await asyncio.gather(*(one(i) for i in range(20)))
    assert [status for status, _ in results].count(201) == 20, results
    assert len({body["payment_id"] for _, body in results}) == 1
    assert calls(stack, "stripe", STRIPE_CREATE) == 1
    assert calls(stack, "adyen", ADYEN_CREATE) == 0


async def test_a_reload_adding_payments_to_an_unshared_ledger_is_refused(
    stack: Stack, tmp_path: Path
):
    config = base_config(stack)  # ledger.backend: memory, each process its own
    games_only = {**config, "routes": {k: v for k, v in config["routes"].items()
                                       if k.startswith("games.")}}
    proc = GatewayProcess(games_only, stack.secrets.env(), tmp_path, workers=2,
                          extra_args=("--dev",))
    await proc.start()
    try:
        async with aiohttp.ClientSession() as http:

            async def config_hash() -> str:
                async with http.get(proc.url + "/readyz") as resp:
                    return str((await resp.json())["config_hash"])

            before = await config_hash()
            proc.write_config(config)  # adds payments.create
            await asyncio.sleep(2.5)  # the file is polled every second
            for _ in range(8):  # whichever worker answers
                assert await config_hash() == before
            status, body = await pay(proc.url, uuid.uuid4().hex)
            assert status == 503 and body["code"] == "no_provider_available"
            assert calls(stack, "stripe", STRIPE_CREATE) == 0
    finally:
        proc.stop()
