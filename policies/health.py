"""Is a provider usable? Two signals, one small state machine, no I/O.

Active signal: the gateway's checker loop probes each provider every `interval_s` and feeds
the result to `record_active`. `unhealthy_after` consecutive failed probes take the provider
out (active-unhealthy); `healthy_after` consecutive good probes bring it back.

Passive signal: every live request's outcome goes to `record_passive`. Only failures that
say something about the provider count (transport errors, 5xx, unreadable answers); a 4xx is
the caller's problem and must not be reported as a failure. `unhealthy_after` consecutive
failed requests take the provider out (passive-unhealthy); any success resets the count and
brings it back.

A passive-unhealthy provider gets no live traffic, so it cannot prove itself passively.
It comes back when:
- active checks run: `healthy_after` consecutive good probes counted from the moment it went
  passive-unhealthy (probes from before say nothing about the failure that followed);
- active checks are off (`settings.enabled` is False, or the gateway has no checker for it and
  says so with `active_checks=False`): `interval_s` after it went passive-unhealthy. It is then
  on probation: the next live success clears it, the next live failure takes it out again at
  once (for another `interval_s`) instead of costing `unhealthy_after` more failed requests.
  The circuit breaker bounds the damage of these retries.
- a live request succeeds anyway (selection still routes to it when it is the last one left).

Everything starts healthy: a gateway must serve right after it starts, before the first probe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class HealthSettings:
    path: str | None = None
    interval_s: float = 10.0
    timeout_ms: int = 1000
    unhealthy_after: int = 3
    healthy_after: int = 2
    enabled: bool = True


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class HealthTracker:
    def __init__(
        self,
        settings: HealthSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        active_checks: bool = True,
    ) -> None:
        if settings.unhealthy_after < 1 or settings.healthy_after < 1:
            raise ValueError("unhealthy_after and healthy_after must be at least 1")
        self.settings = settings
        self._clock = clock
        self.active_checks = settings.enabled and active_checks

        self._active_healthy = True
        self._active_failures = 0
        self._active_successes = 0
        self._active_reason: str | None = None
        self._last_checked: float | None = None

        self._passive_healthy = True
        self._passive_failures = 0
        self._passive_down_at = 0.0
        self._probe_successes = 0  # good probes since the provider went passive-unhealthy
        self._probation = False
        self._passive_reason: str | None = None

    # -- signals

    def record_active(self, ok: bool) -> bool:
        """Feed one probe result; True when `healthy` changed."""
        before = self.healthy
        self._last_checked = self._clock()
        if ok:
            self._active_failures = 0
            self._active_successes += 1
            if not self._active_healthy and self._active_successes >= self.settings.healthy_after:
                self._active_healthy = True
                self._active_reason = None
            if not self._passive_healthy:
                self._probe_successes += 1
                if self._probe_successes >= self.settings.healthy_after:
                    self._passive_recover()
        else:
            self._active_successes = 0
            self._active_failures += 1
            self._probe_successes = 0
            if self._active_healthy and self._active_failures >= self.settings.unhealthy_after:
                self._active_healthy = False
                self._active_reason = _plural(self._active_failures, "failed health check")
        return self.healthy != before

    def record_passive(self, ok: bool) -> bool:
        """Feed one live request's outcome; True when `healthy` changed."""
        before = self.healthy  # also ends a finished rest period, so `before` is current
        if ok:
            self._passive_recover()
            return self.healthy != before
        self._passive_failures += 1
        if self._passive_healthy and self._probation:
            self._passive_down(f"failed again after {self.settings.interval_s:g}s out")
        elif self._passive_healthy and self._passive_failures >= self.settings.unhealthy_after:
            self._passive_down(_plural(self._passive_failures, "failed request"))
        return self.healthy != before

    def _passive_down(self, reason: str) -> None:
        self._passive_healthy = False
        self._passive_down_at = self._clock()
        self._probe_successes = 0
        self._probation = False
        self._passive_reason = reason

    def _passive_recover(self) -> None:
        self._passive_healthy = True
        self._passive_failures = 0
        self._probe_successes = 0
        self._probation = False
        self._passive_reason = None

    def _end_rest(self) -> None:
        """Without probes, time is the only way back: after `interval_s`, try it again."""
        if (
            not self._passive_healthy
            and not self.active_checks
            and self._clock() - self._passive_down_at >= self.settings.interval_s
        ):
            self._passive_recover()
            self._probation = True

    # -- state

    @property
    def active_healthy(self) -> bool:
        return self._active_healthy

    @property
    def passive_healthy(self) -> bool:
        self._end_rest()
        return self._passive_healthy

    @property
    def healthy(self) -> bool:
        return self.active_healthy and self.passive_healthy

    @property
    def reason(self) -> str | None:
        self._end_rest()
        reasons = [r for r in (self._active_reason, self._passive_reason) if r]
        return "; ".join(reasons) or None

    def snapshot(self) -> dict[str, Any]:
        age = None if self._last_checked is None else round(self._clock() - self._last_checked, 3)
        return {
            "healthy": self.healthy,
            "active_healthy": self.active_healthy,
            "passive_healthy": self.passive_healthy,
            "active_checks": self.active_checks,
            "consecutive_failures": self._active_failures,
            "consecutive_successes": self._active_successes,
            "passive_consecutive_failures": self._passive_failures,
            "last_checked_age_s": age,
            "reason": self.reason,
        }
