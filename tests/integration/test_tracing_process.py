"""Trace context in a running gateway process: without `tracing` a caller's `traceparent` still
reaches the providers and the backend unchanged and its trace id is in the access log; a
reload that adds `tracing` exports spans over OTLP/HTTP to a collector, and one that removes
it stops them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from simulators.faults import SimulatorServer
from simulators.stack import DemoSecrets, Stack, start_stack
from simulators.stripe import state as stripe_state
from tests.conftest import ALL_SIMULATORS, base_config, merge
from tests.procs import GatewayProcess, free_port
from tests.wired import (
    DEPOSIT,
    EVENTS_SECRET,
    SECRET_ENV,
    Backend,
    events_settings,
    eventually,
    start_backend,
)

STRIPE_CREATE = "/v1/payment_intents"
STRIPE_REFUNDS = "/v1/refunds"


@dataclass
class Collector:
    """An OTLP/HTTP traces endpoint: keeps every span it is sent, with its service name."""

    server: SimulatorServer | None = None
    spans: list[tuple[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource_spans.scope_spans:
                self.spans.extend((service, s) for s in scope.spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def of(self, trace_id: str) -> list[Any]:
        return [s for _, s in self.spans if s.trace_id.hex() == trace_id]


@dataclass
class Running:
    gateway: GatewayProcess
    stack: Stack
    backend: Backend
    config: dict[str, Any]
    http: aiohttp.ClientSession

    async def pay(self, headers: dict[str, str]) -> dict[str, Any]:
        async with self.http.post(
            self.gateway.url + "/v1/payments",
            json=DEPOSIT,
            headers={"Idempotency-Key": uuid.uuid4().hex, **headers},
        ) as resp:
            assert resp.status == 201, await resp.text()
            payment: dict[str, Any] = await resp.json()
            return payment

    async def reload(self, config: dict[str, Any]) -> None:
        """Write `config` and wait until the gateway says it runs it."""
        done = len(self.reloads())
        self.gateway.write_config(config)

        async def reloaded() -> bool:
            return len(self.reloads()) > done

        await eventually(reloaded, timeout_s=10)

    def reloads(self) -> list[dict[str, Any]]:
        # Counted, not matched by hash: the log masks a hash that starts with 13 digits.
        return [ln for ln in self.lines() if ln.get("msg") == "config reloaded"]

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(ln) for ln in self.gateway.log().splitlines() if ln.startswith("{")]

    def access(self, route: str) -> list[dict[str, Any]]:
        access = [ln for ln in self.lines() if ln.get("logger") == "gateway.access"]
        return [ln for ln in access if ln["route"] == route]


@pytest.fixture
async def running(demo_secrets: DemoSecrets, tmp_path: Path) -> AsyncIterator[Running]:
    port = free_port()
    stack = await start_stack(
        demo_secrets, ALL_SIMULATORS, webhook_base_url=f"http://127.0.0.1:{port}"
    )
    backend = await start_backend()
    config = merge(
        base_config(stack),
        {
            "ledger": {"backend": "sqlite", "path": str(tmp_path / "ledger.db")},
            "events": events_settings(backend),
        },
    )
    # Exports every 100 ms instead of every 5 s, so the test need not wait.
    env = {**demo_secrets.env(), SECRET_ENV: EVENTS_SECRET, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    gateway = GatewayProcess(config, env, tmp_path, port=port, log_level="info")
    try:
        await gateway.start()
        async with aiohttp.ClientSession() as http:
            yield Running(gateway, stack, backend, config, http)
    finally:
        gateway.stop()
        await stack.close()
        if backend.server is not None:
            await backend.server.close()


def new_trace() -> tuple[str, str]:
    trace_id = uuid.uuid4().hex
    return trace_id, f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"


async def test_without_tracing_the_traceparent_is_passed_on_unchanged_and_logged(
    running: Running,
):
    trace_id, traceparent = new_trace()
    payment = await running.pay({"traceparent": traceparent, "tracestate": "casino=web"})
    stripe = running.stack.servers["stripe"]
    assert stripe.traceparents == [(STRIPE_CREATE, traceparent)]
    await running.gateway.log_once(trace_id)
    [line] = running.access("payments.create")
    assert line["trace_id"] == trace_id

    # The provider's webhook brings no trace: the gateway starts one, logs it and sends it on.
    answer = await running.http.post(
        f"{stripe.url}/_sim/payment_intents/{payment['provider_reference']}/complete",
        json={"outcome": "succeeded"},
    )
    assert answer.status == 200

    async def delivered(count: int) -> bool:
        return len(running.backend.received) >= count

    await eventually(lambda: delivered(1))
    [event] = running.backend.received
    assert event.event["type"] == "payment.succeeded"
    started = event.headers["traceparent"]
    version, started_id, _, flags = started.split("-")
    assert (version, flags) == ("00", "01") and started_id not in (trace_id, "0" * 32)
    await running.gateway.log_once(started_id)
    assert [ln["trace_id"] for ln in running.access("webhooks.receive")] == [started_id]

    # A refund answered without a webhook: the backend gets the frontend's header as sent.
    stripe.app[stripe_state.STATE].webhook_url = None
    _, refund_parent = new_trace()
    async with running.http.post(
        f"{running.gateway.url}/v1/payments/{payment['payment_id']}/refunds",
        json={"amount": 100},
        headers={
            "Idempotency-Key": uuid.uuid4().hex,
            "traceparent": refund_parent,
            "tracestate": "casino=web",
        },
    ) as resp:
        assert resp.status == 201, await resp.text()
    await eventually(lambda: delivered(2))
    refund = running.backend.received[1]
    assert refund.event["type"] == "refund.succeeded"
    assert (refund.headers["traceparent"], refund.headers["tracestate"]) == (
        refund_parent,
        "casino=web",
    )
    assert stripe.traceparents[-1] == (STRIPE_REFUNDS, refund_parent)


async def test_a_reload_that_adds_tracing_exports_spans_over_otlp_and_one_removing_it_stops(
    running: Running,
):
    collector = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", collector.handle)
    collector.server = await SimulatorServer(app).start()
    try:
        before, traceparent = new_trace()
        await running.pay({"traceparent": traceparent})

        # A bare collector address: the gateway posts to its /v1/traces.
        traced = {"tracing": {"otlp_endpoint": collector.server.url, "sample_ratio": 1}}
        await running.reload(merge(running.config, traced))
        during, traceparent = new_trace()
        await running.pay({"traceparent": traceparent})

        async def exported() -> bool:
            return len(collector.of(during)) >= 3

        await eventually(exported)
        spans = collector.of(during)
        names = {s.name for s in spans}
        assert {"POST payments.create", "provider payments.create", "ledger write"} <= names
        assert {service for service, _ in collector.spans} == {"casino-gateway"}

        await running.reload(running.config)
        after, traceparent = new_trace()
        await running.pay({"traceparent": traceparent})
        await asyncio.sleep(0.5)  # five export intervals: anything recorded would be here
        assert collector.of(before) == [] and collector.of(after) == []
    finally:
        await collector.server.close()
