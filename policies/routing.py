"""Routing rules: which providers a payment is offered to, in which order. A plain decision.

A route has a default provider order and, optionally, rules. The first rule whose `match`
fits the payment decides its order; when none fits, the default order does. A rule names
its providers in order, or a `split` of weights: the first provider is then picked by
weight, the same one for every request with one idempotency key (a hash of the key, never a
random draw, so a replay goes the same way), and the split's other providers follow in the
order written.

Each field of a match narrows it (type, method, currency, country: one value or a list;
`amount_gte` and `amount_lt`: minor units); an empty match fits every payment. A payment
without a country never fits a rule that asks for one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_RULE = "default"


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """What a rule may look at."""

    type: str
    method: str
    currency: str
    amount: int
    country: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    types: frozenset[str] | None = None
    methods: frozenset[str] | None = None
    currencies: frozenset[str] | None = None
    countries: frozenset[str] | None = None
    amount_gte: int | None = None
    amount_lt: int | None = None

    def fits(self, payment: PaymentFacts) -> bool:
        return (
            _within(self.types, payment.type)
            and _within(self.methods, payment.method)
            and _within(self.currencies, payment.currency)
            and _within(self.countries, payment.country)
            and (self.amount_gte is None or payment.amount >= self.amount_gte)
            and (self.amount_lt is None or payment.amount < self.amount_lt)
        )

    def covers(self, other: Match) -> bool:
        """Does every payment `other` fits also fit this match? Then a rule with `other`
        after a rule with this one can never be chosen."""
        return (
            _subset(other.types, self.types)
            and _subset(other.methods, self.methods)
            and _subset(other.currencies, self.currencies)
            and _subset(other.countries, self.countries)
            and (
                self.amount_gte is None
                or (other.amount_gte is not None and other.amount_gte >= self.amount_gte)
            )
            and (
                self.amount_lt is None
                or (other.amount_lt is not None and other.amount_lt <= self.amount_lt)
            )
        )

    def is_empty(self) -> bool:
        """Can no payment fit it (an amount range with nothing in it)?"""
        return (
            self.amount_gte is not None
            and self.amount_lt is not None
            and self.amount_lt <= self.amount_gte
        )


def _within(allowed: frozenset[str] | None, value: str | None) -> bool:
    return allowed is None or (value is not None and value in allowed)


def _subset(narrow: frozenset[str] | None, wide: frozenset[str] | None) -> bool:
    if wide is None:
        return True
    return narrow is not None and narrow <= wide


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # the metric label and what `attempts` records
    match: Match
    providers: tuple[str, ...] = ()
    split: tuple[tuple[str, int], ...] = ()  # (provider, weight), in the order written

    def named(self) -> tuple[str, ...]:
        return self.providers or tuple(name for name, _ in self.split)

    def order(self, split_key: str) -> tuple[str, ...]:
        if not self.split:
            return self.providers
        first = split_choice(self.split, split_key)
        return (first, *(name for name, _ in self.split if name != first))


@dataclass(frozen=True, slots=True)
class Routed:
    rule: str
    providers: tuple[str, ...]


def route_payment(
    rules: Sequence[Rule], default: Sequence[str], payment: PaymentFacts, split_key: str
) -> Routed:
    """The order to offer `payment` in: the first rule that fits, else the default."""
    for rule in rules:
        if rule.match.fits(payment):
            return Routed(rule.name, rule.order(split_key))
    return Routed(DEFAULT_RULE, tuple(default))


def split_choice(split: Sequence[tuple[str, int]], split_key: str) -> str:
    """The provider a split gives this key: the same on every call for one key, and over
    many keys each provider's share tends to its weight. Buckets are laid out by provider
    name, so writing the split in another order sends no key elsewhere."""
    total = sum(weight for _, weight in split)
    if total <= 0:
        return split[0][0]
    digest = hashlib.sha256(split_key.encode("utf-8")).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for name, weight in sorted(split):
        if point < weight:
            return name
        point -= weight
    return max(split)[0]  # not reached: the weights sum to `total`


def unreachable(rules: Sequence[Rule]) -> list[tuple[int, int]]:
    """(rule, earlier rule that takes every payment it would): rules that can never match."""
    found: list[tuple[int, int]] = []
    for later, rule in enumerate(rules):
        for earlier in range(later):
            if rules[earlier].match.covers(rule.match):
                found.append((later, earlier))
                break
    return found
