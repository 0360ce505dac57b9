"""Circuit breaker for one provider operation, on pybreaker, safe to use under asyncio.

pybreaker keeps the counters, the thresholds and the transitions. It has no asyncio support,
and 1.4.1 behaves in three ways that matter here (each reproduced):

- Holding `calling()` open across an await ties the outcome to the state object that was
  current when the call *started*. A call started before a trip that fails after it re-opens
  the breaker, even while a half-open probe is in flight.
- An excluded exception counts as a success. A cancelled probe would therefore close the
  breaker, and a cancelled call would reset the failure count.
- Half-open lets every concurrent caller through.

So this module decides admission itself, synchronously and without awaiting. When a call ends,
its outcome is replayed into `calling()`, but only if the breaker has not changed state since
the call was admitted. An outcome from a state that has already ended says nothing about the
current one. A cancelled call (or any other BaseException that is not an Exception) records
nothing: the provider did not answer, and it did not fail either.

Time is monotonic (pybreaker's own `opened_at` is wall-clock and is not consulted).
Use a breaker from one event loop only. The guarded call must be bounded by a timeout:
a half-open probe holds its slot until it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pybreaker

log = logging.getLogger(__name__)

_NAMES = {
    pybreaker.STATE_CLOSED: "closed",
    pybreaker.STATE_OPEN: "open",
    pybreaker.STATE_HALF_OPEN: "half_open",
}

StateListener = Callable[[str, str, str], None]  # breaker name, old state, new state


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failure_threshold: int = 5
    recovery_timeout_s: float = 30.0
    half_open_probes: int = 1


class BreakerOpen(Exception):
    """The call was refused before it started: the provider was not asked."""

    def __init__(self, name: str, retry_after_s: float) -> None:
        super().__init__(f"circuit '{name}' is open (probe possible in {retry_after_s:.3f}s)")
        self.name = name
        self.retry_after_s = retry_after_s


class UpstreamFailure(Exception):
    """Raise inside guard() for an answer that counts as a provider failure (5xx, timeout...)."""


class Breaker:
    """`failure_threshold` consecutive failures open the breaker. After `recovery_timeout_s`
    it lets `half_open_probes` concurrent trial calls through; one success closes it, one
    failure re-opens it for another `recovery_timeout_s`.

    Exceptions of the types in `ignore` are provider answers that are not provider faults
    (a 4xx, say). pybreaker counts them as successes: they reset the failure count and a
    probe ending in one closes the breaker, because the provider did answer.
    """

    def __init__(
        self,
        name: str,
        settings: BreakerSettings,
        *,
        on_change: StateListener | None = None,
        ignore: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if settings.half_open_probes < 1:
            raise ValueError("half_open_probes must be at least 1")
        if settings.recovery_timeout_s < 0:
            raise ValueError("recovery_timeout_s must not be negative")
        self.name = name
        self.settings = settings
        self._on_change = on_change
        self._clock = clock
        self._epoch = 0  # bumped on every transition; outcomes from an older epoch are dropped
        self._probes = 0  # trial calls in flight in the current half-open epoch
        self._opened_at = 0.0
        # CancelledError never reaches calling() here. It stays excluded so that the pybreaker
        # object would still not count it if anything else drove it. (Typed Any: pybreaker
        # annotates exclude with an unbound TypeVar.)
        exclude: list[Any] = [asyncio.CancelledError, *ignore]
        self._cb = pybreaker.CircuitBreaker(
            fail_max=settings.failure_threshold,
            reset_timeout=settings.recovery_timeout_s,
            exclude=exclude,
            listeners=[_Transitions(self)],
            name=name,
            # Otherwise the call that trips the breaker raises CircuitBreakerError, not its error.
            throw_new_error_on_trip=False,
        )

    # -- reading

    @property
    def state(self) -> str:
        """closed | open | half_open. Reports half_open as soon as the recovery timeout has
        elapsed; the pybreaker transition (and on_change) happens when the next call arrives."""
        current = self._cb.current_state
        if current == pybreaker.STATE_OPEN and self._open_remaining() <= 0:
            return "half_open"
        return _NAMES[current]

    @property
    def failure_count(self) -> int:
        return self._cb.fail_counter

    def allows(self) -> bool:
        """Whether guard() would let a call through now. Changes nothing."""
        current = self._cb.current_state
        if current == pybreaker.STATE_CLOSED:
            return True
        if current == pybreaker.STATE_OPEN:
            return self._open_remaining() <= 0  # the first call after the timeout is a probe
        return self._probes < self.settings.half_open_probes

    def retry_after_s(self) -> float:
        """Seconds until a probe may be tried. 0 when half-open: a slot frees when a running
        probe ends, and that takes no longer than the probe's own timeout."""
        if self._cb.current_state == pybreaker.STATE_OPEN:
            return self._open_remaining()
        return 0.0

    # -- calling

    def guard(self) -> AbstractAsyncContextManager[None]:
        """`async with breaker.guard(): ...` around one upstream call.

        Raises BreakerOpen before the body when the call is not allowed. Exceptions from the
        body propagate unchanged.
        """
        return _Guard(self)

    def force_open(self) -> None:
        """Open now and restart the recovery timeout (state learnt from another process)."""
        self._cb.open()

    def force_close(self) -> None:
        """Close now and reset the failure count (state learnt from another process)."""
        self._cb.close()

    # -- internals

    def _open_remaining(self) -> float:
        return max(0.0, self._opened_at + self.settings.recovery_timeout_s - self._clock())

    def _admit(self) -> tuple[int, bool]:
        """The call's epoch and whether it is a probe; raises BreakerOpen when refused."""
        current = self._cb.current_state
        if current == pybreaker.STATE_OPEN:
            wait = self._open_remaining()
            if wait > 0:
                raise BreakerOpen(self.name, wait)
            self._cb.half_open()
            current = pybreaker.STATE_HALF_OPEN
        if current == pybreaker.STATE_HALF_OPEN:
            if self._probes >= self.settings.half_open_probes:
                raise BreakerOpen(self.name, 0.0)
            self._probes += 1
            return self._epoch, True
        return self._epoch, False

    def _finish(self, epoch: int, probe: bool, exc: BaseException | None) -> None:
        if epoch != self._epoch:
            return  # admitted before the last transition; that state is gone
        if probe:
            self._probes -= 1
        if exc is not None and not isinstance(exc, Exception):
            return  # cancelled or shut down: no answer, and no failure either
        self._record(exc)

    def _record(self, exc: BaseException | None) -> None:
        if exc is None:
            # A success while closed with no failures counted changes nothing in pybreaker
            # (it resets a counter that is already 0): skip its generator machinery, which
            # costs more than the rest of a fast call's bookkeeping.
            cb = self._cb
            if cb.current_state == pybreaker.STATE_CLOSED and cb.fail_counter == 0:
                return
            with cb.calling():
                pass
            return
        # Re-raising inside calling() lets pybreaker classify the exception with its exclude
        # list. Restore the traceback afterwards so the caller sees the error as it was raised.
        traceback = exc.__traceback__
        try:
            with self._cb.calling():
                raise exc
        except BaseException as raised:
            if raised is not exc:
                raise
        finally:
            exc.__traceback__ = traceback

    def _changed(self, old: str | None, new: str) -> None:
        if new == pybreaker.STATE_OPEN:
            self._opened_at = self._clock()  # re-opening restarts the recovery timeout
        if old == new:
            return  # pybreaker re-announces open->open and closed->closed
        self._epoch += 1
        self._probes = 0
        if old is None or self._on_change is None:
            return
        try:
            self._on_change(self.name, _NAMES[old], _NAMES[new])
        except Exception:
            # A broken observer must not change the outcome of the call that caused the change.
            log.exception("breaker %s: state-change callback failed", self.name)


class _Transitions(pybreaker.CircuitBreakerListener):
    def __init__(self, breaker: Breaker) -> None:
        self._breaker = breaker

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        self._breaker._changed(old_state.name if old_state else None, new_state.name)


class _Guard:
    __slots__ = ("_breaker", "_epoch", "_probe")

    def __init__(self, breaker: Breaker) -> None:
        self._breaker = breaker
        self._epoch = -1
        self._probe = False

    async def __aenter__(self) -> None:
        self._epoch, self._probe = self._breaker._admit()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._breaker._finish(self._epoch, self._probe, exc)
