from __future__ import annotations

from typing import Any

import pytest

from gateway.upstream.selection import ProviderView, Selection, select

ROUTE = ("a", "b", "c")


def views(**overrides: dict[str, Any]) -> dict[str, ProviderView]:
    return {name: ProviderView(name, **kw) for name, kw in overrides.items()}


def test_all_healthy_keeps_route_order() -> None:
    assert select(ROUTE, views(a={}, b={}, c={})) == Selection(("a", "b", "c"), (), 0.0)
    assert select(("c", "a", "b"), views(a={}, b={}, c={})).candidates == ("c", "a", "b")


def test_missing_view_is_a_default_view() -> None:
    assert select(ROUTE, {}) == Selection(("a", "b", "c"), (), 0.0)


def test_duplicate_route_entries_are_tried_once() -> None:
    assert select(("a", "b", "a"), {}).candidates == ("a", "b")


@pytest.mark.parametrize(
    ("view", "reason"),
    [
        ({"drained": True}, "drained"),
        ({"active_healthy": False}, "unhealthy"),
        ({"breaker_allows": False, "retry_after_s": 12.0}, "breaker_open"),
        ({"cooldown_s": 3.0}, "cooling_down"),
    ],
)
def test_each_hard_block_drops_the_provider(view: dict[str, Any], reason: str) -> None:
    result = select(ROUTE, views(b=view))
    assert result == Selection(("a", "c"), (("b", reason),), 0.0)


def test_first_reason_in_fixed_order_is_reported() -> None:
    every = {"drained": True, "active_healthy": False, "breaker_allows": False, "cooldown_s": 2.0}
    assert select(("a",), views(a=every)).skipped == (("a", "drained"),)
    no_drain = {**every, "drained": False}
    assert select(("a",), views(a=no_drain)).skipped == (("a", "unhealthy"),)
    breaker_and_cool = {"breaker_allows": False, "cooldown_s": 2.0}
    assert select(("a",), views(a=breaker_and_cool)).skipped == (("a", "breaker_open"),)


def test_skips_are_listed_in_route_order() -> None:
    result = select(
        ROUTE,
        views(a={"cooldown_s": 1.0}, b={"passive_healthy": False}, c={"drained": True}),
    )
    # b is only passive-unhealthy and the last usable one: it stays.
    assert result == Selection(("b",), (("a", "cooling_down"), ("c", "drained")), 0.0)


def test_passive_unhealthy_dropped_while_a_healthy_one_remains() -> None:
    result = select(("a", "b"), views(a={"passive_healthy": False}))
    assert result == Selection(("b",), (("a", "unhealthy"),), 0.0)


def test_all_passive_unhealthy_are_kept_in_order() -> None:
    result = select(("a", "b"), views(a={"passive_healthy": False}, b={"passive_healthy": False}))
    assert result == Selection(("a", "b"), (), 0.0)


def test_passive_unhealthy_plus_active_unhealthy_gives_none() -> None:
    result = select(
        ("a", "b"),
        views(a={"passive_healthy": False, "active_healthy": False}, b={"active_healthy": False}),
    )
    assert result == Selection((), (("a", "unhealthy"), ("b", "unhealthy")), 5.0)


def test_passive_only_provider_kept_when_the_healthy_one_is_hard_blocked() -> None:
    result = select(("a", "b"), views(a={"drained": True}, b={"passive_healthy": False}))
    assert result == Selection(("b",), (("a", "drained"),), 0.0)


def test_mixed_passive_keeps_only_passive_healthy_in_order() -> None:
    result = select(
        ("a", "b", "c", "d"),
        views(a={"passive_healthy": False}, b={}, c={"breaker_allows": False}, d={}),
    )
    assert result.candidates == ("b", "d")
    assert result.skipped == (("a", "unhealthy"), ("c", "breaker_open"))


def test_offered_by_restricts_without_skipping() -> None:
    result = select(ROUTE, views(a={}, b={}, c={}), offered_by={"c", "a"})
    assert result == Selection(("a", "c"), (), 0.0)


def test_offered_by_nobody_gives_none_with_default_retry() -> None:
    assert select(ROUTE, {}, offered_by=frozenset()) == Selection((), (), 1.0)
    assert select((), {}) == Selection((), (), 1.0)


def test_offered_by_applies_before_the_last_provider_rule() -> None:
    # The only offering provider is passive-unhealthy: it is kept even though b is healthy.
    result = select(("a", "b"), views(a={"passive_healthy": False}), offered_by=["a"])
    assert result == Selection(("a",), (), 0.0)


def test_offered_by_hides_blocked_providers_from_skipped() -> None:
    result = select(("a", "b"), views(a={"drained": True}, b={"drained": True}), offered_by=["b"])
    assert result == Selection((), (("b", "drained"),), 5.0)


def test_retry_after_is_the_soonest_known_return() -> None:
    result = select(
        ROUTE,
        views(
            a={"breaker_allows": False, "retry_after_s": 12.5},
            b={"cooldown_s": 3.0},
            c={"drained": True},
        ),
    )
    assert result.candidates == ()
    assert result.retry_after_s == 3.0


def test_retry_after_uses_breaker_time() -> None:
    result = select(("a",), views(a={"breaker_allows": False, "retry_after_s": 7.25}))
    assert result == Selection((), (("a", "breaker_open"),), 7.25)


def test_retry_after_is_at_least_one_second() -> None:
    assert select(("a",), views(a={"cooldown_s": 0.2})).retry_after_s == 1.0
    # Half-open with its probe in flight: not allowed, no known time.
    half_open = views(a={"breaker_allows": False, "retry_after_s": 0.0})
    assert select(("a",), half_open).retry_after_s == 1.0


def test_retry_after_for_unknown_end_is_five_seconds() -> None:
    assert select(("a",), views(a={"drained": True})).retry_after_s == 5.0
    assert select(("a",), views(a={"active_healthy": False})).retry_after_s == 5.0


def test_retry_after_of_one_provider_waits_for_its_longest_block() -> None:
    both = views(a={"breaker_allows": False, "retry_after_s": 20.0, "cooldown_s": 2.0})
    result = select(("a",), both)
    assert result == Selection((), (("a", "breaker_open"),), 20.0)
    drained_and_open = views(a={"drained": True, "breaker_allows": False, "retry_after_s": 30.0})
    assert select(("a",), drained_and_open).retry_after_s == 30.0


def test_retry_after_is_zero_when_there_is_a_candidate() -> None:
    result = select(("a", "b"), views(a={"cooldown_s": 9.0}))
    assert result.retry_after_s == 0.0
