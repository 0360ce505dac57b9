"""Payment events out of the gateway: the live SSE stream and delivery to the casino backend.

Events are made the real way: payments created through the gateway, moved on by the
simulators, whose signed webhooks the gateway applies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from gateway.config.errors import ConfigError
from simulators.faults import SimulatorServer
from simulators.stack import Stack
from tests.conftest import base_config, build_config, merge
from tests.procs import free_port
from tests.wired import (  # the wired gateway and the test backend
    EVENTS_SECRET,
    Backend,
    MakeWired,
    Wired,
    eventually,
)

# ---- an SSE client ---------------------------------------------------------------------------


class SseClient:
    """Reads an event stream block by block, each read bounded by a timeout."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def block(self, timeout_s: float = 3.0) -> dict[str, str]:
        fields: dict[str, str] = {}
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout_s)
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\n")
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                fields["comment"] = line[1:].strip()
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")

    async def event(self, timeout_s: float = 3.0) -> dict[str, str]:
        """The next block that carries data (heartbeats and `retry:` skipped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            block = await self.block(max(0.01, deadline - time.monotonic()))
            if "data" in block:
                return block

    async def quiet(self, seconds: float) -> list[dict[str, str]]:
        """Every data block that arrives within `seconds` (heartbeats skipped)."""
        found: list[dict[str, str]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                block = await self.block(left)
            except TimeoutError:
                break
            if "data" in block:
                found.append(block)
        return found


@asynccontextmanager
async def open_stream(
    w: Wired, query: str, headers: dict[str, str] | None = None, expect_retry: str = "3000"
) -> AsyncIterator[SseClient]:
    async with w.client.session.get(
        str(w.client.make_url("/v1/events?" + query)), headers=headers or {}
    ) as response:
        assert response.status == 200, await response.text()
        stream = SseClient(response)
        assert await stream.block() == {"retry": expect_retry}
        yield stream


def data(block: dict[str, str]) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(block["data"])
    return parsed


async def metric(w: Wired, name: str) -> float:
    text = await (await w.client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


# ---- the stream ------------------------------------------------------------------------------


async def test_stream_headers_and_heartbeat(make_wired: MakeWired):
    w = await make_wired(backend=False)
    url = str(w.client.make_url("/v1/events?player_id=player-1"))
    async with w.client.session.get(url, headers={"X-Request-ID": "req-sse-1"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Request-ID"] == "req-sse-1"
        stream = SseClient(response)
        assert await stream.block() == {"retry": "3000"}
        # heartbeat_s is 0.2 in these tests
        assert await stream.block(timeout_s=1.0) == {"comment": "ping"}


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("player_id=", {}),
        ("player_id=p1&colour=red", {}),
        ("player_id=" + "x" * 129, {}),
        ("player_id=p1", {"Last-Event-ID": "abc"}),
        ("player_id=p1&last_event_id=-5", {}),
    ],
)
async def test_stream_refuses_bad_queries(
    make_wired: MakeWired, query: str, headers: dict[str, str]
):
    w = await make_wired(backend=False)
    resp = await w.client.get("/v1/events?" + query, headers=headers)
    assert resp.status == 400
    assert (await resp.json(content_type=None))["code"] == "invalid_request"
    assert w.hub.log.subscribers == 0


async def test_player_sees_own_events_in_order_and_resumes(make_wired: MakeWired):
    w = await make_wired(backend=False)
    alice_1 = await w.pay(player_id="alice")
    bob_1 = await w.pay(player_id="bob")
    async with open_stream(w, "player_id=alice") as stream:
        await w.stripe_complete(bob_1["provider_reference"], "succeeded")
        await w.stripe_complete(alice_1["provider_reference"], "processing")
        await w.stripe_complete(alice_1["provider_reference"], "succeeded")
        first, second = await stream.event(), await stream.event()
        assert [(data(b)["payment_id"], data(b)["type"]) for b in (first, second)] == [
            (alice_1["payment_id"], "payment.processing"),
            (alice_1["payment_id"], "payment.succeeded"),
        ]
        assert int(first["id"]) < int(second["id"])
        assert await stream.quiet(0.6) == []  # Bob's event never came
        last_seen = second["id"]

    # Missed while disconnected: one of Alice's, one of Bob's.
    alice_2 = await w.pay(player_id="alice")
    bob_2 = await w.pay(player_id="bob")
    await w.stripe_complete(alice_2["provider_reference"], "succeeded")
    await w.stripe_complete(bob_2["provider_reference"], "succeeded")
    await eventually(_no_subscribers(w))

    async with open_stream(w, "player_id=alice", {"Last-Event-ID": last_seen}) as stream:
        replayed = await stream.event()
        assert "event" not in replayed  # a plain message, no gap notice
        assert (data(replayed)["payment_id"], data(replayed)["type"]) == (
            alice_2["payment_id"],
            "payment.succeeded",
        )
        assert int(replayed["id"]) > int(last_seen)
        assert await stream.quiet(0.6) == []
        # And live again after the replay.
        alice_3 = await w.pay(player_id="alice")
        await w.stripe_complete(alice_3["provider_reference"], "canceled")
        live = await stream.event()
        assert (data(live)["payment_id"], data(live)["type"]) == (
            alice_3["payment_id"],
            "payment.canceled",
        )

    # The query parameter resumes too (for the first connection of a page).
    async with open_stream(w, f"player_id=alice&last_event_id={last_seen}") as stream:
        assert data(await stream.event())["payment_id"] == alice_2["payment_id"]
        assert data(await stream.event())["payment_id"] == alice_3["payment_id"]


def _no_subscribers(w: Wired) -> Any:
    async def check() -> bool:
        return w.hub.log.subscribers == 0

    return check


async def test_payment_filter_sees_only_that_payment(make_wired: MakeWired):
    w = await make_wired(backend=False)
    mine, other = await w.pay(player_id="carol"), await w.pay(player_id="carol")
    async with open_stream(w, f"payment_id={mine['payment_id']}") as stream:
        await w.stripe_complete(other["provider_reference"], "succeeded")
        await w.stripe_complete(mine["provider_reference"], "succeeded")
        event = data(await stream.event())
        assert (event["payment_id"], event["type"]) == (mine["payment_id"], "payment.succeeded")
        assert await stream.quiet(0.5) == []


async def test_event_on_the_stream_is_the_normalized_event(make_wired: MakeWired):
    w = await make_wired(backend=False)
    payment = await w.pay(player_id="dave")
    async with open_stream(w, "player_id=dave") as stream:
        answer = await w.stripe_complete(payment["provider_reference"], "succeeded")
        event = data(await stream.event())
    assert set(event) == {
        "event_id",
        "type",
        "payment_id",
        "provider",
        "provider_reference",
        "amount",
        "currency",
        "occurred_at",
    }
    assert event["provider_reference"] == answer["payment_intent"]["id"]
    assert (event["amount"], event["currency"], event["provider"]) == (2500, "EUR", "stripe")


async def test_subscribers_are_removed_when_clients_leave(make_wired: MakeWired):
    w = await make_wired(backend=False)
    async with open_stream(w, "player_id=erin"), open_stream(w, "player_id=frank"):
        assert w.hub.log.subscribers == 2
    await eventually(_no_subscribers(w), timeout_s=3)


async def test_resuming_from_before_retention_announces_a_gap(make_wired: MakeWired):
    w = await make_wired({"events": {"stream": {"buffer_size": 1}}}, backend=False)
    old, kept = await w.pay(player_id="gina"), await w.pay(player_id="gina")
    await w.stripe_complete(old["provider_reference"], "processing")
    await w.stripe_complete(old["provider_reference"], "succeeded")
    # Past events.retention_days those two events are pruned; a later one is kept.
    w.gateway.ledger.clock = lambda: time.time() + 8 * 86400
    assert await w.hub.prune() == 2
    w.gateway.ledger.clock = time.time
    await w.stripe_complete(kept["provider_reference"], "succeeded")
    await eventually(_read_up_to(w, 3))  # the buffer (one event) holds only the third

    # A resume point after the first event: the second is gone.
    async with open_stream(w, "player_id=gina", {"Last-Event-ID": "1"}) as stream:
        notice = await stream.event()
        assert notice["event"] == "gap" and "id" not in notice
        assert data(notice)["last_event_id"] == "1"
        resumed = await stream.event()
        assert (resumed["id"], data(resumed)["payment_id"]) == ("3", kept["payment_id"])
        assert await stream.quiet(0.5) == []

    # After the second: nothing was lost, no gap.
    async with open_stream(w, "player_id=gina", {"Last-Event-ID": "2"}) as stream:
        assert "event" not in (resumed := await stream.event())
        assert resumed["id"] == "3"

    # An id the ledger never gave (from another installation, or before this one's outbox).
    async with open_stream(w, "player_id=gina", {"Last-Event-ID": "1764261149123456"}) as stream:
        assert (await stream.event())["event"] == "gap"
        assert await stream.quiet(0.5) == []


def _read_up_to(w: Wired, seq: int) -> Any:
    async def check() -> bool:
        return w.hub.log.last_seq == seq

    return check


async def test_stream_needs_the_client_key_when_clients_are_configured(make_wired: MakeWired):
    w = await make_wired({"clients": [{"id": "web", "key_env": "WEB_API_KEY"}]}, backend=False)
    resp = await w.client.get("/v1/events?player_id=p1")
    assert resp.status == 401
    assert (await resp.json(content_type=None))["code"] == "unauthorized"
    async with open_stream(w, "player_id=p1", {"X-API-Key": w.stack.secrets.client_key}):
        assert w.hub.log.subscribers == 1


async def test_open_streams_end_when_the_gateway_stops(make_wired: MakeWired):
    w = await make_wired(backend=False)
    async with open_stream(w, "player_id=hank") as stream:
        started = time.monotonic()
        await w.client.server.close()
        with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
            while True:
                await stream.block(timeout_s=2.0)
        assert time.monotonic() - started < 2.0


# ---- delivery to the backend -----------------------------------------------------------------


@pytest.mark.slow
async def test_events_survive_the_backend_being_down_for_10_seconds(make_wired: MakeWired):
    port = free_port()
    backend = Backend(EVENTS_SECRET)
    app = web.Application()
    app.router.add_post("/gateway-events", backend.handle)
    backend.server = SimulatorServer(app, "127.0.0.1", port)  # not listening yet: refused
    w = await make_wired(backend=backend)

    started = time.monotonic()
    a, b = await w.pay(player_id="ivy"), await w.pay(player_id="jack")
    await w.stripe_complete(a["provider_reference"], "processing")
    await w.stripe_complete(b["provider_reference"], "succeeded")
    await w.stripe_complete(a["provider_reference"], "succeeded")
    await asyncio.sleep(1.5)
    assert await metric(w, "gateway_event_deliveries_pending") == 3.0
    # Tried and failed: each payment's first event; a's second waits behind its first.
    assert await metric(w, "gateway_event_deliveries_failing") == 2.0
    assert await metric(w, "gateway_event_outbox_lag_seconds") >= 1.0

    await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - started)))
    backend.status = 503  # up, but failing
    await backend.server.start()
    await asyncio.sleep(max(0.0, 10.0 - (time.monotonic() - started)))
    failing_attempts = backend.attempts
    assert failing_attempts >= 2 and backend.received == []
    backend.status = 200

    async def all_delivered() -> bool:
        return len(backend.received) == 3

    await eventually(all_delivered, timeout_s=5)
    events = backend.events()
    assert all(r.verified for r in backend.received)
    assert [e["type"] for e in events if e["payment_id"] == a["payment_id"]] == [
        "payment.processing",
        "payment.succeeded",
    ]
    assert [e["type"] for e in events if e["payment_id"] == b["payment_id"]] == [
        "payment.succeeded"
    ]
    await asyncio.sleep(1.5)
    assert len(backend.received) == 3  # each once
    assert await metric(w, "gateway_event_deliveries_pending") == 0.0
    assert await metric(w, "gateway_event_deliveries_failing") == 0.0
    assert await metric(w, "gateway_event_outbox_lag_seconds") == 0.0
    assert await metric(w, 'gateway_event_deliveries_total{outcome="delivered"}') == 3.0


async def test_a_reload_changes_the_events_settings_unless_they_are_bad(make_wired: MakeWired):
    w = await make_wired()
    gw, hub = w.gateway, w.hub
    original = hub.current()
    assert original.backend is not None

    # Configs made by hand, past the loader's checks: the hub checks them again.
    bad = {"events": {"max_queue": 0}, "event_settings": None}
    gw.apply(dataclasses.replace(gw.runtime.config, **bad))
    assert hub.current() is original  # refused: the last good settings stay

    good = {"events": {"stream": {"retry_ms": 500}}, "event_settings": None}
    gw.apply(dataclasses.replace(gw.runtime.config, **good))
    assert hub.current().backend is None
    payment = await w.pay(player_id="kim")
    async with open_stream(w, "player_id=kim", expect_retry="500"):
        await w.stripe_complete(payment["provider_reference"], "succeeded")
    assert (await w.gateway.ledger.delivery_backlog()).pending == 0  # no backend: not queued
    await eventually(_read_up_to(w, 1))  # and streamed
    await asyncio.sleep(0.3)
    assert w.backend is not None and w.backend.received == []


async def test_events_block_is_checked_when_the_config_loads(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("NO_SUCH_EVENTS_SECRET", raising=False)
    events = {
        "webhook_url": "ftp://backend.example/events",
        "secret_env": "NO_SUCH_EVENTS_SECRET",
        "max_queue": 0,
        "colour": "red",
        "stream": {"heartbeat_s": -1},
    }
    with pytest.raises(ConfigError) as info:
        build_config(merge(base_config(stack), {"events": events}), stack.secrets)
    problems = "\n".join(info.value.problems)
    for key_path in ("events: Additional properties", "events.max_queue", "events.webhook_url",
                     "events.stream.heartbeat_s"):
        assert key_path in problems
    # What the schema cannot say: one setting against another, and the secret itself.
    events = {"webhook_url": "https://backend.example/events",
              "secret_env": "NO_SUCH_EVENTS_SECRET", "backoff_initial_s": 5, "backoff_max_s": 1}
    with pytest.raises(ConfigError) as info:
        build_config(merge(base_config(stack), {"events": events}), stack.secrets)
    assert "events.backoff_max_s: must not be below backoff_initial_s" in info.value.problems
    assert any("NO_SUCH_EVENTS_SECRET" in p for p in info.value.problems)
