"""Slow and greedy clients: header and body timeouts, connection and stream caps, proxies.

The timeouts live in the gateway's own connection handler, which `casino-gateway run`
uses: these tests run it as a process and talk to it over raw loopback sockets.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simulators import hub88 as hub88_sim
from simulators.stack import Stack
from tests.conftest import MakeGateway, base_config, merge
from tests.procs import GatewayProcess

SERVER = {"server": {"header_timeout_s": 1, "body_timeout_s": 1, "keepalive_timeout_s": 2}}


@pytest.fixture
async def served(stack: Stack, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    config = merge(base_config(stack), {**SERVER, "log_level": "info",
                                        "ledger": {"backend": "sqlite",
                                                   "path": str(tmp_path / "l.db")}})
    proc = GatewayProcess(config, stack.secrets.env(), tmp_path, log_level="info")
    await proc.start()
    yield proc
    proc.stop()


async def connect(proc: GatewayProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proc.port)


async def closed_within(reader: asyncio.StreamReader, limit_s: float) -> tuple[float, bytes]:
    """Seconds until the server closed the connection, and what it sent before."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit_s)  # read() returns at EOF
    return time.monotonic() - started, data


async def test_a_client_trickling_its_headers_is_disconnected(served: GatewayProcess):
    reader, writer = await connect(served)
    writer.write(b"GET /v1/games HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()

    async def trickle() -> None:
        for byte in b"X-Slow: " + b"a" * 100:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.2)

    sender = asyncio.create_task(trickle())
    try:
        await asyncio.wait_for(reader.read(), 6)
    finally:
        sender.cancel()
        writer.close()
    elapsed = time.monotonic() - started
    assert elapsed < 3, f"held for {elapsed:.1f}s with header_timeout_s 1"
    assert "request headers not complete in time" in await served.log_once("not complete in")


async def test_a_slow_body_is_408_and_the_connection_closed(served: GatewayProcess):
    reader, writer = await connect(served)
    writer.write(
        b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Idempotency-Key: k1\r\nContent-Length: 200\r\n\r\n{\"type\": "
    )
    await writer.drain()
    elapsed, data = await closed_within(reader, 6)
    writer.close()
    assert elapsed < 4  # body_timeout_s 1, then at most a second to drain what is left
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(body)["code"] == "request_timeout"


async def test_an_idle_kept_alive_connection_is_closed(served: GatewayProcess):
    reader, writer = await connect(served)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    elapsed, data = await closed_within(reader, 8)
    writer.close()
    assert data.startswith(b"HTTP/1.1 200 ")
    assert elapsed < 5  # keepalive_timeout_s 2


async def test_a_malformed_request_line_is_problem_json_logged_without_a_traceback(
    served: GatewayProcess,
):
    reader, writer = await connect(served)
    writer.write(b"GET /v1/games\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    _, data = await closed_within(reader, 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] 400 ", head)
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["code"] == "invalid_request"
    log = await served.log_once("malformed request refused")
    lines = [json.loads(ln) for ln in log.splitlines() if ln.startswith("{")]
    refused = [ln for ln in lines if ln.get("msg") == "malformed request refused"]
    assert refused and refused[0]["level"] == "info"
    assert "Traceback" not in log


async def test_connections_past_the_cap_are_closed(stack: Stack, tmp_path: Path):
    config = merge(base_config(stack), {"server": {"max_connections": 2},
                                        "ledger": {"backend": "sqlite",
                                                   "path": str(tmp_path / "l.db")}})
    proc = await GatewayProcess(config, stack.secrets.env(), tmp_path).start()
    try:
        held = [await connect(proc) for _ in range(2)]
        for reader, writer in held:  # answered, so surely accepted; kept alive
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        reader, writer = await connect(proc)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            _, data = await closed_within(reader, 5)
        except ConnectionResetError:
            data = b""
        assert data == b""  # closed without an answer
        for _, w in held:
            w.close()
        writer.close()
    finally:
        proc.stop()


# ---- over aiohttp's test server: the caps and proxies the app itself applies -------------


OTHER_KEY = "other_" + uuid.uuid4().hex


async def test_one_key_cannot_take_every_event_stream(make_gateway: MakeGateway):
    gw = await make_gateway({
        "clients": [{"id": "web", "key_env": "WEB_API_KEY"},
                    {"id": "other", "key_env": "OTHER_KEY"}],
        "events": {"stream": {"max_per_client": 2, "heartbeat_s": 0.2}},
    }, env={"OTHER_KEY": OTHER_KEY})
    web = {"X-API-Key": gw.stack.secrets.client_key}
    url = str(gw.client.make_url("/v1/events?player_id=p1"))
    session = gw.client.session
    open_ = [await session.get(url, headers=web) for _ in range(2)]
    assert [r.status for r in open_] == [200, 200]
    third = await session.get(url, headers=web)
    assert third.status == 429
    assert (await third.json())["code"] == "rate_limited"
    other = await session.get(url, headers={"X-API-Key": OTHER_KEY})
    assert other.status == 200  # another client's streams are its own
    other.close()
    for resp in open_:
        resp.close()
    await asyncio.sleep(0.3)  # the closed streams are noticed
    again = await session.get(url, headers=web)
    assert again.status == 200
    again.close()


async def test_the_client_behind_a_trusted_proxy_is_the_forwarded_one(
    make_gateway: MakeGateway,
):
    gw = await make_gateway({
        "trusted_proxies": ["127.0.0.0/8"],
        "routes": {"games.list": {"rate_limit": {"limit": "2/minute", "per": "ip"}}},
    })

    async def games(forwarded: str) -> int:
        resp = await gw.client.get("/v1/games", headers={"X-Forwarded-For": forwarded})
        return resp.status

    assert [await games("198.51.100.1") for _ in range(3)] == [200, 200, 429]
    # Another client behind the same proxy has its own limit; a spoofed entry on the left
    # of the chain does not make a third client.
    assert await games("198.51.100.2") == 200
    assert await games("6.6.6.6, 198.51.100.1") == 429

    launch = {"mode": "real", "player_id": "p1", "currency": "EUR", "session_token": "s1"}
    resp = await gw.client.post(
        "/v1/games/netent:starburst/launch", json=launch,
        headers={"X-Forwarded-For": "198.51.100.9"},
    )
    assert resp.status == 200, await resp.text()
    sent: list[dict[str, Any]] = gw.stack.servers["hub88"].app[hub88_sim.LAUNCHES]
    assert sent[-1]["ip"] == "198.51.100.9"


async def test_without_trusted_proxies_forwarded_for_is_ignored(make_gateway: MakeGateway):
    gw = await make_gateway(
        {"routes": {"games.list": {"rate_limit": {"limit": "1/minute", "per": "ip"}}}}
    )
    first = await gw.client.get("/v1/games", headers={"X-Forwarded-For": "198.51.100.1"})
    second = await gw.client.get("/v1/games", headers={"X-Forwarded-For": "198.51.100.2"})
    assert (first.status, second.status) == (200, 429)
