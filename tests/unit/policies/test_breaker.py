from __future__ import annotations

import asyncio
import time
import traceback
from typing import Any

import pybreaker
import pytest

from policies.breaker import Breaker, BreakerOpen, BreakerSettings, UpstreamFailure

RECOVERY_S = 0.1


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ClientRejected(Exception):
    """Stands for a provider's 4xx answer: the provider works."""


def make(
    threshold: int = 3,
    recovery_s: float = RECOVERY_S,
    probes: int = 1,
    **kwargs: Any,
) -> Breaker:
    settings = BreakerSettings(
        failure_threshold=threshold, recovery_timeout_s=recovery_s, half_open_probes=probes
    )
    return Breaker("hub88:launch", settings, **kwargs)


async def fail(breaker: Breaker, exc: BaseException | None = None) -> BaseException:
    exc = exc or UpstreamFailure("502")
    with pytest.raises(type(exc)) as info:
        async with breaker.guard():
            raise exc
    return info.value


async def succeed(breaker: Breaker) -> None:
    async with breaker.guard():
        pass


async def trip(breaker: Breaker) -> None:
    for _ in range(breaker.settings.failure_threshold):
        await fail(breaker)
    assert breaker.state == "open"


async def wait_recovery() -> None:
    await asyncio.sleep(RECOVERY_S * 1.2)


class Probe:
    """A call held inside guard() until released, to test what runs concurrently with it."""

    def __init__(self, breaker: Breaker) -> None:
        self.breaker = breaker
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with self.breaker.guard():
            self.entered.set()
            await self.release.wait()
            if self.error is not None:
                raise self.error

    async def finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self.release.set()
        if error is None:
            await self.task
        else:
            with pytest.raises(type(error)):
                await self.task


# -- closed -> open


async def test_opens_after_exactly_threshold_consecutive_failures() -> None:
    breaker = make(threshold=3)
    await fail(breaker)
    await fail(breaker, TimeoutError("no answer"))
    assert (breaker.state, breaker.failure_count, breaker.allows()) == ("closed", 2, True)
    await fail(breaker)
    assert (breaker.state, breaker.failure_count, breaker.allows()) == ("open", 3, False)


async def test_success_resets_the_consecutive_count() -> None:
    breaker = make(threshold=3)
    await fail(breaker)
    await fail(breaker)
    await succeed(breaker)
    assert breaker.failure_count == 0
    await fail(breaker)
    await fail(breaker)
    assert (breaker.state, breaker.failure_count) == ("closed", 2)


async def test_tripping_failure_propagates_unchanged_not_circuit_breaker_error() -> None:
    breaker = make(threshold=1)
    cause = KeyError("parse")
    with pytest.raises(UpstreamFailure) as info:
        async with breaker.guard():
            try:
                raise cause
            except KeyError:
                raise UpstreamFailure("503") from None
    raised = info.value
    assert not isinstance(raised, pybreaker.CircuitBreakerError)
    assert raised.__context__ is cause and raised.__suppress_context__
    # Recording the failure inside pybreaker left no frames of its own on the traceback.
    frames = traceback.extract_tb(raised.__traceback__)
    assert [f.name for f in frames] == [
        "test_tripping_failure_propagates_unchanged_not_circuit_breaker_error"
    ]
    assert breaker.state == "open"


async def test_body_runs_and_result_is_kept_when_closed() -> None:
    breaker = make()
    ran = []
    async with breaker.guard():
        await asyncio.sleep(0)
        ran.append(1)
    assert ran == [1]
    assert breaker.failure_count == 0


# -- open


async def test_open_refuses_at_once_without_running_the_body() -> None:
    breaker = make(threshold=1, recovery_s=30)
    await fail(breaker)
    ran = []
    started = time.perf_counter()
    for _ in range(1000):
        with pytest.raises(BreakerOpen) as info:
            async with breaker.guard():
                ran.append(1)
    assert time.perf_counter() - started < 0.25
    assert ran == []
    assert 29 < info.value.retry_after_s <= 30
    assert info.value.name == "hub88:launch"
    # The refusal does not even suspend: the first step of __aenter__ raises.
    enter = breaker.guard().__aenter__()
    with pytest.raises(BreakerOpen):
        enter.send(None)
    assert breaker.failure_count == 1  # refusals are not failures


async def test_retry_after_counts_down_then_half_open_without_a_call() -> None:
    clock = FakeClock()
    changes: list[tuple[str, str, str]] = []
    breaker = make(
        threshold=1, recovery_s=30, clock=clock, on_change=lambda *c: changes.append(c)
    )
    await fail(breaker)
    assert breaker.retry_after_s() == 30.0
    clock.now += 12.5
    assert breaker.retry_after_s() == 17.5
    with pytest.raises(BreakerOpen) as info:
        await succeed(breaker)
    assert info.value.retry_after_s == 17.5
    clock.now += 17.5
    assert (breaker.state, breaker.allows(), breaker.retry_after_s()) == ("half_open", True, 0.0)
    # Reading is side-effect free: the transition is made by the call that probes.
    assert changes == [("hub88:launch", "closed", "open")]
    await succeed(breaker)
    assert changes[1:] == [
        ("hub88:launch", "open", "half_open"),
        ("hub88:launch", "half_open", "closed"),
    ]


async def test_closed_reports_no_wait() -> None:
    breaker = make()
    assert (breaker.state, breaker.allows(), breaker.retry_after_s()) == ("closed", True, 0.0)


# -- half-open


async def test_single_probe_passes_while_a_concurrent_call_is_refused() -> None:
    breaker = make(threshold=2, probes=1)
    await trip(breaker)
    await wait_recovery()
    assert breaker.state == "half_open"
    probe = Probe(breaker)
    await probe.entered.wait()
    assert breaker.allows() is False
    ran = []
    with pytest.raises(BreakerOpen) as info:
        async with breaker.guard():
            ran.append(1)
    assert ran == []
    assert info.value.retry_after_s == 0.0
    assert breaker.state == "half_open"
    await probe.finish()
    assert (breaker.state, breaker.failure_count, breaker.allows()) == ("closed", 0, True)


async def test_two_probes_pass_and_a_third_is_refused() -> None:
    breaker = make(threshold=2, probes=2)
    await trip(breaker)
    await wait_recovery()
    first, second = Probe(breaker), Probe(breaker)
    await first.entered.wait()
    await second.entered.wait()
    assert breaker.allows() is False
    with pytest.raises(BreakerOpen):
        await succeed(breaker)
    await first.finish()
    assert breaker.state == "closed"
    await second.finish()
    assert (breaker.state, breaker.failure_count) == ("closed", 0)


async def test_probe_failure_reopens_for_another_recovery_timeout() -> None:
    breaker = make(threshold=3)  # in half-open one failure is enough, whatever the threshold
    await trip(breaker)
    await wait_recovery()
    probe = Probe(breaker)
    await probe.entered.wait()
    await probe.finish(UpstreamFailure("500"))
    assert (breaker.state, breaker.allows()) == ("open", False)
    assert RECOVERY_S * 0.5 < breaker.retry_after_s() <= RECOVERY_S
    with pytest.raises(BreakerOpen):
        await succeed(breaker)
    await wait_recovery()
    assert breaker.state == "half_open"
    await succeed(breaker)
    assert (breaker.state, breaker.failure_count) == ("closed", 0)


async def test_late_probe_outcome_after_another_probe_decided_is_ignored() -> None:
    breaker = make(threshold=1, probes=2)
    await trip(breaker)
    await wait_recovery()
    first, second = Probe(breaker), Probe(breaker)
    await first.entered.wait()
    await second.entered.wait()
    await first.finish(UpstreamFailure("500"))
    assert breaker.state == "open"
    await second.finish()  # answered for a half-open state that no longer exists
    assert (breaker.state, breaker.allows()) == ("open", False)


# -- calls that outlive the state they started in


async def test_failure_of_a_call_started_before_the_trip_does_not_extend_open() -> None:
    clock = FakeClock()
    breaker = make(threshold=1, recovery_s=30, clock=clock)
    straggler = Probe(breaker)  # closed: an ordinary call, held open
    await straggler.entered.wait()
    await fail(breaker)
    clock.now += 10
    await straggler.finish(UpstreamFailure("504"))
    assert (breaker.state, breaker.retry_after_s(), breaker.failure_count) == ("open", 20.0, 1)


async def test_call_started_before_the_trip_cannot_reopen_during_a_probe() -> None:
    breaker = make(threshold=1)
    straggler = Probe(breaker)
    await straggler.entered.wait()
    await fail(breaker)
    await wait_recovery()
    probe = Probe(breaker)
    await probe.entered.wait()
    await straggler.finish(UpstreamFailure("504"))
    assert breaker.state == "half_open"
    await probe.finish()
    assert breaker.state == "closed"


async def test_success_of_a_call_started_before_the_trip_does_not_close() -> None:
    breaker = make(threshold=1, recovery_s=30)
    straggler = Probe(breaker)
    await straggler.entered.wait()
    await fail(breaker)
    await straggler.finish()
    assert (breaker.state, breaker.allows()) == ("open", False)


# -- what is not counted


async def test_cancellation_is_reraised_and_not_counted() -> None:
    breaker = make(threshold=3)
    await fail(breaker)
    await fail(breaker)
    call = Probe(breaker)
    await call.entered.wait()
    call.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call.task
    # Neither a failure nor a success: the count neither grows nor resets.
    assert (breaker.state, breaker.failure_count) == ("closed", 2)
    await fail(breaker)
    assert breaker.state == "open"


async def test_cancelled_probe_frees_its_slot_and_leaves_half_open() -> None:
    changes: list[tuple[str, str, str]] = []
    breaker = make(threshold=1, on_change=lambda *c: changes.append(c))
    await trip(breaker)
    await wait_recovery()
    probe = Probe(breaker)
    await probe.entered.wait()
    probe.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe.task
    assert (breaker.state, breaker.allows()) == ("half_open", True)
    assert [new for _, _, new in changes] == ["open", "half_open"]
    await succeed(breaker)
    assert breaker.state == "closed"


async def test_ignored_errors_propagate_and_never_trip() -> None:
    breaker = make(threshold=2, ignore=(ClientRejected,))
    for _ in range(10):
        rejected = ClientRejected("404 game not found")
        assert await fail(breaker, rejected) is rejected
    assert (breaker.state, breaker.failure_count) == ("closed", 0)


async def test_ignored_error_is_an_answer_so_it_resets_the_count() -> None:
    breaker = make(threshold=2, ignore=(ClientRejected,))
    await fail(breaker)
    await fail(breaker, ClientRejected("422"))
    assert breaker.failure_count == 0
    await fail(breaker)
    assert breaker.state == "closed"


async def test_probe_answered_with_an_ignored_error_closes() -> None:
    breaker = make(threshold=1, ignore=(ClientRejected,))
    await trip(breaker)
    await wait_recovery()
    await fail(breaker, ClientRejected("401"))
    assert breaker.state == "closed"


async def test_unlisted_exceptions_count_as_failures() -> None:
    breaker = make(threshold=2, ignore=(ClientRejected,))
    await fail(breaker, ConnectionResetError())
    await fail(breaker, ValueError("garbage body"))
    assert breaker.state == "open"


# -- transitions


async def test_on_change_sees_the_full_cycle() -> None:
    changes: list[tuple[str, str, str]] = []
    breaker = make(threshold=2, on_change=lambda *c: changes.append(c))
    await trip(breaker)
    await wait_recovery()
    await succeed(breaker)
    assert changes == [
        ("hub88:launch", "closed", "open"),
        ("hub88:launch", "open", "half_open"),
        ("hub88:launch", "half_open", "closed"),
    ]


async def test_failing_on_change_does_not_change_the_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_: str) -> None:
        raise RuntimeError("metrics down")

    breaker = make(threshold=1, on_change=broken)
    original = UpstreamFailure("500")
    assert await fail(breaker, original) is original
    assert breaker.state == "open"
    assert "state-change callback failed" in caplog.text


async def test_force_open_and_force_close() -> None:
    clock = FakeClock()
    changes: list[tuple[str, str, str]] = []
    breaker = make(recovery_s=30, clock=clock, on_change=lambda *c: changes.append(c))
    await fail(breaker)
    breaker.force_open()
    assert (breaker.state, breaker.allows(), breaker.retry_after_s()) == ("open", False, 30.0)
    with pytest.raises(BreakerOpen):
        await succeed(breaker)
    clock.now += 20
    breaker.force_open()  # news of a newer trip elsewhere restarts the timeout
    assert breaker.retry_after_s() == 30.0
    breaker.force_close()
    assert (breaker.state, breaker.failure_count, breaker.allows()) == ("closed", 0, True)
    breaker.force_close()
    assert changes == [
        ("hub88:launch", "closed", "open"),
        ("hub88:launch", "open", "closed"),
    ]


async def test_force_close_during_probe_ignores_the_probe_outcome() -> None:
    breaker = make(threshold=1)
    await trip(breaker)
    await wait_recovery()
    probe = Probe(breaker)
    await probe.entered.wait()
    breaker.force_close()
    await probe.finish(UpstreamFailure("500"))
    assert (breaker.state, breaker.failure_count) == ("closed", 0)


@pytest.mark.parametrize(
    ("threshold", "recovery_s", "probes"), [(0, 1.0, 1), (1, -1.0, 1), (1, 1.0, 0)]
)
def test_rejects_invalid_settings(threshold: int, recovery_s: float, probes: int) -> None:
    with pytest.raises(ValueError):
        make(threshold=threshold, recovery_s=recovery_s, probes=probes)
