"""The routing rules of `routes.payments.create`: typed, and checked for what a schema cannot.

A rule names providers that exist and serve payments, each able to take the payments the
rule matches (its types, methods and currencies); a split's weights add up to something; no
rule is unreachable because an earlier one takes every payment it would; no match has an
empty amount range. And a warning when no provider the route can reach pays players out:
every withdrawal would then be refused.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from gateway.config.model import ProviderConfig
from policies.routing import Match, Rule, unreachable

Report = Callable[[str, str], None]


def _values(given: Any) -> frozenset[str] | None:
    if given is None:
        return None
    return frozenset([given] if isinstance(given, str) else given)


def _match(spec: dict[str, Any]) -> Match:
    return Match(
        types=_values(spec.get("type")),
        methods=_values(spec.get("method")),
        currencies=_values(spec.get("currency")),
        countries=_values(spec.get("country")),
        amount_gte=spec.get("amount_gte"),
        amount_lt=spec.get("amount_lt"),
    )


def build_rules(
    path: str,
    given: list[dict[str, Any]],
    providers: Mapping[str, ProviderConfig],
    known: set[str],
    fail: Report,
) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    names: set[str] = set()
    for i, spec in enumerate(given):
        rpath = f"{path}.rules[{i}]"
        name = spec.get("name") or f"rules[{i}]"
        if name in names:
            fail(f"{rpath}.name", f"another rule is named '{name}'")
        names.add(name)
        match = _match(spec.get("match", {}))
        if match.is_empty():
            fail(f"{rpath}.match", "amount_gte is not below amount_lt: no payment can match")
        split = tuple((str(k), int(v)) for k, v in (spec.get("split") or {}).items())
        if split and sum(weight for _, weight in split) <= 0:
            fail(f"{rpath}.split", "the weights add up to 0: no provider could be chosen")
        rule = Rule(name, match, providers=tuple(spec.get("providers") or ()), split=split)
        key = "providers" if rule.providers else "split"
        for j, provider in enumerate(rule.named()):
            ppath = f"{rpath}.{key}[{j}]" if key == "providers" else f"{rpath}.split.{provider}"
            problem = _provider_problem(provider, match, providers, known)
            if problem:
                fail(ppath, problem)
        rules.append(rule)
    for later, earlier in unreachable(rules):
        fail(
            f"{path}.rules[{later}]",
            f"can never match: rules[{earlier}] ('{rules[earlier].name}') comes first and "
            "takes every payment it would",
        )
    return tuple(rules)


def _provider_problem(
    name: str, match: Match, providers: Mapping[str, ProviderConfig], known: set[str]
) -> str | None:
    if name not in known:
        return f"unknown provider '{name}'"
    config = providers.get(name)
    if config is None:
        return None  # refused for reasons of its own, reported under providers
    if config.kind != "payments":
        return f"provider '{name}' uses the {config.kind} adapter '{config.adapter_name}'"
    spec = config.spec
    for payment_type, method, currency in itertools.product(
        _each(match.types), _each(match.methods), _each(match.currencies)
    ):
        if not spec.serves(payment_type, method, currency):
            what = " ".join(
                part
                for part in (payment_type or "payments", method and f"by {method}",
                             currency and f"in {currency}")
                if part
            )
            return f"provider '{name}' cannot take {what}"
    return None


def _each(values: frozenset[str] | None) -> list[str | None]:
    """Each value a match names, or None standing for any."""
    return list(sorted(values)) if values else [None]


def withdrawal_warning(
    path: str, default: tuple[str, ...], rules: tuple[Rule, ...],
    providers: Mapping[str, ProviderConfig],
) -> str | None:
    """A warning when no provider withdrawals can reach pays players out."""
    reachable = dict.fromkeys(default)
    for rule in rules:
        if rule.match.types is None or "withdrawal" in rule.match.types:
            reachable.update(dict.fromkeys(rule.named()))
    known = [providers[name] for name in reachable if name in providers]
    if not known or any("withdrawal" in p.spec.payment_types for p in known):
        return None
    return (
        f"{path}: no provider this route can reach pays players out "
        f"({', '.join(p.name for p in known)}): every withdrawal will be refused with 422"
    )
