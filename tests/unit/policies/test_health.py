from __future__ import annotations

import pytest

from policies.health import HealthSettings, HealthTracker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SETTINGS = HealthSettings(interval_s=10.0, unhealthy_after=3, healthy_after=2)
NO_CHECKS = HealthSettings(interval_s=10.0, unhealthy_after=3, healthy_after=2, enabled=False)


def tracker(settings: HealthSettings = SETTINGS, **kw: bool) -> tuple[HealthTracker, FakeClock]:
    clock = FakeClock()
    return HealthTracker(settings, clock=clock, **kw), clock


def test_starts_healthy() -> None:
    t, _ = tracker()
    assert (t.healthy, t.active_healthy, t.passive_healthy, t.reason) == (True, True, True, None)


def test_rejects_thresholds_below_one() -> None:
    with pytest.raises(ValueError):
        HealthTracker(HealthSettings(unhealthy_after=0))
    with pytest.raises(ValueError):
        HealthTracker(HealthSettings(healthy_after=0))


# -- active


def test_active_failure_threshold_exact() -> None:
    t, _ = tracker()
    assert [t.record_active(False) for _ in range(2)] == [False, False]
    assert t.healthy and t.active_healthy
    assert t.record_active(False) is True
    assert (t.healthy, t.active_healthy, t.passive_healthy) == (False, False, True)
    assert t.reason == "3 failed health checks"
    assert t.record_active(False) is False  # already out: no change
    assert t.reason == "3 failed health checks"


def test_active_success_threshold_exact() -> None:
    t, _ = tracker()
    for _ in range(3):
        t.record_active(False)
    assert t.record_active(True) is False  # 1 of 2
    assert not t.healthy
    assert t.record_active(True) is True
    assert t.healthy and t.active_healthy and t.reason is None
    assert t.record_active(True) is False


def test_active_failure_streak_broken_by_a_success() -> None:
    t, _ = tracker()
    t.record_active(False)
    t.record_active(False)
    t.record_active(True)
    t.record_active(False)
    t.record_active(False)
    assert t.active_healthy
    assert t.record_active(False) is True
    assert not t.active_healthy


def test_active_recovery_streak_broken_by_a_failure() -> None:
    t, _ = tracker()
    for _ in range(3):
        t.record_active(False)
    t.record_active(True)
    t.record_active(False)
    assert t.record_active(True) is False
    assert not t.active_healthy
    assert t.record_active(True) is True


def test_thresholds_of_one() -> None:
    t, _ = tracker(HealthSettings(unhealthy_after=1, healthy_after=1))
    assert t.record_active(False) is True
    assert t.reason == "1 failed health check"
    assert t.record_active(True) is True
    assert t.record_passive(False) is True
    assert t.reason == "1 failed request"


# -- passive


def test_passive_failure_threshold_exact() -> None:
    t, _ = tracker()
    assert [t.record_passive(False) for _ in range(2)] == [False, False]
    assert t.healthy
    assert t.record_passive(False) is True
    assert (t.healthy, t.active_healthy, t.passive_healthy) == (False, True, False)
    assert t.reason == "3 failed requests"
    assert t.record_passive(False) is False


def test_passive_success_resets_the_count() -> None:
    t, _ = tracker()
    t.record_passive(False)
    t.record_passive(False)
    assert t.record_passive(True) is False
    t.record_passive(False)
    t.record_passive(False)
    assert t.passive_healthy
    assert t.snapshot()["passive_consecutive_failures"] == 2


def test_live_success_recovers_a_passive_unhealthy_provider() -> None:
    # Selection still routes to it when it is the last one; a success proves it works.
    t, _ = tracker()
    for _ in range(3):
        t.record_passive(False)
    assert t.record_passive(True) is True
    assert t.healthy and t.reason is None


def test_passive_recovers_after_healthy_after_active_successes() -> None:
    t, clock = tracker()
    for _ in range(3):
        t.record_passive(False)
    clock.now += 3600  # time alone does not help while probes run
    assert not t.passive_healthy
    assert t.record_active(True) is False  # 1 of 2
    assert not t.passive_healthy
    assert t.record_active(True) is True
    assert t.passive_healthy and t.healthy and t.reason is None
    assert t.snapshot()["passive_consecutive_failures"] == 0


def test_probe_successes_before_the_passive_failures_do_not_count() -> None:
    t, _ = tracker()
    for _ in range(5):
        t.record_active(True)
    for _ in range(3):
        t.record_passive(False)
    assert t.record_active(True) is False
    assert not t.passive_healthy
    assert t.record_active(True) is True


def test_a_failed_probe_restarts_passive_recovery() -> None:
    t, _ = tracker()
    for _ in range(3):
        t.record_passive(False)
    t.record_active(True)
    t.record_active(False)
    assert t.record_active(True) is False
    assert not t.passive_healthy
    assert t.record_active(True) is True


def test_both_unhealthy_need_both_to_recover() -> None:
    t, _ = tracker()
    for _ in range(3):
        t.record_active(False)
        t.record_passive(False)
    assert t.reason == "3 failed health checks; 3 failed requests"
    assert t.record_active(True) is False
    # Second success clears both: the probes meet both thresholds at once.
    assert t.record_active(True) is True
    assert t.healthy and t.reason is None


def test_passive_unhealthy_while_active_unhealthy_reports_no_change() -> None:
    t, _ = tracker()
    for _ in range(3):
        t.record_active(False)
    assert [t.record_passive(False) for _ in range(3)] == [False, False, False]
    assert not t.passive_healthy


# -- recovery by time when nothing probes


@pytest.mark.parametrize(
    ("settings", "kw"),
    [(NO_CHECKS, {}), (SETTINGS, {"active_checks": False})],
    ids=["disabled", "no-checker"],
)
def test_without_active_checks_passive_recovers_after_interval(
    settings: HealthSettings, kw: dict[str, bool]
) -> None:
    t, clock = tracker(settings, **kw)
    assert t.active_checks is False
    for _ in range(3):
        t.record_passive(False)
    clock.now += 9.999
    assert not t.passive_healthy and not t.healthy
    clock.now += 0.001
    assert t.passive_healthy and t.healthy and t.reason is None


def test_timed_recovery_is_probation_one_failure_takes_it_out_again() -> None:
    t, clock = tracker(NO_CHECKS)
    for _ in range(3):
        t.record_passive(False)
    clock.now += 10
    assert t.record_passive(False) is True  # True -> False, seen from this call
    assert not t.passive_healthy
    assert t.reason == "failed again after 10s out"
    clock.now += 9.5
    assert not t.passive_healthy  # a fresh rest period started at the failure
    clock.now += 0.5
    assert t.passive_healthy


def test_timed_recovery_then_success_clears_probation() -> None:
    t, clock = tracker(NO_CHECKS)
    for _ in range(3):
        t.record_passive(False)
    clock.now += 10
    assert t.record_passive(True) is False  # already back by time
    assert t.record_passive(False) is False  # probation over: counts from 1 again
    assert t.record_passive(False) is False
    assert t.record_passive(False) is True


def test_change_flag_sees_an_ended_rest_period() -> None:
    t, clock = tracker(NO_CHECKS)
    for _ in range(3):
        t.record_passive(False)
    clock.now += 10
    # Nobody read the state at the moment the rest ended; the success reports no change
    # because, as of this call, the provider was already healthy again.
    assert t.record_passive(True) is False
    assert t.healthy


def test_with_active_checks_time_alone_never_recovers() -> None:
    t, clock = tracker()
    for _ in range(3):
        t.record_passive(False)
    clock.now += 10_000
    assert not t.passive_healthy


# -- snapshot


def test_snapshot_fields() -> None:
    t, clock = tracker()
    assert t.snapshot() == {
        "healthy": True,
        "active_healthy": True,
        "passive_healthy": True,
        "active_checks": True,
        "consecutive_failures": 0,
        "consecutive_successes": 0,
        "passive_consecutive_failures": 0,
        "last_checked_age_s": None,
        "reason": None,
    }
    for _ in range(4):
        t.record_active(False)
    t.record_passive(False)
    clock.now += 2.5
    assert t.snapshot() == {
        "healthy": False,
        "active_healthy": False,
        "passive_healthy": True,
        "active_checks": True,
        "consecutive_failures": 4,
        "consecutive_successes": 0,
        "passive_consecutive_failures": 1,
        "last_checked_age_s": 2.5,
        "reason": "3 failed health checks",
    }
    t.record_active(True)
    snap = t.snapshot()
    assert (snap["consecutive_failures"], snap["consecutive_successes"]) == (0, 1)
    assert snap["last_checked_age_s"] == 0.0


def test_snapshot_reports_disabled_checks() -> None:
    t, _ = tracker(NO_CHECKS)
    assert t.snapshot()["active_checks"] is False
