"""Two gateway processes sharing one Redis (and one ledger file): limits, cache, breakers agree.

These tests need the Redis server on 127.0.0.1:6379 and fail when it is not there. Each test
uses its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulators.faults import Faults
from simulators.stack import Stack
from tests.conftest import base_config, merge
from tests.procs import GatewayProcess, RedisServer

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"
HUB88_LIST = "/operator/generic/v2/game/list"
HUB88_LAUNCH = "/operator/generic/v2/game/url"
STRIPE_CREATE = "/v1/payment_intents"
CACHED = {"cache": {"ttl_s": 60}}
DEPOSIT = {
    "type": "deposit",
    "amount": 1000,
    "currency": "EUR",
    "player_id": "p-1",
    "method": {"type": "card"},
    "return_url": "https://casino.example/back",
}

Start = Callable[..., Awaitable[list[GatewayProcess]]]


@pytest.fixture
async def start_gateways(stack: Stack, tmp_path: Path) -> AsyncIterator[Start]:
    started: list[GatewayProcess] = []

    async def start(changes: dict[str, Any], count: int = 2) -> list[GatewayProcess]:
        # Money state is in the ledger, which the processes share as one host would: a file.
        ledger = {"ledger": {"backend": "sqlite", "path": str(tmp_path / "ledger.db")}}
        config = merge(merge(base_config(stack), ledger), changes)
        procs = [GatewayProcess(config, stack.secrets.env(), tmp_path) for _ in range(count)]
        started.extend(procs)
        await asyncio.gather(*(p.start() for p in procs))
        return procs

    yield start
    for proc in started:
        proc.stop()


def storage(prefix: str, url: str = REDIS_URL, **extra: Any) -> dict[str, Any]:
    return {"storage": {"backend": "redis", "url": url, "key_prefix": prefix, **extra}}


async def test_a_limit_holds_across_both_processes(start_gateways: Start, redis_prefix: str):
    a, b = await start_gateways(
        {
            **storage(redis_prefix),
            "routes": {
                "games.get": {**CACHED, "rate_limit": {"limit": "10/minute", "per": "route"}}
            },
        }
    )
    async with aiohttp.ClientSession() as http:

        async def get(base: str) -> int:
            async with http.get(base + "/v1/games/netent:starburst") as resp:
                return resp.status

        statuses = await asyncio.gather(*(get(g.url) for g in [a, b] * 15))
    assert statuses.count(200) == 10
    assert statuses.count(429) == 20


async def test_a_cold_catalog_is_fetched_once_for_the_cluster(
    start_gateways: Start, redis_prefix: str, stack: Stack
):
    a, b = await start_gateways({**storage(redis_prefix), "routes": {"games.list": CACHED}})
    stack.servers["hub88"].faults = Faults(latency_ms=200)
    async with aiohttp.ClientSession() as http:

        async def get(base: str) -> tuple[int, str]:
            async with http.get(base + "/v1/games") as resp:
                return resp.status, resp.headers.get("X-Cache", "")

        results = await asyncio.gather(*(get(g.url) for g in [a, b] * 10))
    assert {status for status, _ in results} == {200}
    assert stack.servers["hub88"].stats[HUB88_LIST] == 1
    assert stack.servers["slotegrator"].stats["/games"] == 3  # one fetch: its three pages


async def test_a_breaker_opened_on_one_process_is_skipped_by_the_other(
    start_gateways: Start, redis_prefix: str, stack: Stack
):
    breaker = {"failure_threshold": 2, "recovery_timeout_s": 30}
    a, b = await start_gateways(
        {
            **storage(redis_prefix),
            "providers": {"hub88": {"breaker": breaker}},
            "routes": {"games.launch": CACHED},
            # Breaker states are for operators: the key is a client and a viewer.
            "clients": [{"id": "ops", "key_env": "WEB_API_KEY", "roles": ["client", "viewer"]}],
        }
    )
    launch = "/v1/games/netent:starburst/launch"
    key = {"X-API-Key": stack.secrets.client_key}
    async with aiohttp.ClientSession(headers=key) as http:

        async def provider_of(base: str) -> str:
            async with http.post(base + launch, json={"mode": "demo"}) as resp:
                assert resp.status == 200
                return str((await resp.json())["provider"])

        assert await provider_of(b.url) == "hub88"
        hub88 = stack.servers["hub88"]
        hub88.faults = Faults(mode="error")
        assert [await provider_of(a.url) for _ in range(2)] == ["slotegrator"] * 2
        opened_at = time.monotonic()
        state = ""
        while time.monotonic() - opened_at < 1.0:
            async with http.get(b.url + "/v1/providers/status") as resp:
                state = (await resp.json())["providers"]["hub88"]["breakers"].get("launch", "")
            if state == "open":
                break
            await asyncio.sleep(0.02)
        assert state == "open"
        calls = hub88.stats[HUB88_LAUNCH]
        assert await provider_of(b.url) == "slotegrator"
        assert hub88.stats[HUB88_LAUNCH] == calls


async def test_one_idempotency_key_on_both_processes_reaches_the_provider_once(
    start_gateways: Start, redis_prefix: str, stack: Stack
):
    a, b = await start_gateways(storage(redis_prefix))
    stack.servers["stripe"].faults = Faults(latency_ms=200)
    key = uuid.uuid4().hex
    async with aiohttp.ClientSession() as http:

        async def pay(base: str) -> tuple[int, dict[str, Any]]:
            headers = {"Idempotency-Key": key}
            async with http.post(base + "/v1/payments", json=DEPOSIT, headers=headers) as resp:
                return resp.status, await resp.json()

        results = await asyncio.gather(*(pay(g.url) for g in [a, b, a, b]))
    assert [status for status, _ in results] == [201] * 4
    assert len({body["payment_id"] for _, body in results}) == 1
    assert stack.servers["stripe"].stats[STRIPE_CREATE] == 1


async def test_redis_killed_mid_load_degrades_and_recovers(
    start_gateways: Start, stack: Stack, tmp_path: Path
):
    redis_server = RedisServer().start()
    try:
        a, b = await start_gateways(
            {
                **storage("gwkill:", url=redis_server.url, on_failure="local", replicas=2),
                "routes": {
                    "games.list": CACHED,
                    "games.get": {**CACHED, "rate_limit": {"limit": "4/minute", "per": "route"}},
                },
            }
        )
        await _redis_outage(a, b, redis_server)
    finally:
        redis_server.cleanup()


async def _redis_outage(a: GatewayProcess, b: GatewayProcess, redis_server: RedisServer) -> None:
    statuses: list[tuple[str, int]] = []
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as http:

        async def load(base: str) -> None:
            while not stop.is_set():
                async with http.get(base + "/v1/games") as resp:
                    statuses.append(("games.list", resp.status))
                await asyncio.sleep(0.01)

        async def pay(base: str) -> int:
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            async with http.post(base + "/v1/payments", json=DEPOSIT, headers=headers) as resp:
                return resp.status

        async def degraded(base: str) -> bool:
            async with http.get(base + "/readyz") as resp:
                return bool((await resp.json())["storage"]["degraded"])

        loaders = [asyncio.create_task(load(g.url)) for g in (a, b)]
        try:
            await _outage_steps(a, b, redis_server, http, pay, degraded)
        finally:
            stop.set()
            await asyncio.gather(*loaders)
    # Game lookups read each process's own catalog: Redis going away changes none of them.
    assert statuses and all(status == 200 for _, status in statuses), statuses[-5:]


async def _outage_steps(
    a: GatewayProcess,
    b: GatewayProcess,
    redis_server: RedisServer,
    http: aiohttp.ClientSession,
    pay: Callable[[str], Awaitable[int]],
    degraded: Callable[[str], Awaitable[bool]],
) -> None:
    assert await pay(a.url) == 201
    await asyncio.sleep(0.3)

    redis_server.kill()
    await asyncio.sleep(0.2)
    # Money state is in the ledger, not in Redis: payments go on, and so do reads.
    outage_pay = await pay(a.url)
    assert outage_pay == 201
    for proc in (a, b):
        for _ in range(40):
            if await degraded(proc.url):
                break
            await asyncio.sleep(0.05)
        assert await degraded(proc.url)
    # Limits fall back to each process's share: 4/minute over 2 replicas is 2 each.
    local = []
    for _ in range(3):
        async with http.get(a.url + "/v1/games/netent:starburst") as resp:
            local.append(resp.status)
    assert local == [200, 200, 429]
    async with http.get(a.url + "/metrics") as resp:
        assert "gateway_storage_degraded 1.0" in await resp.text()
    await asyncio.sleep(0.3)

    redis_server.start()
    for proc in (a, b):
        for _ in range(100):
            if not await degraded(proc.url):
                break
            await asyncio.sleep(0.05)
        assert not await degraded(proc.url)
    assert await pay(b.url) == 201


async def test_a_drain_on_one_process_takes_the_provider_out_on_the_other(
    start_gateways: Start, redis_prefix: str, stack: Stack
):
    ops = {"clients": [{"id": "ops", "key_env": "WEB_API_KEY", "roles": ["operator"]}]}
    a, b = await start_gateways({**storage(redis_prefix), **ops})
    headers = {"X-API-Key": stack.secrets.client_key}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(a.url + "/admin/providers/stripe/drain") as resp:
            assert resp.status == 200
        started = time.monotonic()
        drained = False
        while time.monotonic() - started < 1.0 and not drained:
            async with http.get(b.url + "/v1/providers/status") as resp:
                drained = (await resp.json())["providers"]["stripe"]["drained"]
            await asyncio.sleep(0.02)
        assert drained
        pay_headers = {"Idempotency-Key": uuid.uuid4().hex}
        async with http.post(b.url + "/v1/payments", json=DEPOSIT, headers=pay_headers) as resp:
            assert resp.status == 201
            assert (await resp.json())["provider"] == "adyen"


async def test_redis_compare_and_set_and_delete(redis_prefix: str):
    from gateway.config.model import StorageSettings
    from gateway.state.redis_store import RedisLink, RedisStore

    link = RedisLink(StorageSettings(backend="redis", url=REDIS_URL, key_prefix=redis_prefix))
    store = RedisStore(link)
    try:
        assert await store.set_if_absent("k", b"one", 10)
        assert not await store.set_if_absent("k", b"two", 10)
        assert not await store.replace_if("k", b"two", b"three", 10)
        assert await store.replace_if("k", b"one", b"three", 10)
        assert await store.get("k") == b"three"
        assert not await store.delete_if("k", b"one")
        assert await store.delete_if("k", b"three")
        assert await store.get("k") is None
    finally:
        await link.close()


async def test_killing_redis_keeps_every_game_lookup_at_200(start_gateways: Start, stack: Stack):
    redis_server = RedisServer().start()
    try:
        # No `cache:` anywhere: every lookup reads the process's own copy of the snapshot.
        (gw,) = await start_gateways(storage("gwgames:", url=redis_server.url), count=1)
        lookups = [
            ("GET", "/v1/games?page_size=500", None),
            ("GET", "/v1/games?country=US", None),
            ("GET", "/v1/games/netent:starburst", None),
            ("GET", "/v1/games/spribe:aviator", None),
            ("POST", "/v1/games/pragmatic-play:sweet-bonanza/launch", {"mode": "demo"}),
            ("POST", "/v1/games/relax-gaming:money-train-2/launch", {"mode": "demo"}),
        ]
        async with aiohttp.ClientSession() as http:

            async def statuses() -> list[int]:
                found = []
                for method, path, body in lookups:
                    async with http.request(method, gw.url + path, json=body) as resp:
                        found.append(resp.status)
                return found

            assert await statuses() == [200] * len(lookups)
            before = stack.servers["hub88"].stats[HUB88_LIST]
            redis_server.kill()
            for _ in range(5):
                assert await statuses() == [200] * len(lookups)
            async with http.get(gw.url + "/v1/games?page_size=500") as resp:
                assert (await resp.json())["meta"]["total"] == 34
        assert stack.servers["hub88"].stats[HUB88_LIST] == before  # no refetch either
    finally:
        redis_server.cleanup()


async def test_two_processes_fetch_each_catalog_once_per_refresh_between_them(
    start_gateways: Start, redis_prefix: str, stack: Stack
):
    refresh_s = 1.0
    a, b = await start_gateways(
        {
            **storage(redis_prefix),
            "defaults": {"catalog": {"refresh_s": refresh_s, "max_stale_s": 60}},
        }
    )
    hub88 = stack.servers["hub88"]
    async with aiohttp.ClientSession() as http:
        for proc in (a, b):
            async with http.get(proc.url + "/v1/games") as resp:
                assert resp.status == 200
        started, calls_before = time.monotonic(), hub88.stats[HUB88_LIST]
        await asyncio.sleep(4 * refresh_s)
        window, calls = time.monotonic() - started, hub88.stats[HUB88_LIST] - calls_before

        async def refreshes(proc: GatewayProcess, outcome: str) -> float:
            async with http.get(proc.url + "/metrics") as resp:
                text = await resp.text()
            line = f'gateway_catalog_refreshes_total{{outcome="{outcome}",provider="hub88"}}'
            found = [ln.split()[-1] for ln in text.splitlines() if ln.startswith(line)]
            return float(found[0]) if found else 0.0

        # Counted when a fetch ends, while Hub88 counts it when it starts: read until a
        # fetch under way cannot make the two differ.
        for _ in range(20):
            calls_at = hub88.stats[HUB88_LIST]
            fetched = [await refreshes(p, "fetched") for p in (a, b)]
            shared = [await refreshes(p, "shared") for p in (a, b)]
            if sum(fetched) == calls_at == hub88.stats[HUB88_LIST]:
                break
            await asyncio.sleep(0.05)
    # Alone, each process would fetch about once a refresh_s: twice as many calls as this.
    # Jitter makes a period as short as 0.9 refresh_s; one more for a fetch under way.
    assert 2 <= calls <= window / (0.9 * refresh_s) + 1, (calls, window)
    # Every call to Hub88 was one process's fetch, and the other one adopted it.
    assert sum(fetched) == calls_at, (fetched, calls_at)
    assert sum(shared) >= sum(fetched) - 1, (fetched, shared)
