"""Refunds over real sockets with the simulators: partial then full on Stripe and on Adyen, the
sum never over the payment (concurrent refunds included), each refusal its own code with no
provider asked, statuses moved by webhooks, and a player's token reaching only their own."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from gateway.ledger.payments import PaymentRecord
from simulators import stripe as stripe_sim
from simulators.faults import Faults
from tests.integration.test_player_tokens import mint, tokens_config
from tests.wired import ADYEN_ONLY, MakeWired, Wired, eventually, settle

STRIPE_REFUNDS = "/v1/refunds"
TRUSTLY_API = "/api/1"


async def refund(
    w: Wired, payment_id: str, body: dict[str, Any] | None = None, key: str | None = None,
    headers: dict[str, str] | None = None,
) -> aiohttp.ClientResponse:
    return await w.client.post(
        f"/v1/payments/{payment_id}/refunds",
        json=body or {},
        headers={"Idempotency-Key": key or uuid.uuid4().hex, **(headers or {})},
    )


async def succeeded_stripe(w: Wired, **changes: Any) -> dict[str, Any]:
    payment = await w.pay(**changes)
    await w.stripe_complete(payment["provider_reference"], "succeeded")
    await eventually(lambda: _status_is(w, payment["payment_id"], "succeeded"))
    return payment


async def succeeded_adyen(w: Wired) -> dict[str, Any]:
    payment = await w.pay()
    await w.adyen_complete(payment["provider_reference"], "authorised")
    await eventually(lambda: _status_is(w, payment["payment_id"], "succeeded"))
    return payment


async def _status_is(w: Wired, payment_id: str, status: str) -> bool:
    return await w.stored_status(payment_id) == status


async def refund_status_is(w: Wired, refund_id: str, status: str) -> bool:
    record = await w.gateway.ledger.refund(refund_id)
    return record is not None and record.status == status


def adyen_refund_calls(w: Wired, psp: str) -> int:
    return w.stack.servers["adyen"].stats[f"/v71/payments/{psp}/refunds"]


def types(w: Wired) -> list[str]:
    assert w.backend is not None
    return [e["type"] for e in w.backend.events()]


# ---- partial, then full, then nothing left ------------------------------------------------


async def test_a_partial_then_full_refund_on_stripe_and_a_third_is_refused(make_wired: MakeWired):
    w = await make_wired()
    payment = await succeeded_stripe(w)
    pid = payment["payment_id"]

    first = await refund(w, pid, {"amount": 1000, "reason": "requested_by_customer"})
    assert first.status == 201, await first.text()
    one = await first.json()
    assert (one["status"], one["amount"], one["currency"], one["provider"]) == (
        "succeeded", 1000, "EUR", "stripe"
    )
    assert one["provider_reference"].startswith("re_")
    assert one["reason"] == "requested_by_customer"
    rest = await (await refund(w, pid)).json()
    assert (rest["status"], rest["amount"]) == ("succeeded", 1500)

    third = await refund(w, pid, {"amount": 1})
    assert third.status == 422
    assert (await third.json())["code"] == "refund_exceeds_amount"
    assert w.stack.servers["stripe"].stats[STRIPE_REFUNDS] == 2
    assert (await w.get(pid))["status"] == "refunded"
    fetched = await w.client.get(f"/v1/payments/{pid}/refunds/{one['refund_id']}")
    assert fetched.status == 200 and (await fetched.json()) == one

    await settle(w)
    announced = types(w)
    assert announced.count("refund.succeeded") == 2
    assert announced.count("payment.refunded") == 1
    assert w.backend is not None
    refunds = [e for e in w.backend.events() if e["type"] == "refund.succeeded"]
    assert {e["refund_id"] for e in refunds} == {one["refund_id"], rest["refund_id"]}
    assert {e["amount"] for e in refunds} == {1000, 1500}


async def test_a_partial_then_full_refund_on_adyen_settled_by_its_webhooks(make_wired: MakeWired):
    w = await make_wired(ADYEN_ONLY)
    payment = await succeeded_adyen(w)
    pid, psp = payment["payment_id"], payment["provider_reference"]

    first = await refund(w, pid, {"amount": 1000, "currency": "EUR"})
    assert first.status == 201, await first.text()
    one = await first.json()
    # Adyen answers "received": the REFUND webhook tells the outcome.
    assert (one["status"], one["provider"]) == ("pending", "adyen")
    await w.sim("adyen", f"/_sim/refunds/{one['provider_reference']}/complete",
                {"outcome": "refunded"})
    await eventually(lambda: refund_status_is(w, one["refund_id"], "succeeded"))
    assert (await w.get(pid))["status"] == "succeeded"  # partly refunded is still succeeded

    rest = await (await refund(w, pid)).json()
    assert (rest["status"], rest["amount"]) == ("pending", 1500)
    await w.sim("adyen", f"/_sim/refunds/{rest['provider_reference']}/complete",
                {"outcome": "refunded"})
    await eventually(lambda: _status_is(w, pid, "refunded"))

    third = await refund(w, pid, {"amount": 1})
    assert third.status == 422
    assert (await third.json())["code"] == "refund_exceeds_amount"
    assert adyen_refund_calls(w, psp) == 2
    await settle(w)
    assert types(w) == [
        "payment.succeeded", "refund.succeeded", "refund.succeeded", "payment.refunded"
    ]


async def test_while_refunds_are_pending_a_third_is_refused_over_the_amount(
    make_wired: MakeWired,
):
    w = await make_wired(ADYEN_ONLY)
    payment = await succeeded_adyen(w)
    pid, psp = payment["payment_id"], payment["provider_reference"]
    assert (await refund(w, pid, {"amount": 1000})).status == 201
    assert (await refund(w, pid, {"amount": 1500})).status == 201
    over = await refund(w, pid, {"amount": 1})
    assert over.status == 422
    problem = await over.json()
    assert problem["code"] == "refund_exceeds_amount"
    assert "0 of the payment's 2500" in problem["detail"]
    assert adyen_refund_calls(w, psp) == 2


async def test_a_failed_refund_frees_its_amount(make_wired: MakeWired):
    w = await make_wired(ADYEN_ONLY)
    payment = await succeeded_adyen(w)
    pid = payment["payment_id"]
    whole = await (await refund(w, pid)).json()
    await w.sim("adyen", f"/_sim/refunds/{whole['provider_reference']}/complete",
                {"outcome": "failed"})
    await eventually(lambda: refund_status_is(w, whole["refund_id"], "failed"))
    again = await refund(w, pid)
    assert again.status == 201 and (await again.json())["amount"] == 2500
    await settle(w)
    assert "refund.failed" in types(w)


# ---- concurrency ---------------------------------------------------------------------------


async def test_concurrent_refunds_of_one_payment_never_exceed_its_amount(make_wired: MakeWired):
    w = await make_wired()
    payment = await succeeded_stripe(w)
    answers = await asyncio.gather(
        *(refund(w, payment["payment_id"], {"amount": 700}) for _ in range(12))
    )
    statuses = sorted(a.status for a in answers)
    assert statuses == [201] * 3 + [422] * 9
    refused = [await a.json() for a in answers if a.status == 422]
    assert {p["code"] for p in refused} == {"refund_exceeds_amount"}
    assert w.stack.servers["stripe"].stats[STRIPE_REFUNDS] == 3
    intent_id = payment["provider_reference"]
    made = [
        r for r in w.stack.servers["stripe"].app[stripe_sim.STATE].refunds.values()
        if r["payment_intent"] == intent_id
    ]
    assert sum(r["amount"] for r in made) == 2100 <= 2500


# ---- refusals: each its code, no provider asked ---------------------------------------------


async def test_refusals_have_their_own_codes_and_reach_no_provider(make_wired: MakeWired):
    w = await make_wired()
    pending = await w.pay()  # requires_action: not captured
    succeeded = await succeeded_stripe(w)
    cases = [
        (pending["payment_id"], {"amount": 100}, 422, "payment_not_refundable"),
        (succeeded["payment_id"], {"amount": 2501}, 422, "refund_exceeds_amount"),
        (succeeded["payment_id"], {"amount": 100, "currency": "USD"}, 422,
         "refund_currency_mismatch"),
        (succeeded["payment_id"], {"amount": 0}, 422, "invalid_amount"),
        (succeeded["payment_id"], {"amount": 100, "note": "x"}, 400, "invalid_request"),
        ("pay_unknown", {"amount": 100}, 404, "not_found"),
    ]
    for pid, body, status, code in cases:
        resp = await refund(w, pid, body)
        assert (resp.status, (await resp.json())["code"]) == (status, code), (pid, body)
    no_key = await w.client.post(f"/v1/payments/{succeeded['payment_id']}/refunds", json={})
    assert (no_key.status, (await no_key.json())["code"]) == (400, "idempotency_key_required")
    assert w.stack.servers["stripe"].stats[STRIPE_REFUNDS] == 0


async def test_a_withdrawal_is_not_refundable(make_wired: MakeWired):
    w = await make_wired()
    record = PaymentRecord(
        payment_id="pay_withdrawal_1", client_id="anonymous", idem_key="k", player_id="p",
        type="withdrawal", amount=1000, currency="EUR", provider="stripe",
        provider_reference="x", reference="gw_x", status="succeeded", next_action=None,
        attempts=(), created_at=1.0,
    )
    held = await w.gateway.ledger.claim("anonymous", "k", "fp")
    await w.gateway.ledger.finish(held, 201, record.to_api(), record)  # type: ignore[arg-type]
    resp = await refund(w, "pay_withdrawal_1", {"amount": 100})
    assert (resp.status, (await resp.json())["code"]) == (422, "payment_not_refundable")


# ---- idempotency --------------------------------------------------------------------------


async def test_a_refund_key_replays_and_refuses_another_body(make_wired: MakeWired):
    w = await make_wired()
    payment = await succeeded_stripe(w)
    pid = payment["payment_id"]
    first = await refund(w, pid, {"amount": 500}, key="refund-key-1")
    again = await refund(w, pid, {"amount": 500}, key="refund-key-1")
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    other = await refund(w, pid, {"amount": 600}, key="refund-key-1")
    assert (other.status, (await other.json())["code"]) == (409, "idempotency_conflict")
    assert w.stack.servers["stripe"].stats[STRIPE_REFUNDS] == 1


async def test_an_unanswered_refund_is_pending_and_keeps_its_amount(make_wired: MakeWired):
    w = await make_wired({"providers": {"stripe": {"timeout_ms": 200}}})
    payment = await succeeded_stripe(w)
    w.stack.servers["stripe"].faults = Faults(mode="hang")
    lost = await refund(w, payment["payment_id"], {"amount": 2000}, key="lost-1")
    assert lost.status == 202
    body = await lost.json()
    assert body["status"] == "pending"
    # Stripe dedupes refunds by key: asked once more with the same key, never elsewhere.
    assert w.stack.servers["stripe"].stats[STRIPE_REFUNDS] == 2
    w.stack.servers["stripe"].faults = Faults()
    replay = await refund(w, payment["payment_id"], {"amount": 2000}, key="lost-1")
    assert (replay.status, (await replay.json())["refund_id"]) == (202, body["refund_id"])
    # Its amount stays taken until the provider tells: 500 is all that is left.
    over = await refund(w, payment["payment_id"], {"amount": 501})
    assert (await over.json())["code"] == "refund_exceeds_amount"
    assert w.stack.servers["stripe"].stats[STRIPE_REFUNDS] == 2


# ---- Stripe refunds settled by webhooks ---------------------------------------------------


async def test_a_bank_debit_refund_is_pending_until_stripe_says(make_wired: MakeWired):
    w = await make_wired()
    payment = await succeeded_stripe(w, method={"type": "bank_transfer"})  # SEPA, EUR
    pid = payment["payment_id"]
    first = await (await refund(w, pid, {"amount": 1000})).json()
    assert first["status"] == "pending"
    await w.sim("stripe", f"/_sim/refunds/{first['provider_reference']}/complete",
                {"outcome": "succeeded"})
    await eventually(lambda: refund_status_is(w, first["refund_id"], "succeeded"))
    second = await (await refund(w, pid, {"amount": 1500})).json()
    await w.sim("stripe", f"/_sim/refunds/{second['provider_reference']}/complete",
                {"outcome": "failed"})
    await eventually(lambda: refund_status_is(w, second["refund_id"], "failed"))
    got = await w.client.get(f"/v1/payments/{pid}/refunds/{second['refund_id']}")
    assert (await got.json())["status"] == "failed"
    await settle(w)
    assert types(w) == ["payment.succeeded", "refund.succeeded", "refund.failed"]


# ---- Trustly ------------------------------------------------------------------------------

TRUSTLY_ONLY = {"routes": {"payments.create": {"providers": ["trustly"]}}}
SEK_BANK = {"currency": "SEK", "method": {"type": "bank_transfer"}, "country": "SE"}


async def test_a_trustly_refund_is_settled_by_its_notification(make_wired: MakeWired):
    w = await make_wired(TRUSTLY_ONLY)
    payment = await w.pay(**SEK_BANK)
    order = payment["provider_reference"]
    assert (payment["provider"], payment["status"]) == ("trustly", "requires_action")
    await w.trustly_notify(order, "credit")
    await eventually(lambda: _status_is(w, payment["payment_id"], "succeeded"))
    calls = w.stack.servers["trustly"].stats[TRUSTLY_API]
    made = await (await refund(w, payment["payment_id"], {"amount": 1000})).json()
    assert (made["status"], made["provider_reference"]) == ("pending", None)
    assert w.stack.servers["trustly"].stats[TRUSTLY_API] == calls + 1
    await w.trustly_notify(order, "debit", refund=True)
    await eventually(lambda: refund_status_is(w, made["refund_id"], "succeeded"))
    await settle(w)
    assert types(w) == ["payment.succeeded", "refund.succeeded"]


async def test_a_trustly_refund_without_an_answer_is_never_sent_twice(make_wired: MakeWired):
    w = await make_wired(TRUSTLY_ONLY)
    payment = await w.pay(**SEK_BANK)
    await w.trustly_notify(payment["provider_reference"], "credit")
    await eventually(lambda: _status_is(w, payment["payment_id"], "succeeded"))
    calls = w.stack.servers["trustly"].stats[TRUSTLY_API]
    w.stack.servers["trustly"].faults = Faults(mode="error")
    lost = await refund(w, payment["payment_id"], {"amount": 1000})
    assert lost.status == 202 and (await lost.json())["status"] == "pending"
    # A Trustly refund has no key Trustly dedupes on: one call, no retry.
    assert w.stack.servers["trustly"].stats[TRUSTLY_API] == calls + 1


# ---- player tokens ------------------------------------------------------------------------


@pytest.fixture
def token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_player_tokens import SECRET

    monkeypatch.setenv("TEST_PLAYER_TOKEN_SECRET", SECRET)


async def test_a_player_refunds_and_reads_only_their_own_payments(
    make_wired: MakeWired, token_secret: None
):
    w = await make_wired(tokens_config())
    key = {"X-API-Key": w.stack.secrets.client_key}
    mine = {**key, "Authorization": f"Bearer {mint('player-42')}"}
    theirs = {**key, "Authorization": f"Bearer {mint('player-7')}"}
    payment = await w.pay(headers=mine)
    await w.stripe_complete(payment["provider_reference"], "succeeded")
    await eventually(lambda: _status_is(w, payment["payment_id"], "succeeded"))
    pid = payment["payment_id"]
    other = await refund(w, pid, {"amount": 100}, headers=theirs)
    assert (other.status, (await other.json())["code"]) == (404, "not_found")
    assert w.stack.servers["stripe"].stats[STRIPE_REFUNDS] == 0
    own = await refund(w, pid, {"amount": 100}, headers=mine)
    assert own.status == 201
    refund_id = (await own.json())["refund_id"]
    path = f"/v1/payments/{pid}/refunds/{refund_id}"
    assert (await w.client.get(path, headers=mine)).status == 200
    assert (await w.client.get(path, headers=theirs)).status == 404
    unscoped = await w.client.get(path, headers=key)
    assert unscoped.status == 401  # tokens are required on player routes

