"""`routes.payments.create.rules` and `cascade_soft_declines`: parsed as the issue spells them,
checked for meaning by `check`, and the warning about routes that cannot pay players out."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from gateway.config.errors import ConfigError
from gateway.config.load import parse_config
from policies.routing import Match, Rule
from simulators.stack import DemoSecrets

EXAMPLE_ROUTE = """
providers: [stripe, adyen, trustly]       # default order and the fallback
cascade_soft_declines: true
rules:
  - match: {type: withdrawal}
    providers: [trustly, adyen]
  - match: {method: bank_transfer, currency: [SEK, EUR], country: [SE, FI]}
    providers: [trustly]
  - match: {amount_gte: 100000, currency: EUR}
    providers: [adyen, stripe]
  - match: {method: card}
    split: {stripe: 70, adyen: 30}       # weighted first choice, the rest follow in order
"""


def doc_with(route: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "version": 1,
        "providers": {
            "stripe": {
                "adapter": "stripe",
                "base_url": "http://127.0.0.1:9103",
                "credentials": {"secret_key_env": "STRIPE_SECRET_KEY"},
            },
            "adyen": {
                "adapter": "adyen",
                "base_url": "http://127.0.0.1:9104",
                "credentials": {"api_key_env": "ADYEN_API_KEY", "merchant_account": "Casino"},
            },
            "trustly": {
                "adapter": "trustly",
                "base_url": "http://127.0.0.1:9105",
                "credentials": {
                    "username": "casino",
                    "password_env": "TRUSTLY_PASSWORD",
                    "private_key_env": "TRUSTLY_PRIVATE_KEY",
                    "trustly_public_key_env": "TRUSTLY_PUBLIC_KEY",
                    "notification_url": "https://gateway.example/v1/webhooks/trustly",
                },
            },
            "hub88": {
                "adapter": "hub88",
                "base_url": "http://127.0.0.1:9101",
                "credentials": {"operator_id": 1, "private_key_env": "HUB88_PRIVATE_KEY"},
            },
        },
        "routes": {
            "payments.create": route or yaml.safe_load(EXAMPLE_ROUTE),
            "payments.get": {"providers": ["stripe", "adyen", "trustly"]},
        },
    }


def env_of(demo: DemoSecrets) -> dict[str, str]:
    return demo.env()


def problems(doc: dict[str, Any], demo: DemoSecrets) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(doc).encode(), env=env_of(demo))
    return info.value.problems


def test_the_issue_example_parses_as_written(demo_secrets: DemoSecrets) -> None:
    # Written as a file would be: a split's order is the order written.
    text = yaml.safe_dump(doc_with(), sort_keys=False)
    config = parse_config(text.encode(), env=env_of(demo_secrets))
    route = config.routes["payments.create"]
    assert route.providers == ("stripe", "adyen", "trustly")
    assert route.cascade_soft_declines is True
    assert route.rules == (
        Rule("rules[0]", Match(types=frozenset({"withdrawal"})), providers=("trustly", "adyen")),
        Rule(
            "rules[1]",
            Match(
                methods=frozenset({"bank_transfer"}),
                currencies=frozenset({"SEK", "EUR"}),
                countries=frozenset({"SE", "FI"}),
            ),
            providers=("trustly",),
        ),
        Rule(
            "rules[2]",
            Match(amount_gte=100000, currencies=frozenset({"EUR"})),
            providers=("adyen", "stripe"),
        ),
        Rule("rules[3]", Match(methods=frozenset({"card"})), split=(("stripe", 70), ("adyen", 30))),
    )
    assert config.warnings == ()


def test_rules_default_to_none_and_no_cascade(demo_secrets: DemoSecrets) -> None:
    config = parse_config(
        yaml.safe_dump(doc_with({"providers": ["stripe", "adyen"]})).encode(),
        env=env_of(demo_secrets),
    )
    route = config.routes["payments.create"]
    assert (route.rules, route.cascade_soft_declines) == ((), False)


def rules_doc(*rules: dict[str, Any]) -> dict[str, Any]:
    return doc_with({"providers": ["stripe", "adyen", "trustly"], "rules": list(rules)})


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            [{"match": {"type": "withdrawal"}, "providers": ["trustly", "paypal"]}],
            "routes.payments.create.rules[0].providers[1]: unknown provider 'paypal'",
        ),
        (
            [{"match": {"type": "withdrawal"}, "providers": ["stripe"]}],
            "routes.payments.create.rules[0].providers[0]: provider 'stripe' cannot take "
            "withdrawal",
        ),
        (
            [{"match": {"method": "bank_transfer", "currency": ["SEK"]}, "providers": ["stripe"]}],
            "routes.payments.create.rules[0].providers[0]: provider 'stripe' cannot take "
            "payments by bank_transfer in SEK",
        ),
        (
            [{"match": {"currency": "USD"}, "split": {"trustly": 50, "stripe": 50}}],
            "routes.payments.create.rules[0].split.trustly: provider 'trustly' cannot take "
            "payments in USD",
        ),
        (
            [{"match": {"method": "card"}, "providers": ["hub88"]}],
            "routes.payments.create.rules[0].providers[0]: provider 'hub88' uses the games "
            "adapter 'hub88'",
        ),
        (
            [
                {"match": {"method": "card"}, "providers": ["stripe"]},
                {"match": {"method": "card", "currency": "EUR"}, "providers": ["adyen"]},
            ],
            "routes.payments.create.rules[1]: can never match: rules[0] ('rules[0]') comes "
            "first and takes every payment it would",
        ),
        (
            [{"match": {"amount_gte": 500, "amount_lt": 500}, "providers": ["stripe"]}],
            "routes.payments.create.rules[0].match: amount_gte is not below amount_lt: no "
            "payment can match",
        ),
        (
            [{"match": {}, "split": {"stripe": 0, "adyen": 0}}],
            "routes.payments.create.rules[0].split: the weights add up to 0: no provider could "
            "be chosen",
        ),
        (
            [
                {"name": "cards", "match": {"method": "card"}, "providers": ["stripe"]},
                {"name": "cards", "match": {"method": "ewallet"}, "providers": ["adyen"]},
            ],
            "routes.payments.create.rules[1].name: another rule is named 'cards'",
        ),
    ],
)
def test_check_refuses_rules_that_cannot_work(
    demo_secrets: DemoSecrets, rules: list[dict[str, Any]], expected: str
) -> None:
    assert expected in problems(rules_doc(*rules), demo_secrets)


@pytest.mark.parametrize(
    ("rule", "where"),
    [
        ({"match": {"colour": "red"}, "providers": ["stripe"]}, "rules[0].match"),
        ({"match": {}, "providers": ["stripe"], "weight": 3}, "rules[0]"),
        ({"match": {"type": "bonus"}, "providers": ["stripe"]}, "rules[0].match.type"),
        ({"match": {}, "providers": ["stripe"], "split": {"adyen": 1}}, "rules[0]"),
        ({"providers": ["stripe"]}, "rules[0]"),
    ],
)
def test_a_rule_the_schema_refuses_is_named_by_its_path(
    demo_secrets: DemoSecrets, rule: dict[str, Any], where: str
) -> None:
    found = problems(rules_doc(rule), demo_secrets)
    assert any(p.startswith(f"routes.payments.create.{where}:") for p in found), found


def test_a_bad_rule_does_not_hide_the_rest_of_the_route(demo_secrets: DemoSecrets) -> None:
    doc = rules_doc({"match": {"colour": "red"}, "providers": ["stripe"]})
    doc["routes"]["payments.create"]["providers"] = ["stripe", "nowhere"]
    found = problems(doc, demo_secrets)
    assert "routes.payments.create.providers[1]: unknown provider 'nowhere'" in found


def test_a_route_that_cannot_pay_out_is_a_warning_not_an_error(
    demo_secrets: DemoSecrets, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = doc_with({"providers": ["stripe"]})
    config = parse_config(yaml.safe_dump(doc).encode(), env=env_of(demo_secrets))
    assert config.warnings == (
        "routes.payments.create: no provider this route can reach pays players out (stripe): "
        "every withdrawal will be refused with 422",
    )
    for name, value in env_of(demo_secrets).items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["check", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning: routes.payments.create: no provider this route can reach pays" in err
    # A rule that sends withdrawals to a provider that pays out clears it.
    paying = copy.deepcopy(doc)
    paying["routes"]["payments.create"]["rules"] = [
        {"match": {"type": "withdrawal"}, "providers": ["trustly"]}
    ]
    assert parse_config(yaml.safe_dump(paying).encode(), env=env_of(demo_secrets)).warnings == ()
