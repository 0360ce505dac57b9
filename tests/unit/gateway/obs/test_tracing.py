"""Trace context without a network: which `traceparent` headers are believed, what is passed
on with tracing off and on, reloads, and the ledger's span names."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.config.model import TracingSettings
from gateway.ledger import claims
from gateway.obs import tracing
from gateway.obs.tracing import Tracing, outgoing_headers, parse_traceparent
from gateway.runtime.observed_ledger import transaction_name

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
VALID = f"00-{TRACE}-{PARENT}-01"
SETTINGS = TracingSettings("http://127.0.0.1:9/v1/traces", 0.0)


def headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(values))


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (VALID, (TRACE, PARENT, "01")),
        (f"00-{TRACE}-{PARENT}-00", (TRACE, PARENT, "00")),
        # A later version may add fields: its first four are read.
        (f"01-{TRACE}-{PARENT}-01-future", (TRACE, PARENT, "01")),
        (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 has exactly four
        (f"ff-{TRACE}-{PARENT}-01", None),  # the forbidden version
        (f"00-{'0' * 32}-{PARENT}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE.upper()}-{PARENT}-01", None),  # lowercase only
        (f"00-{TRACE}-{PARENT}", None),
        (f"00_{TRACE}_{PARENT}_01", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_only_a_valid_traceparent_is_believed(value: str, parsed: Any) -> None:
    assert parse_traceparent(value) == parsed


def test_outside_a_request_nothing_is_sent() -> None:
    assert outgoing_headers() == {}
    assert tracing.provider_attempt("stripe", "payments.create") is None


def test_with_tracing_off_the_callers_context_is_passed_on_unchanged() -> None:
    off = Tracing()
    trace = off.begin(headers(traceparent=VALID, tracestate="casino=web"), "GET", "games.list")
    try:
        assert trace.trace_id == TRACE
        assert outgoing_headers() == {"traceparent": VALID, "tracestate": "casino=web"}
        assert tracing.provider_attempt("stripe", "payments.create") is None
    finally:
        off.end(trace, 200)
    assert outgoing_headers() == {}


def test_with_tracing_off_a_trace_is_started_when_none_or_a_bad_one_came() -> None:
    off = Tracing()
    seen = set()
    for given in (headers(), headers(traceparent="00-nope", tracestate="dropped=1")):
        trace = off.begin(given, "GET", "games.list")
        try:
            sent = outgoing_headers()
        finally:
            off.end(trace, 200)
        assert list(sent) == ["traceparent"]  # a tracestate without its traceparent is dropped
        parsed = parse_traceparent(sent["traceparent"])
        assert parsed is not None and parsed[0] == trace.trace_id and parsed[2] == "01"
        seen.add(trace.trace_id)
    assert len(seen) == 2


def test_an_oversized_tracestate_is_not_passed_on() -> None:
    off = Tracing()
    trace = off.begin(headers(traceparent=VALID, tracestate="k=" + "v" * 600), "GET", "x")
    try:
        assert outgoing_headers() == {"traceparent": VALID}
    finally:
        off.end(trace, 200)


def test_with_tracing_on_calls_carry_the_current_span_and_the_callers_decision() -> None:
    exporter = InMemorySpanExporter()
    on = Tracing(exporter)
    on.configure(SETTINGS)  # ratio 0: only a caller's sampled flag records anything
    trace = on.begin(headers(traceparent=VALID, tracestate="casino=web"), "POST", "payments.create")
    try:
        attempt = tracing.provider_attempt("stripe", "payments.create")
        assert attempt is not None
        sent = outgoing_headers()
        attempt.done("timeout")
        with tracing.span("ledger write", {"ledger.transaction": "claims.finish"}):
            pass
    finally:
        on.end(trace, 502)
    request, = (s for s in exporter.get_finished_spans() if s.name == "POST payments.create")
    call, = (s for s in exporter.get_finished_spans() if s.name == "provider payments.create")
    assert call.context is not None and request.context is not None
    assert sent == {
        "traceparent": f"00-{TRACE}-{call.context.span_id:016x}-01",
        "tracestate": "casino=web",
    }
    assert dict(call.attributes or {}) == {
        "provider": "stripe",
        "operation": "payments.create",
        "failover": False,
        "outcome": "timeout",
    }
    assert not call.status.is_ok and not request.status.is_ok
    assert (request.attributes or {})["http.response.status_code"] == 502
    assert len(exporter.get_finished_spans()) == 3

    exporter.clear()
    unsampled = on.begin(headers(traceparent=VALID[:-2] + "00"), "GET", "x")
    on.end(unsampled, 200)
    started = on.begin(headers(), "GET", "x")  # ratio 0
    on.end(started, 200)
    assert exporter.get_finished_spans() == ()
    assert unsampled.trace_id == TRACE and not int(started.flags, 16) & 1  # not sampled
    # Decided before the SDK was asked: no span object was made for either.
    assert unsampled.span is None and started.span is None


def test_a_reload_replaces_the_recorder_and_removing_the_block_stops_it() -> None:
    on = Tracing(InMemorySpanExporter())
    on.configure(SETTINGS)
    first = on.tracer
    on.configure(SETTINGS)
    assert on.tracer is first  # unchanged settings keep the exporter and its buffer
    on.configure(TracingSettings(SETTINGS.otlp_endpoint, 1.0))
    assert on.tracer is not None and on.tracer is not first
    on.configure(None)
    assert on.tracer is None
    trace = on.begin(headers(traceparent=VALID), "GET", "x")
    on.end(trace, 200)
    assert trace.span is None


def test_a_ledger_write_is_named_after_its_function() -> None:
    assert transaction_name(claims.finish) == "claims.finish"
    assert transaction_name(functools.partial(claims.finish, owner=None)) == "claims.finish"

