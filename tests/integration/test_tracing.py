"""Trace context over real sockets: a frontend's `traceparent` reaches the providers and the
casino backend, and with `tracing` configured the request, each provider attempt and each
ledger write are spans of one trace (collected in memory here)."""

from __future__ import annotations

import uuid
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.obs.tracing import parse_traceparent
from simulators.stripe import state as stripe_state
from tests.wired import MakeWired, Wired, settle

STRIPE_CREATE = "/v1/payment_intents"
STRIPE_REFUNDS = "/v1/refunds"
# Adyen first and down: the payment fails over to Stripe, so there are two attempts.
ADYEN_FIRST = {"routes": {"payments.create": {"providers": ["adyen", "stripe"]}}}
# A ratio of 0: whatever is recorded is recorded because the caller's flag says sampled.
TRACING = {"tracing": {"otlp_endpoint": "http://127.0.0.1:9", "sample_ratio": 0}}


def new_traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


def hexid(value: int, width: int) -> str:
    return f"{value:0{width}x}"


def spans_of(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.context is not None and hexid(s.context.trace_id, 32) == trace_id
    ]


def span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return hexid(span.context.span_id, 16)


def parent_id(span: ReadableSpan) -> str | None:
    return hexid(span.parent.span_id, 16) if span.parent is not None else None


async def traced_wired(make_wired: MakeWired, changes: dict[str, Any] | None = None) -> Any:
    exporter = InMemorySpanExporter()
    w = await make_wired({**TRACING, **(changes or {})}, span_exporter=exporter)
    return w, exporter


async def test_a_payment_with_a_traceparent_is_one_trace_from_the_frontend_to_each_provider(
    make_wired: MakeWired,
):
    w, exporter = await traced_wired(make_wired, ADYEN_FIRST)
    await w.stack.servers["adyen"].stop_listening()
    traceparent, trace_id, caller_span = new_traceparent()

    payment = await w.pay(headers={"traceparent": traceparent, "tracestate": "casino=web"})
    assert payment["provider"] == "stripe"

    spans = spans_of(exporter, trace_id)
    [request] = [s for s in spans if s.kind is SpanKind.SERVER]
    assert request.name == "POST payments.create"
    assert parent_id(request) == caller_span
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 201
    attempts = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert [
        (
            a.attributes["provider"],
            a.attributes["operation"],
            a.attributes["outcome"],
            a.attributes["failover"],
        )
        for a in attempts
        if a.attributes is not None
    ] == [("adyen", "payments.create", "refused", False), ("stripe", "payments.create", "ok", True)]
    assert all(parent_id(a) == span_id(request) for a in attempts)
    writes = [s for s in spans if s.name == "ledger write"]
    assert writes and all(parent_id(s) == span_id(request) for s in writes)
    assert {s.attributes["ledger.transaction"] for s in writes if s.attributes} >= {
        "claims.claim",
        "claims.finish",
    }
    # Nothing of this request went to another trace.
    assert len(exporter.get_finished_spans()) == len(spans)

    # Stripe was called with the trace, its parent the attempt that called it.
    [(path, sent)] = w.stack.servers["stripe"].traceparents
    assert path == STRIPE_CREATE
    assert sent == f"00-{trace_id}-{span_id(attempts[1])}-01"


async def test_the_backend_receives_the_trace_of_the_request_that_caused_each_event(
    make_wired: MakeWired,
):
    sampled = {"tracing": {**TRACING["tracing"], "sample_ratio": 1}}
    w, exporter = await traced_wired(make_wired, sampled)
    payment = await w.pay()
    # The provider's webhook carries no trace: the gateway starts one, and the delivery of
    # the event it caused carries that one.
    await w.stripe_complete(payment["provider_reference"], "succeeded")
    await settle(w)
    [webhook] = [
        s for s in exporter.get_finished_spans() if s.name == "POST webhooks.receive"
    ]
    assert webhook.context is not None and webhook.parent is None
    [delivered] = backend_traceparents(w, "payment.succeeded")
    trace_id, parent, flags = parse_traceparent(delivered) or ("", "", "")
    assert (trace_id, parent) == (hexid(webhook.context.trace_id, 32), span_id(webhook))
    assert int(flags, 16) & 1  # sampled

    # A refund asked with the frontend's trace: Stripe and the backend both get it. Stripe's
    # own webhook for it is held back, so the event is the refund request's to announce.
    w.stack.servers["stripe"].app[stripe_state.STATE].webhook_url = None
    traceparent, trace_id, _ = new_traceparent()
    assert trace_id != hexid(webhook.context.trace_id, 32)
    resp = await w.client.post(
        f"/v1/payments/{payment['payment_id']}/refunds",
        json={"amount": 500},
        headers={"Idempotency-Key": uuid.uuid4().hex, "traceparent": traceparent},
    )
    assert resp.status == 201, await resp.text()
    await settle(w)
    [request] = [s for s in spans_of(exporter, trace_id) if s.kind is SpanKind.SERVER]
    [attempt] = [s for s in spans_of(exporter, trace_id) if s.kind is SpanKind.CLIENT]
    assert attempt.attributes is not None and attempt.attributes["operation"] == "payments.refund"
    stripe = w.stack.servers["stripe"]
    refund_calls = [tp for path, tp in stripe.traceparents if path == STRIPE_REFUNDS]
    assert refund_calls == [f"00-{trace_id}-{span_id(attempt)}-01"]
    [delivered] = backend_traceparents(w, "refund.succeeded")
    parsed = parse_traceparent(delivered)
    assert parsed is not None and parsed[0] == trace_id
    assert parsed[1] == span_id(request)


def backend_traceparents(w: Wired, event_type: str) -> list[str]:
    assert w.backend is not None
    return [
        r.headers.get("traceparent", "")
        for r in w.backend.received
        if r.event["type"] == event_type
    ]


async def test_an_unsampled_caller_is_followed_and_a_bad_traceparent_starts_a_new_trace(
    make_wired: MakeWired,
):
    w, exporter = await traced_wired(make_wired)
    traceparent, trace_id, _ = new_traceparent()
    unsampled = traceparent[:-2] + "00"
    await w.pay(headers={"traceparent": unsampled})
    assert spans_of(exporter, trace_id) == []
    [(_, sent)] = w.stack.servers["stripe"].traceparents
    assert sent.startswith(f"00-{trace_id}-") and sent.endswith("-00")

    await w.pay(headers={"traceparent": "00-" + "0" * 32 + "-" + "1" * 16 + "-01"})
    _, (_, fresh) = w.stack.servers["stripe"].traceparents
    parsed = parse_traceparent(fresh)
    assert parsed is not None and parsed[0] not in (trace_id, "0" * 32)

