"""Routing rules as a decision: the issue's example rules route as written, splits keep their
shares and their keys, and a rule an earlier one always takes is found."""

from __future__ import annotations

from collections import Counter

import pytest

from policies.routing import (
    DEFAULT_RULE,
    Match,
    PaymentFacts,
    Rule,
    route_payment,
    split_choice,
    unreachable,
)

DEFAULT = ("stripe", "adyen", "trustly")
RULES = (
    Rule("withdrawals", Match(types=frozenset({"withdrawal"})), providers=("trustly", "adyen")),
    Rule(
        "nordic-bank",
        Match(
            methods=frozenset({"bank_transfer"}),
            currencies=frozenset({"SEK", "EUR"}),
            countries=frozenset({"SE", "FI"}),
        ),
        providers=("trustly",),
    ),
    Rule(
        "large-eur",
        Match(amount_gte=100000, currencies=frozenset({"EUR"})),
        providers=("adyen", "stripe"),
    ),
    Rule("cards", Match(methods=frozenset({"card"})), split=(("stripe", 70), ("adyen", 30))),
)


def facts(**changes: object) -> PaymentFacts:
    base: dict[str, object] = {
        "type": "deposit",
        "method": "card",
        "currency": "EUR",
        "amount": 2500,
        "country": "DE",
    }
    base.update(changes)
    return PaymentFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payment", "rule", "first_choices"),
    [
        (facts(type="withdrawal", method="bank_transfer"), "withdrawals", {("trustly", "adyen")}),
        # A card withdrawal is a withdrawal first: the first rule that fits wins.
        (facts(type="withdrawal"), "withdrawals", {("trustly", "adyen")}),
        (
            facts(method="bank_transfer", currency="SEK", country="SE"),
            "nordic-bank",
            {("trustly",)},
        ),
        (facts(method="bank_transfer", country="FI"), "nordic-bank", {("trustly",)}),
        # A Swedish bank payment in NOK, or a German one in EUR, is not the Nordic rule's.
        (facts(method="bank_transfer", currency="NOK", country="SE"), DEFAULT_RULE, {DEFAULT}),
        (facts(method="bank_transfer", country="DE"), DEFAULT_RULE, {DEFAULT}),
        # No country given: a rule asking for one does not fit.
        (facts(method="bank_transfer", country=None), DEFAULT_RULE, {DEFAULT}),
        (facts(amount=100000), "large-eur", {("adyen", "stripe")}),
        (facts(amount=99999), "cards", {("stripe", "adyen"), ("adyen", "stripe")}),
        (
            facts(amount=100000, currency="USD"),
            "cards",
            {("stripe", "adyen"), ("adyen", "stripe")},
        ),
        (facts(method="ewallet"), DEFAULT_RULE, {DEFAULT}),
    ],
)
def test_each_example_rule_routes_as_written(
    payment: PaymentFacts, rule: str, first_choices: set[tuple[str, ...]]
) -> None:
    routed = route_payment(RULES, DEFAULT, payment, "client\0key-1")
    assert routed.rule == rule
    assert routed.providers in first_choices


def test_a_split_of_70_30_over_1000_keys_lands_within_a_few_percent() -> None:
    split = (("stripe", 70), ("adyen", 30))
    firsts = Counter(split_choice(split, f"web\0key-{i}") for i in range(1000))
    assert set(firsts) == {"stripe", "adyen"}
    assert abs(firsts["stripe"] - 700) <= 40, firsts


def test_a_split_gives_one_key_the_same_provider_every_time_and_the_other_after_it() -> None:
    rule = RULES[3]
    for i in range(50):
        key = f"web\0replayed-{i}"
        orders = {rule.order(key) for _ in range(5)}
        assert len(orders) == 1
        assert set(next(iter(orders))) == {"stripe", "adyen"}


def test_the_order_a_split_is_written_in_sends_no_key_elsewhere() -> None:
    for i in range(200):
        key = f"web\0order-{i}"
        assert split_choice((("stripe", 70), ("adyen", 30)), key) == split_choice(
            (("adyen", 30), ("stripe", 70)), key
        )


def test_a_weight_of_zero_is_never_first() -> None:
    split = (("stripe", 0), ("adyen", 1))
    assert {split_choice(split, f"k{i}") for i in range(200)} == {"adyen"}


def test_no_rules_is_the_default_order() -> None:
    routed = route_payment((), DEFAULT, facts(), "k")
    assert (routed.rule, routed.providers) == (DEFAULT_RULE, DEFAULT)


@pytest.mark.parametrize(
    ("earlier", "later", "shadowed"),
    [
        (Match(), Match(types=frozenset({"deposit"})), True),
        (Match(methods=frozenset({"card"})), Match(methods=frozenset({"card"})), True),
        (
            Match(currencies=frozenset({"EUR", "SEK"})),
            Match(currencies=frozenset({"SEK"}), countries=frozenset({"SE"})),
            True,
        ),
        (Match(amount_gte=1000), Match(amount_gte=5000), True),
        (Match(amount_gte=5000), Match(amount_gte=1000), False),
        (Match(amount_lt=5000), Match(amount_gte=10, amount_lt=100), True),
        (Match(amount_lt=5000), Match(amount_gte=10), False),
        (Match(methods=frozenset({"card"})), Match(types=frozenset({"deposit"})), False),
        (Match(currencies=frozenset({"EUR"})), Match(currencies=frozenset({"EUR", "SEK"})), False),
    ],
)
def test_a_rule_an_earlier_one_always_takes_is_unreachable(
    earlier: Match, later: Match, shadowed: bool
) -> None:
    rules = [Rule("a", earlier, providers=("x",)), Rule("b", later, providers=("y",))]
    assert unreachable(rules) == ([(1, 0)] if shadowed else [])


def test_the_example_rules_are_all_reachable() -> None:
    assert unreachable(RULES) == []


def test_an_empty_amount_range_fits_nothing() -> None:
    match = Match(amount_gte=100, amount_lt=100)
    assert match.is_empty()
    assert not match.fits(facts(amount=100))
