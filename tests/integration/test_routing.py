"""Routing rules and decline-aware cascading over real sockets, counted at the simulators."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import yaml

from policies.routing import split_choice
from simulators import adyen as adyen_sim
from simulators import stripe as stripe_sim
from simulators.stack import Stack
from tests.conftest import GatewayUnderTest, MakeGateway, trustly_provider
from tests.wired import DEPOSIT, MakeWired, eventually, settle

STRIPE_CREATE = "/v1/payment_intents"
ADYEN_CREATE = "/v71/payments"
TRUSTLY_API = "/api/1"
ISSUE_ROUTE = yaml.safe_load("""
providers: [stripe, adyen, trustly]
rules:
  - match: {type: withdrawal}
    providers: [trustly, adyen]
  - match: {method: bank_transfer, currency: [SEK, EUR], country: [SE, FI]}
    providers: [trustly]
  - match: {amount_gte: 100000, currency: EUR}
    providers: [adyen, stripe]
  - match: {method: card}
    split: {stripe: 70, adyen: 30}
""")


async def pay(gw: GatewayUnderTest, body: dict[str, Any], key: str) -> tuple[int, Any]:
    resp = await gw.client.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
    return resp.status, await resp.json()


def calls(gw: GatewayUnderTest) -> tuple[int, int, int]:
    return (
        gw.calls("stripe", STRIPE_CREATE),
        gw.calls("adyen", ADYEN_CREATE),
        gw.calls("trustly", TRUSTLY_API),
    )


async def test_each_example_rule_routes_as_written(make_gateway: MakeGateway, stack: Stack):
    # Trustly's notifications are not needed here: where they would go does not matter.
    trustly = trustly_provider(stack, "http://127.0.0.1:9/v1/webhooks/trustly")
    gw = await make_gateway(
        {"providers": {"trustly": trustly}, "routes": {"payments.create": ISSUE_ROUTE}}
    )
    expected_split = split_choice((("stripe", 70), ("adyen", 30)), "anonymous\0card-1")
    cases = [
        ({**DEPOSIT, "type": "withdrawal", "method": {"type": "bank_transfer"}}, "w-1",
         "trustly", "rules[0]"),
        ({**DEPOSIT, "currency": "SEK", "method": {"type": "bank_transfer"}, "country": "SE"},
         "bank-1", "trustly", "rules[1]"),
        ({**DEPOSIT, "amount": 100000}, "large-1", "adyen", "rules[2]"),
        (DEPOSIT, "card-1", expected_split, "rules[3]"),
        ({**DEPOSIT, "method": {"type": "ewallet"}}, "wallet-1", "stripe", "default"),
    ]
    for body, key, provider, rule in cases:
        before = calls(gw)
        status, payment = await pay(gw, body, key)
        assert status == 201, payment
        assert payment["provider"] == provider, (key, payment)
        assert [a["rule"] for a in payment["attempts"]] == [rule]
        after = calls(gw)
        # Exactly one provider asked, once: the one the rule chose.
        assert sum(after) - sum(before) == 1
    metrics = (await (await gw.client.get("/metrics")).text()).splitlines()
    for rule in ("rules[0]", "rules[1]", "rules[2]", "rules[3]", "default"):
        assert f'gateway_payment_routing_total{{rule="{rule}"}} 1.0' in metrics


async def test_a_split_of_70_30_over_1000_payments_and_a_replay_goes_the_same_way(
    make_gateway: MakeGateway,
):
    split = {"providers": ["stripe", "adyen"],
             "rules": [{"match": {"method": "card"}, "split": {"stripe": 70, "adyen": 30}}]}
    gw = await make_gateway({"routes": {"payments.create": split}})
    gate = asyncio.Semaphore(20)
    keys = [f"split-{i}-{uuid.uuid4().hex[:8]}" for i in range(1000)]

    async def one(key: str) -> str:
        async with gate:
            status, payment = await pay(gw, DEPOSIT, key)
            assert status == 201, payment
            return str(payment["provider"])

    providers = await asyncio.gather(*(one(key) for key in keys))
    shares = Counter(providers)
    assert shares["stripe"] + shares["adyen"] == 1000
    assert 650 <= shares["stripe"] <= 750, shares  # within five points of 70/30
    assert calls(gw)[:2] == (shares["stripe"], shares["adyen"])
    # A replay of a key always goes to the same provider, and asks nobody.
    for key, provider in list(zip(keys, providers, strict=True))[:50]:
        status, payment = await pay(gw, DEPOSIT, key)
        assert (status, payment["provider"]) == (201, provider)
    assert calls(gw)[:2] == (shares["stripe"], shares["adyen"])


# ---- cascading ---------------------------------------------------------------------------

CASCADE = {"routes": {"payments.create": {"providers": ["stripe", "adyen"],
                                           "cascade_soft_declines": True}}}
ADYEN_FIRST = {"routes": {"payments.create": {"providers": ["adyen", "stripe"],
                                               "cascade_soft_declines": True}}}


async def test_a_soft_decline_at_the_first_provider_lands_on_the_second(
    make_gateway: MakeGateway,
):
    gw = await make_gateway(CASCADE)
    status, payment = await pay(gw, {**DEPOSIT, "amount": stripe_sim.DECLINE_AMOUNT}, "soft-1")
    assert status == 201
    assert (payment["provider"], payment["status"]) == ("adyen", "requires_action")
    assert payment["attempts"] == [
        {"provider": "stripe", "outcome": "declined", "error_code": "generic_decline",
         "rule": "default", "decline": "soft"},
        {"provider": "adyen", "outcome": "ok", "error_code": None, "rule": "default"},
    ]
    assert calls(gw)[:2] == (1, 1)  # each provider asked once: no double charge
    metrics = (await (await gw.client.get("/metrics")).text()).splitlines()
    assert (
        'gateway_payment_declines_total{cascaded="true",decline="soft",provider="stripe"} 1.0'
        in metrics
    )


async def test_a_hard_decline_does_not_cascade(make_gateway: MakeGateway):
    gw = await make_gateway(CASCADE)
    status, payment = await pay(
        gw, {**DEPOSIT, "amount": stripe_sim.HARD_DECLINE_AMOUNT}, "hard-1"
    )
    assert status == 201
    assert (payment["provider"], payment["status"]) == ("stripe", "failed")
    assert [(a["outcome"], a["error_code"], a.get("decline")) for a in payment["attempts"]] == [
        ("declined", "insufficient_funds", "hard")
    ]
    assert calls(gw)[:2] == (1, 0)


async def test_adyen_soft_and_hard_refusals(make_gateway: MakeGateway):
    gw = await make_gateway(ADYEN_FIRST)
    status, soft = await pay(gw, {**DEPOSIT, "amount": adyen_sim.MAGIC_REFUSED}, "a-soft")
    assert (status, soft["provider"]) == (201, "stripe")
    assert calls(gw)[:2] == (1, 1)
    status, hard = await pay(
        gw, {**DEPOSIT, "amount": adyen_sim.MAGIC_NOT_ENOUGH_BALANCE}, "a-hard"
    )
    assert (status, hard["provider"], hard["status"]) == (201, "adyen", "failed")
    assert hard["attempts"][0]["error_code"] == "12"
    assert calls(gw)[:2] == (1, 2)


async def test_without_cascading_a_soft_decline_is_the_answer(make_gateway: MakeGateway):
    gw = await make_gateway()
    status, payment = await pay(gw, {**DEPOSIT, "amount": stripe_sim.DECLINE_AMOUNT}, "off-1")
    assert (status, payment["provider"], payment["status"]) == (201, "stripe", "failed")
    assert calls(gw)[:2] == (1, 0)


async def test_a_soft_decline_at_the_last_provider_is_the_answer(make_gateway: MakeGateway):
    gw = await make_gateway(
        {"routes": {"payments.create": {"providers": ["stripe"], "cascade_soft_declines": True}}}
    )
    status, payment = await pay(gw, {**DEPOSIT, "amount": stripe_sim.DECLINE_AMOUNT}, "last-1")
    assert (status, payment["status"]) == (201, "failed")
    assert calls(gw)[:2] == (1, 0)


async def test_a_decline_after_the_player_acted_never_cascades(make_wired: MakeWired):
    w = await make_wired(CASCADE)
    payment = await w.pay()
    assert payment["status"] == "requires_action"  # the player goes to 3-D Secure
    await w.stripe_complete(payment["provider_reference"], "payment_failed")

    async def failed() -> bool:
        return await w.stored_status(payment["payment_id"]) == "failed"

    await eventually(failed)
    await settle(w)
    assert w.stack.servers["adyen"].stats[ADYEN_CREATE] == 0
    assert w.stack.servers["stripe"].stats[STRIPE_CREATE] == 1
    assert (await w.get(payment["payment_id"]))["provider"] == "stripe"
