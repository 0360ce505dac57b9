"""Payments through the gateway: failover that never double-charges, idempotency, read-back."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import jsonschema

from gateway.http.validation import openapi_document
from policies.idempotency import Claimed, fingerprint
from simulators.faults import Faults
from tests.conftest import GatewayUnderTest, MakeGateway

STRIPE_CREATE = "/v1/payment_intents"
ADYEN_CREATE = "/v71/payments"
DEPOSIT = {
    "type": "deposit",
    "amount": 2500,
    "currency": "EUR",
    "player_id": "player-42",
    "method": {"type": "card"},
    "return_url": "https://casino.example/cashier",
    "metadata": {"campaign": "welcome"},
}


def payment_schema() -> dict[str, Any]:
    doc = openapi_document()
    return {**doc["components"]["schemas"]["Payment"], "components": doc["components"]}


async def pay(gw: GatewayUnderTest, body: dict[str, Any] | None = None, key: str | None = None):
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    return await gw.client.post("/v1/payments", json=body or DEPOSIT, headers=headers)


async def test_deposit_lands_on_the_primary(gw: GatewayUnderTest):
    resp = await pay(gw)
    assert resp.status == 201
    payment = await resp.json()
    jsonschema.validate(payment, payment_schema())
    assert payment["status"] == "requires_action"
    assert payment["provider"] == "stripe"
    assert payment["provider_reference"].startswith("pi_")
    assert payment["amount"] == 2500 and payment["currency"] == "EUR"
    assert payment["next_action"]["type"] == "sdk"
    assert payment["next_action"]["client_secret"].startswith(payment["provider_reference"])
    assert payment["attempts"] == [
        {"provider": "stripe", "outcome": "ok", "error_code": None, "rule": "default"}
    ]
    assert gw.calls("stripe", STRIPE_CREATE) == 1
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_refused_connection_fails_over_to_the_secondary(gw: GatewayUnderTest):
    await gw.stack.servers["stripe"].stop_listening()
    resp = await pay(gw)
    assert resp.status == 201
    payment = await resp.json()
    assert payment["provider"] == "adyen"
    assert payment["status"] == "requires_action"
    assert payment["next_action"]["type"] == "redirect"
    assert payment["attempts"] == [
        {"provider": "stripe", "outcome": "refused", "error_code": None, "rule": "default"},
        {"provider": "adyen", "outcome": "ok", "error_code": None, "rule": "default"},
    ]
    assert gw.calls("adyen", ADYEN_CREATE) == 1
    metrics = (await (await gw.client.get("/metrics")).text()).splitlines()
    assert (
        'gateway_failovers_total{from_provider="stripe",route="payments.create",'
        'to_provider="adyen"} 1.0' in metrics
    )


async def test_timeout_is_never_sent_to_the_secondary(make_gateway: MakeGateway):
    gw = await make_gateway({"providers": {"stripe": {"timeout_ms": 200}}})
    gw.stack.servers["stripe"].faults = Faults(mode="hang")
    resp = await pay(gw)
    assert resp.status == 202
    payment = await resp.json()
    jsonschema.validate(payment, payment_schema())
    assert payment["status"] == "processing"
    assert payment["provider"] == "stripe"
    assert payment["provider_reference"] is None
    # One try and one retry on the same provider, with the same key; Adyen never asked.
    assert payment["attempts"] == [
        {"provider": "stripe", "outcome": "timeout", "error_code": None, "rule": "default"},
        {"provider": "stripe", "outcome": "timeout", "error_code": None, "rule": "default"},
    ]
    assert gw.calls("stripe", STRIPE_CREATE) == 2
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_ambiguous_5xx_is_retried_on_the_same_provider_only(gw: GatewayUnderTest):
    gw.stack.servers["stripe"].faults = Faults(mode="error")
    resp = await pay(gw)
    assert resp.status == 202
    payment = await resp.json()
    assert payment["provider"] == "stripe" and payment["status"] == "processing"
    assert gw.calls("stripe", STRIPE_CREATE) == 2
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_retry_with_same_key_recovers_a_transient_5xx(gw: GatewayUnderTest):
    gw.stack.servers["stripe"].faults = Faults(fail_next=1)
    resp = await pay(gw)
    assert resp.status == 201
    payment = await resp.json()
    assert payment["provider"] == "stripe" and payment["status"] == "requires_action"
    assert [a["outcome"] for a in payment["attempts"]] == ["error", "ok"]
    assert gw.calls("stripe", STRIPE_CREATE) == 2
    sim = gw.stack.servers["stripe"]
    auth = {"Authorization": f"Bearer {gw.stack.secrets.stripe_secret_key}"}
    async with gw.client.session.get(f"{sim.url}/v1/payment_intents?limit=10", headers=auth) as r:
        intents = (await r.json())["data"]
    assert len(intents) == 1  # the fault came before Stripe acted; the retry made the one


async def test_definite_rejection_fails_over(gw: GatewayUnderTest, make_gateway: MakeGateway):
    # Over Stripe's largest amount: a 400 invalid_request_error, no money moved.
    body = {**DEPOSIT, "amount": 100_000_000}
    resp = await pay(gw, body)
    assert resp.status == 201
    payment = await resp.json()
    assert payment["provider"] == "adyen"
    assert payment["attempts"][0]["provider"] == "stripe"
    assert payment["attempts"][0]["outcome"] == "rejected"


async def test_a_provider_that_cannot_take_the_method_in_that_currency_is_never_sent_it(
    gw: GatewayUnderTest,
):
    # Stripe takes SEPA debits in EUR only: a bank transfer in GBP goes to Adyen directly.
    body = {**DEPOSIT, "method": {"type": "bank_transfer"}, "currency": "GBP"}
    resp = await pay(gw, body)
    assert resp.status == 201
    payment = await resp.json()
    assert [a["provider"] for a in payment["attempts"]] == ["adyen"]
    assert gw.calls("stripe", STRIPE_CREATE) == 0
    metrics = await (await gw.client.get("/metrics")).text()
    assert 'gateway_provider_skips_total{provider="stripe",reason="unsupported"} 1.0' in metrics


async def test_no_provider_that_takes_the_method_is_422_before_any_call(
    make_gateway: MakeGateway,
):
    gw = await make_gateway({"routes": {"payments.create": {"providers": ["stripe"]}}})
    resp = await pay(gw, {**DEPOSIT, "method": {"type": "crypto"}, "currency": "EUR"})
    assert resp.status == 422
    problem = await resp.json()
    assert problem["code"] == "provider_rejected"
    assert problem["detail"] == (
        "no provider of this route takes a deposit by crypto in EUR: "
        "stripe takes crypto in USD only"
    )
    assert gw.calls("stripe", STRIPE_CREATE) == 0


async def test_idempotent_replay_reaches_no_provider(gw: GatewayUnderTest):
    key = uuid.uuid4().hex
    first = await pay(gw, key=key)
    assert first.status == 201
    again = await pay(gw, key=key)
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert gw.calls("stripe", STRIPE_CREATE) == 1
    other = await pay(gw, {**DEPOSIT, "amount": 9900}, key=key)
    assert other.status == 409
    assert (await other.json())["code"] == "idempotency_conflict"
    assert gw.calls("stripe", STRIPE_CREATE) == 1


async def test_concurrent_requests_with_one_key_reach_the_provider_once(gw: GatewayUnderTest):
    gw.stack.servers["stripe"].faults = Faults(latency_ms=100)
    key = uuid.uuid4().hex
    responses = await asyncio.gather(*(pay(gw, key=key) for _ in range(5)))
    bodies = [await r.json() for r in responses]
    assert [r.status for r in responses] == [201] * 5
    assert len({b["payment_id"] for b in bodies}) == 1
    assert gw.calls("stripe", STRIPE_CREATE) == 1


async def test_replay_of_an_unknown_outcome_asks_the_owner_again(make_gateway: MakeGateway):
    gw = await make_gateway({"providers": {"stripe": {"timeout_ms": 200}}})
    gw.stack.servers["stripe"].faults = Faults(mode="hang")
    key = uuid.uuid4().hex
    first = await pay(gw, key=key)
    assert first.status == 202
    gw.stack.servers["stripe"].faults = Faults()
    again = await pay(gw, key=key)
    assert again.status == 201
    payment = await again.json()
    assert payment["payment_id"] == (await first.json())["payment_id"]
    assert payment["provider"] == "stripe" and payment["provider_reference"].startswith("pi_")
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_payment_read_back_refreshes_from_the_provider(gw: GatewayUnderTest):
    created = await (await pay(gw)).json()
    resp = await gw.client.get(f"/v1/payments/{created['payment_id']}")
    assert resp.status == 200
    assert await resp.json() == created
    # The player completes the payment at Stripe; the next read shows it.
    sim = gw.stack.servers["stripe"]
    async with gw.client.session.post(
        f"{sim.url}/_sim/payment_intents/{created['provider_reference']}/complete",
        json={"outcome": "succeeded"},
    ) as done:
        assert done.status == 200
    payment = await (await gw.client.get(f"/v1/payments/{created['payment_id']}")).json()
    assert payment["status"] == "succeeded"
    assert payment["next_action"] is None
    assert gw.calls("stripe", f"/v1/payment_intents/{created['provider_reference']}") == 2


async def test_a_read_back_that_learns_nothing_writes_nothing(
    gw: GatewayUnderTest, monkeypatch: Any
):
    created = await (await pay(gw)).json()
    ledger = gw.gateway.ledger
    writes: list[str] = []
    update = ledger.update_payment

    async def counted(payment_id: str, change: Any, *, source: str) -> Any:
        writes.append(source)
        return await update(payment_id, change, source=source)

    monkeypatch.setattr(ledger, "update_payment", counted)
    for _ in range(3):
        assert await (await gw.client.get(f"/v1/payments/{created['payment_id']}")).json() == (
            created
        )
    assert writes == []  # Stripe said what the ledger knows: three reads, no write
    sim = gw.stack.servers["stripe"]
    async with gw.client.session.post(
        f"{sim.url}/_sim/payment_intents/{created['provider_reference']}/complete",
        json={"outcome": "succeeded"},
    ) as done:
        assert done.status == 200
    payment = await (await gw.client.get(f"/v1/payments/{created['payment_id']}")).json()
    assert payment["status"] == "succeeded"
    assert writes == ["read:stripe"]
    assert (await ledger.payment(created["payment_id"])).status == "succeeded"


async def test_payment_read_back_on_another_gateway_sharing_the_ledger(
    make_gateway: MakeGateway, tmp_path: Path
):
    shared = {"ledger": {"backend": "sqlite", "path": str(tmp_path / "ledger.db")}}
    first = await make_gateway(shared)
    second = await make_gateway(shared)
    created = await (await pay(first)).json()
    resp = await second.client.get(f"/v1/payments/{created['payment_id']}")
    assert resp.status == 200
    payment = await resp.json()
    assert payment["provider"] == "stripe"
    assert payment["provider_reference"] == created["provider_reference"]
    assert payment["amount"] == 2500 and payment["status"] == "requires_action"


async def test_a_gateway_whose_ledger_does_not_know_the_id_answers_404_without_asking(
    make_gateway: MakeGateway,
):
    first = await make_gateway()
    other = await make_gateway()  # its own ledger: the payment does not exist for it
    created = await (await pay(first)).json()
    read_path = f"/v1/payment_intents/{created['provider_reference']}"
    resp = await other.client.get(f"/v1/payments/{created['payment_id']}")
    assert resp.status == 404
    assert (await resp.json())["code"] == "not_found"
    assert first.calls("stripe", read_path) == 0


async def test_signed_payment_ids_refuse_forgery(make_gateway: MakeGateway):
    gw = await make_gateway(
        {"payment_id_secret_env": "PAYMENT_ID_SECRET"}, env={"PAYMENT_ID_SECRET": "x" * 32}
    )
    created = await (await pay(gw)).json()
    assert (await gw.client.get(f"/v1/payments/{created['payment_id']}")).status == 200
    body, _, tag = created["payment_id"].partition(".")
    forged = f"{body}.{'A' * len(tag)}"
    resp = await gw.client.get(f"/v1/payments/{forged}")
    assert resp.status == 404
    assert (await resp.json())["code"] == "not_found"


async def test_declined_payment_is_failed_not_failed_over(gw: GatewayUnderTest):
    resp = await pay(gw, {**DEPOSIT, "amount": 4000002})  # the Stripe simulator declines it
    assert resp.status == 201
    payment = await resp.json()
    assert payment["status"] == "failed"
    assert payment["provider"] == "stripe"
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_no_provider_left_is_503_with_retry_after(gw: GatewayUnderTest):
    await gw.stack.servers["stripe"].stop_listening()
    await gw.stack.servers["adyen"].stop_listening()
    resp = await pay(gw)
    assert resp.status == 503
    assert int(resp.headers["Retry-After"]) >= 1
    problem = await resp.json()
    assert problem["code"] == "no_provider_available"
    # Nothing was charged, so the same key may be used again once a provider is back.
    await gw.stack.servers["adyen"].start_listening()
    await gw.stack.servers["stripe"].start_listening()


async def test_timeout_then_breaker_open_keeps_the_payment_on_its_provider(
    make_gateway: MakeGateway,
):
    gw = await make_gateway(
        {"providers": {"stripe": {"timeout_ms": 200, "breaker": {"failure_threshold": 1}}}}
    )
    gw.stack.servers["stripe"].faults = Faults(mode="hang")
    resp = await pay(gw)
    assert resp.status == 202
    payment = await resp.json()
    assert payment["provider"] == "stripe"
    assert [a["outcome"] for a in payment["attempts"]] == ["timeout", "breaker_open"]
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_timeout_then_429_keeps_the_payment_on_its_provider(make_gateway: MakeGateway):
    gw = await make_gateway({"providers": {"stripe": {"timeout_ms": 200}}})
    stripe = gw.stack.servers["stripe"]
    stripe.faults = Faults(mode="hang")

    async def rate_limit_after_first_call() -> None:
        while stripe.stats[STRIPE_CREATE] < 1:
            await asyncio.sleep(0.01)
        stripe.faults = Faults(mode="rate_limited")

    flip = asyncio.create_task(rate_limit_after_first_call())
    resp = await pay(gw)
    await flip
    assert resp.status == 202
    assert [a["outcome"] for a in (await resp.json())["attempts"]] == ["timeout", "rejected"]
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_a_request_that_stopped_after_sending_is_resolved_on_that_provider_only(
    make_gateway: MakeGateway,
):
    gw = await make_gateway({"ledger": {"backend": "memory", "claim_lease_s": 0.1}})
    # A claim stamped with its provider and never finished: the process died mid-call.
    ledger = gw.gateway.ledger
    key = uuid.uuid4().hex
    held = await ledger.claim("anonymous", key, fingerprint("anonymous", DEPOSIT))
    assert isinstance(held, Claimed)
    await ledger.stamp_owner(held, "stripe")
    await asyncio.sleep(0.15)
    # Meanwhile Stripe looks broken to this process: selection would pick Adyen.
    gw.gateway.runtime.providers["stripe"].drained = True
    resp = await pay(gw, key=key)
    assert resp.status == 202
    payment = await resp.json()
    assert payment["provider"] == "stripe" and payment["status"] == "processing"
    assert gw.calls("adyen", ADYEN_CREATE) == 0
    # Once Stripe may be asked again, the same key learns the outcome there.
    gw.gateway.runtime.providers["stripe"].drained = False
    again = await pay(gw, key=key)
    assert again.status == 201
    assert (await again.json())["provider_reference"].startswith("pi_")
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_every_provider_rate_limited_is_503_and_the_key_stays_usable(
    gw: GatewayUnderTest,
):
    for name in ("stripe", "adyen"):
        gw.stack.servers[name].faults = Faults(mode="rate_limited", retry_after_s=2)
    key = uuid.uuid4().hex
    resp = await pay(gw, key=key)
    assert resp.status == 503
    assert (await resp.json())["code"] == "no_provider_available"
    assert int(resp.headers["Retry-After"]) >= 1
    for name in ("stripe", "adyen"):
        gw.stack.servers[name].faults = Faults()
    gw.gateway.cooldowns = type(gw.gateway.cooldowns)()  # the providers' waits are over
    again = await pay(gw, key=key)
    assert again.status == 201


async def test_a_withdrawal_no_provider_takes_is_422(gw: GatewayUnderTest):
    resp = await pay(gw, {**DEPOSIT, "type": "withdrawal"})
    assert resp.status == 422
    problem = await resp.json()
    assert problem["code"] == "unsupported_withdrawal_method"
    assert "stripe cannot pay players out" in problem["detail"]
    assert "adyen does not pay out by card" in problem["detail"]
    assert gw.calls("stripe", STRIPE_CREATE) == 0 and gw.calls("adyen", ADYEN_CREATE) == 0
