"""Trace context for every request (W3C `traceparent`, `tracestate`), and OpenTelemetry spans
when `tracing` is configured.

Each request continues the trace its caller sent in `traceparent`, or starts one. Its trace
id is written in the access log (`trace_id`), and its context goes with every HTTP call the
request causes: provider calls (`gateway.upstream.transport`), event deliveries to the
casino backend (`gateway.events.delivery`) and wallet backend calls
(`gateway.wallet.backend`). Code that calls out on behalf of a request adds
`outgoing_headers()` to the call's headers::

    from gateway.obs.tracing import outgoing_headers

    headers = {"Content-Type": "application/json", **outgoing_headers()}

Outside a request (a background refresh) it is an empty dict, so calling it is always safe.
Tasks started during a request keep the request's context (asyncio copies it), so an event
delivered later by a queue still carries the trace of the request that caused it.

Without `tracing` in the config nothing is recorded, and a request pays for the header's
parse (or a new random id) and one context variable: the caller's parent id is passed on
unchanged, as W3C allows of a system that records nothing. A trace the gateway starts then
carries the sampled flag, so a backend's parent-based sampler keeps recording what it
recorded before the gateway sent a `traceparent`.

With `tracing: {otlp_endpoint, sample_ratio}` the OpenTelemetry SDK records a span for the
request (server), one for each provider attempt (client; attributes `provider`, `operation`,
`outcome`, `failover`) and one for each ledger write, and a background thread exports them
in batches over OTLP/HTTP. Traces the gateway starts are sampled at `sample_ratio`; a
caller's sampled flag is followed. The decision is made before the SDK is asked anything, so
a request whose trace is not sampled costs what it costs with tracing off. The SDK is
imported only when the block is set. A reload that changes the
block replaces the exporter; requests in flight end their spans on the one they began with.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.config.model import TracingSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
MAX_TRACESTATE = 512  # W3C: a system may drop a longer tracestate rather than pass it on
SERVICE_NAME = "casino-gateway"
# version-trace_id-parent_id-flags (55 characters); a later version may append "-" and more.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_PROPAGATOR = TraceContextTextMapPropagator()
_NO_SPAN: AbstractContextManager[Any] = nullcontext()
# Outcomes of a provider attempt that say nothing is wrong with the gateway or the provider.
_FINE = frozenset({"ok", "rejected"})


class RequestTrace:
    """The trace context of the request being served (one per request, in `_CURRENT`).

    A plain class with slots: it is built on every request, tracing on or off."""

    __slots__ = (
        "flags",
        "last_provider",
        "otel_token",
        "parent_id",
        "span",
        "state",
        "token",
        "trace_id",
        "tracer",
    )

    def __init__(
        self,
        trace_id: str,
        parent_id: str | None,
        flags: str,
        state: str | None,
        tracer: Any = None,
        span: Any = None,
    ) -> None:
        self.trace_id = trace_id  # 32 lowercase hex digits
        # 16 hex digits: the parent a call is sent when nothing records; made when first
        # needed for a trace the gateway starts (most cache hits call nobody).
        self.parent_id = parent_id
        self.flags = flags  # 2 hex digits, "01" = sampled
        self.state = state  # the caller's tracestate, passed on as it came
        self.tracer = tracer  # an SDK Tracer while spans are recorded
        self.span = span
        self.last_provider: str | None = None  # the previous attempt's: the next fails over
        self.token: Token[RequestTrace | None] | None = None
        self.otel_token: object = None


_CURRENT: ContextVar[RequestTrace | None] = ContextVar("gateway_trace", default=None)


def current() -> RequestTrace | None:
    return _CURRENT.get()


def parse_traceparent(value: str) -> tuple[str, str, str] | None:
    """(trace_id, parent_id, flags) of a valid header, None for anything else."""
    if len(value) != 55:
        if len(value) < 57 or value[55] != "-" or value.startswith("00"):
            return None
        value = value[:55]
    if _TRACEPARENT.fullmatch(value) is None or value.startswith("ff"):
        return None
    trace_id, parent_id = value[3:35], value[36:52]
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, value[53:]


def outgoing_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) for an HTTP call made for the current request."""
    trace = _CURRENT.get()
    if trace is None:
        return {}
    if trace.tracer is not None:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)  # the current span: the call's parent
        return carrier
    parent_id = trace.parent_id
    if parent_id is None:
        parent_id = trace.parent_id = _new_id(8)
    headers = {TRACEPARENT: f"00-{trace.trace_id}-{parent_id}-{trace.flags}"}
    if trace.state:
        headers[TRACESTATE] = trace.state
    return headers


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A child span of the current request while spans are recorded, else nothing at all."""
    trace = _CURRENT.get()
    if trace is None or trace.tracer is None:
        return _NO_SPAN
    manager: AbstractContextManager[Any] = trace.tracer.start_as_current_span(
        name, attributes=attributes
    )
    return manager


class Attempt:
    """The span of one provider attempt; `done(outcome)` ends it."""

    __slots__ = ("span", "token")

    def __init__(self, tracer: Any, trace: RequestTrace, provider: str, operation: str) -> None:
        failover = trace.last_provider is not None and trace.last_provider != provider
        trace.last_provider = provider
        self.span = tracer.start_span(
            f"provider {operation}",
            kind=otel_trace.SpanKind.CLIENT,
            attributes={"provider": provider, "operation": operation, "failover": failover},
        )
        self.token = otel_context.attach(otel_trace.set_span_in_context(self.span))

    def done(self, outcome: str) -> None:
        self.span.set_attribute("outcome", outcome)
        if outcome not in _FINE:
            self.span.set_status(otel_trace.StatusCode.ERROR, outcome)
        self.span.end()
        otel_context.detach(self.token)


def provider_attempt(provider: str, operation: str) -> Attempt | None:
    """A span for one call to a provider while spans are recorded, else None."""
    trace = _CURRENT.get()
    if trace is None or trace.tracer is None:
        return None
    return Attempt(trace.tracer, trace, provider, operation)


def _new_id(size: int) -> str:
    # The random module, as the SDK's own id generator: fast, and reseeded in a forked child.
    return random.getrandbits(size * 8).to_bytes(size, "big").hex()


class Tracing:
    """One gateway's span recorder: none until `tracing` is configured, rebuilt when its
    settings change on reload. `exporter` replaces OTLP (tests, embedding)."""

    def __init__(self, exporter: SpanExporter | None = None) -> None:
        self._exporter = exporter
        self.settings: TracingSettings | None = None
        self.tracer: Any = None
        self._provider: TracerProvider | None = None

    def configure(self, settings: TracingSettings | None) -> None:
        if settings == self.settings:
            return
        old = self._provider
        self.settings = settings
        self.tracer = self._provider = None
        if settings is not None:
            self._provider = _make_provider(settings, self._exporter)
            self.tracer = self._provider.get_tracer("gateway")
        if old is not None:
            # Flushing may wait on the collector: never on the event loop.
            threading.Thread(target=old.shutdown, name="tracing-shutdown", daemon=True).start()

    def shutdown(self) -> None:
        """Export what is still buffered (blocking: call it off the event loop)."""
        if self._provider is not None:
            self._provider.shutdown()

    def begin(self, headers: Mapping[str, str], method: str, route: str) -> RequestTrace:
        """The trace of a request that starts now; `end` it when its answer is known."""
        tracer = self.tracer
        value = headers.get(TRACEPARENT)
        parsed = parse_traceparent(value) if value else None
        if tracer is not None and self.settings is not None:
            # Sampled here, before the SDK is asked anything: a trace nobody records then
            # costs what it costs with tracing off, not a span the SDK would throw away.
            if parsed is None:
                sampled = random.random() < self.settings.sample_ratio
            else:
                sampled = bool(int(parsed[2], 16) & 1)  # the caller decided
            if sampled:
                trace = self._recorded(tracer, headers, method, route)
                trace.token = _CURRENT.set(trace)
                return trace
        if parsed is None:
            # With tracing off a started trace says sampled (see the module docstring); with
            # it on, this one was not.
            trace = RequestTrace(_new_id(16), None, "01" if tracer is None else "00", None)
        else:
            state = headers.get(TRACESTATE)
            if state is not None and len(state) > MAX_TRACESTATE:
                state = None
            trace = RequestTrace(*parsed, state)
        trace.token = _CURRENT.set(trace)
        return trace

    @staticmethod
    def _recorded(tracer: Any, headers: Mapping[str, str], method: str, route: str) -> RequestTrace:
        parent = _PROPAGATOR.extract(headers)
        span = tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=otel_trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
        )
        ids = span.get_span_context()
        trace = RequestTrace(
            f"{ids.trace_id:032x}",
            f"{ids.span_id:016x}",
            f"{ids.trace_flags:02x}",
            None,
            tracer,
            span=span,
        )
        trace.otel_token = otel_context.attach(otel_trace.set_span_in_context(span, parent))
        return trace

    @staticmethod
    def end(trace: RequestTrace, status: int | None) -> None:
        span = trace.span
        if span is not None:
            if status is not None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(otel_trace.StatusCode.ERROR)
            span.end()
            otel_context.detach(trace.otel_token)  # type: ignore[arg-type]
        if trace.token is not None:
            _CURRENT.reset(trace.token)


def _make_provider(settings: TracingSettings, exporter: SpanExporter | None) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    provider = TracerProvider(
        sampler=ALWAYS_ON,  # `Tracing.begin` sampled already: only recorded traces get here
        resource=Resource.create({"service.name": SERVICE_NAME}),
    )
    if exporter is not None:
        # Spans in hand as each one ends: what a test or an embedding program wants.
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, timeout=10))
        )
    return provider
