"""One attempt at one provider, with every per-provider policy applied around it.

Order: drained? -> cooling down after its own 429? -> outbound rate limit -> breaker ->
send (timeout) -> adapter parse. Any failure becomes `AttemptFailed`, which says what the
flows need to decide: could the request have reached the provider, may another provider be
tried, may this one be asked again. While spans are recorded each attempt is one
(`gateway.obs.tracing`), and the provider is sent the trace context either way.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import aiohttp

from adapters.base import ProviderError, UpstreamRequest, UpstreamResponse
from gateway.obs import tracing
from gateway.obs.metrics import Metrics
from gateway.upstream import transport
from gateway.upstream.providers import ProviderState, Rejected
from gateway.upstream.transport import TransportError
from policies.breaker import BreakerOpen, UpstreamFailure
from policies.ratelimit import Cooldowns, Decision

T = TypeVar("T")
log = logging.getLogger("gateway.upstream")


class CallContext(Protocol):
    """What one attempt needs of the running gateway (`gateway.runtime.gateway.Gateway`)."""

    cooldowns: Cooldowns
    metrics: Metrics
    session: aiohttp.ClientSession | None

    async def hit_limit(self, rate: str, *keys: str) -> Decision | None: ...


# What a client is told about a failed attempt: a fixed sentence per kind of failure. The
# provider's own text (which may echo a key or an internal) goes to the log only.
PUBLIC_REASONS = {
    "rejected": "refused the request",
    "auth": "refused the gateway's credentials",
    "timeout": "did not answer in time",
    "refused": "could not be reached",
    "reset": "dropped the connection",
    "error": "gave an answer that could not be used",
    "drained": "is drained by an operator",
    "breaker_open": "has its circuit open after recent failures",
    "cooling_down": "asked the gateway to slow down",
    "rate_limited": "is over the gateway's outbound quota",
}
_PROVIDER_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def public_code(code: str | None) -> str | None:
    """A provider's error code as clients may see it: a short token, or nothing."""
    return code if code is not None and _PROVIDER_CODE.match(code) else None


class AttemptFailed(Exception):
    def __init__(
        self,
        provider: str,
        outcome: str,
        detail: str,
        *,
        maybe_delivered: bool,
        failover_safe: bool,
        retry_same: bool = False,
        provider_code: str | None = None,
        status: int | None = None,
        retry_after_s: float | None = None,
        final: bool = False,
        decline: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.provider = provider
        self.outcome = outcome  # drained breaker_open cooling_down rate_limited refused timeout
        self.detail = detail  # reset error rejected
        self.maybe_delivered = maybe_delivered
        self.failover_safe = failover_safe
        self.retry_same = retry_same
        self.provider_code = provider_code
        self.status = status
        self.retry_after_s = retry_after_s
        self.final = final  # a definite refusal (no money) no other provider should see
        self.decline = decline  # soft | hard, when the refusal is a card decline

    @property
    def public_detail(self) -> str:
        """The failure as a client may read it. "unsupported" is the gateway's own refusal
        before sending (its text names the operation), never the provider's words."""
        if self.outcome == "unsupported":
            return f"{self.provider}: {self.detail.removeprefix(self.provider + ': ')}"
        return f"{self.provider} {PUBLIC_REASONS.get(self.outcome, 'failed')}"

    @property
    def skipped(self) -> bool:
        """The provider was never asked."""
        return self.outcome in ("drained", "breaker_open", "cooling_down", "rate_limited")


class _BadAnswer(UpstreamFailure):
    def __init__(self, error: ProviderError) -> None:
        super().__init__(error.message)
        self.error = error


def _skip(
    provider: str, outcome: str, detail: str, retry_after_s: float | None = None
) -> AttemptFailed:
    return AttemptFailed(
        provider,
        outcome,
        detail,
        maybe_delivered=False,
        failover_safe=True,
        retry_after_s=retry_after_s,
    )


async def call_provider(
    gw: CallContext,
    state: ProviderState,
    op: str,
    request: UpstreamRequest,
    parse: Callable[[UpstreamResponse], T],
) -> T:
    attempt = tracing.provider_attempt(state.name, op)
    if attempt is None:
        return await _call(gw, state, op, request, parse)
    outcome = "error"
    try:
        result = await _call(gw, state, op, request, parse)
        outcome = "ok"
    except AttemptFailed as exc:
        outcome = exc.outcome
        raise
    finally:
        attempt.done(outcome)
    return result


async def _call(
    gw: CallContext,
    state: ProviderState,
    op: str,
    request: UpstreamRequest,
    parse: Callable[[UpstreamResponse], T],
) -> T:
    name = state.name
    if state.drained:
        raise _skip(name, "drained", f"provider '{name}' is drained")
    cooling = gw.cooldowns.blocked_for(name)
    if cooling > 0:
        gw.metrics.upstream_done(name, op, "cooling_down", None)
        raise _skip(name, "cooling_down", f"provider '{name}' asked to wait", cooling)
    rate = state.config.rate_limit
    if rate:
        decision = await gw.hit_limit(rate, "out", name)
        if decision is not None and not decision.allowed:
            gw.metrics.upstream_done(name, op, "rate_limited", None)
            raise _skip(
                name, "rate_limited", f"outbound quota of '{name}' used up", decision.retry_after_s
            )
    breaker = state.breaker(op)
    session = gw.session
    assert session is not None, "the gateway's client session starts with the app"
    started = time.perf_counter()
    outcome = "ok"
    try:
        async with breaker.guard():
            try:
                response = await transport.send(
                    session, state.config.base_url, request, state.config.timeout_ms / 1000
                )
            except TransportError as exc:
                outcome = exc.kind
                raise
            try:
                result = parse(response)
            except ProviderError as exc:
                if exc.status in (401, 403):
                    # The gateway's own key is refused: every call will fail the same way.
                    # A provider failure (breaker, health) that took no money.
                    outcome = "auth"
                    gw.metrics.provider_auth_failures.labels(name).inc()
                    raise _BadAnswer(
                        ProviderError(
                            exc.message,
                            provider_code=exc.provider_code,
                            status=exc.status,
                            failover_safe=True,
                        )
                    ) from None
                if exc.status == 429:
                    gw.cooldowns.block(name, exc.retry_after_s or 1.0)
                if exc.rejected or exc.status == 429:
                    # It answered: up and refusing. Its own Retry-After paces it, not the breaker.
                    outcome = "rejected"
                    raise Rejected(exc) from None
                outcome = "error"
                raise _BadAnswer(exc) from None
            except Exception as exc:
                # An adapter that could not read the answer at all: the provider answered, so
                # it may have acted; never a 500 with the payment's claim left in the air.
                log.exception("provider answer could not be parsed", extra={"provider": name})
                outcome = "error"
                raise _BadAnswer(
                    ProviderError(
                        f"unreadable answer ({type(exc).__name__})", retry_same=True
                    )
                ) from None
    except BreakerOpen as exc:
        outcome = "breaker_open"
        raise _skip(
            name, "breaker_open", f"circuit of '{name}' is open", exc.retry_after_s
        ) from None
    except TransportError as exc:
        state.health.record_passive(False)
        state.note_error(f"{exc.kind}: {exc}")
        raise AttemptFailed(
            name,
            exc.kind,
            str(exc),
            maybe_delivered=exc.maybe_delivered,
            failover_safe=not exc.maybe_delivered,
            retry_same=exc.maybe_delivered,
        ) from None
    except (Rejected, _BadAnswer) as wrapped:
        err = wrapped.error
        if outcome != "rejected":
            state.health.record_passive(False)
        state.note_error(f"{outcome}: {err.message}")
        log.log(
            logging.INFO if outcome == "rejected" else logging.WARNING,
            "provider answered with an error",
            extra={"provider": name, "operation": op, "outcome": outcome, "detail": err.message},
        )
        raise AttemptFailed(
            name,
            outcome,
            err.message,
            maybe_delivered=True,
            failover_safe=err.failover_safe,
            retry_same=err.retry_same,
            provider_code=public_code(err.provider_code),
            status=err.status,
            retry_after_s=err.retry_after_s,
            final=err.final,
            decline=err.decline,
        ) from None
    finally:
        elapsed = time.perf_counter() - started
        gw.metrics.upstream_done(name, op, outcome, None if outcome == "breaker_open" else elapsed)
    state.health.record_passive(True)
    return result
