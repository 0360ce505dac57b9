"""Withdrawals (payouts to players) over real sockets: through Trustly and through Adyen to
`succeeded` by notification or webhook, announced as `payout.*`; refused before sending where
no provider pays out; and never paid twice (provider call counts)."""

from __future__ import annotations

import uuid
from typing import Any

from simulators import adyen as adyen_sim
from simulators.faults import Faults
from tests.wired import MakeWired, Wired, eventually, settle

TRUSTLY_API = "/api/1"
TRANSFERS = "/btl/v4/transfers"
IBAN = "NL91ABNA0417164300"
PAYOUT: dict[str, Any] = {
    "type": "withdrawal",
    "amount": 5000,
    "currency": "EUR",
    "player_id": "player-42",
    "method": {"type": "bank_transfer"},
    "return_url": "https://casino.example/cashier",
    "country": "SE",
}
ADYEN_PAYOUT = {
    **PAYOUT,
    "method": {"type": "bank_transfer", "bank_account": {"iban": IBAN, "holder_name": "A. Player"}},
}
ADYEN_CAN_PAY_OUT = {"providers": {"adyen": {"credentials": {"balance_account_id": "BA32272"}}}}


def route(*providers: str, **extra: Any) -> dict[str, Any]:
    return {"routes": {"payments.create": {"providers": list(providers), **extra}}}


async def withdraw(w: Wired, body: dict[str, Any], key: str | None = None) -> tuple[int, Any]:
    resp = await w.client.post(
        "/v1/payments", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex}
    )
    return resp.status, await resp.json()


async def status_is(w: Wired, payment_id: str, status: str) -> bool:
    return await w.stored_status(payment_id) == status


def announced(w: Wired) -> list[str]:
    assert w.backend is not None
    return [e["type"] for e in w.backend.events()]


async def test_a_withdrawal_through_trustly_succeeds_by_notification(make_wired: MakeWired):
    w = await make_wired(route("trustly"))
    key = uuid.uuid4().hex
    status, payout = await withdraw(w, PAYOUT, key)
    assert status == 201, payout
    assert (payout["provider"], payout["status"]) == ("trustly", "pending")
    assert payout["next_action"]["type"] == "redirect"  # the player confirms at Trustly
    order = payout["provider_reference"]
    await w.trustly_notify(order, "debit")
    await eventually(lambda: status_is(w, payout["payment_id"], "processing"))
    await w.trustly_notify(order, "payoutconfirmation")
    await eventually(lambda: status_is(w, payout["payment_id"], "succeeded"))
    assert (await w.get(payout["payment_id"]))["status"] == "succeeded"
    # Paid once: a replay of the key is the stored answer, Trustly not asked again.
    again_status, again = await withdraw(w, PAYOUT, key)
    assert (again_status, again["payment_id"]) == (201, payout["payment_id"])
    assert w.stack.servers["trustly"].stats[TRUSTLY_API] == 1
    await settle(w)
    assert announced(w) == ["payout.processing", "payout.succeeded"]
    [sent] = [e for e in w.backend.events() if e["type"] == "payout.succeeded"]  # type: ignore[union-attr]
    assert (sent["payment_id"], sent["amount"], sent["currency"]) == (
        payout["payment_id"], 5000, "EUR"
    )


async def test_a_withdrawal_through_adyen_succeeds_by_its_transfer_webhook(make_wired: MakeWired):
    w = await make_wired({**ADYEN_CAN_PAY_OUT, **route("adyen")})
    status, payout = await withdraw(w, ADYEN_PAYOUT)
    assert status == 201, payout
    assert (payout["provider"], payout["status"], payout["next_action"]) == (
        "adyen", "processing", None
    )
    [transfer] = w.stack.servers["adyen"].app[adyen_sim.STATE].transfers.values()
    assert (transfer.iban, transfer.value, transfer.balance_account_id) == (IBAN, 5000, "BA32272")
    answer = await w.sim("adyen", f"/_sim/transfers/{payout['provider_reference']}/complete",
                         {"status": "booked"})
    assert answer["delivery"]["accepted"] is True
    await eventually(lambda: status_is(w, payout["payment_id"], "succeeded"))
    assert w.stack.servers["adyen"].stats[TRANSFERS] == 1
    await settle(w)
    assert announced(w) == ["payout.succeeded"]


async def test_a_payout_the_bank_returns_after_it_succeeded_is_reversed(make_wired: MakeWired):
    w = await make_wired({**ADYEN_CAN_PAY_OUT, **route("adyen")})
    _, payout = await withdraw(w, ADYEN_PAYOUT)
    path = f"/_sim/transfers/{payout['provider_reference']}/complete"
    await w.sim("adyen", path, {"status": "booked"})
    await w.sim("adyen", path, {"status": "returned"})
    await eventually(lambda: status_is(w, payout["payment_id"], "reversed"))
    await settle(w)
    assert announced(w) == ["payout.succeeded", "payout.reversed"]


async def test_a_trustly_payout_that_comes_back_fails_or_is_reversed(make_wired: MakeWired):
    w = await make_wired(route("trustly"))
    _, before_sent = await withdraw(w, PAYOUT)
    await w.trustly_notify(before_sent["provider_reference"], "debit")
    await w.trustly_notify(before_sent["provider_reference"], "credit")
    await eventually(lambda: status_is(w, before_sent["payment_id"], "failed"))
    _, after_sent = await withdraw(w, PAYOUT)
    for method in ("debit", "payoutconfirmation", "credit"):
        await w.trustly_notify(after_sent["provider_reference"], method)
    await eventually(lambda: status_is(w, after_sent["payment_id"], "reversed"))


async def test_stripe_cannot_pay_out_and_says_so_before_sending(make_wired: MakeWired):
    w = await make_wired(route("stripe"))
    status, problem = await withdraw(w, PAYOUT)
    assert (status, problem["code"]) == (422, "unsupported_withdrawal_method")
    assert "stripe cannot pay players out" in problem["detail"]
    assert w.stack.servers["stripe"].stats["/v1/payment_intents"] == 0


async def test_a_withdrawal_to_a_method_nobody_pays_out_by_is_422(make_wired: MakeWired):
    w = await make_wired(route("trustly", "adyen"))
    status, problem = await withdraw(w, {**PAYOUT, "method": {"type": "card"}})
    assert (status, problem["code"]) == (422, "unsupported_withdrawal_method")
    assert w.stack.servers["trustly"].stats[TRUSTLY_API] == 0
    assert w.stack.servers["adyen"].stats[TRANSFERS] == 0


async def test_a_payout_fails_over_only_when_nothing_was_sent(make_wired: MakeWired):
    rules = {"rules": [{"match": {"type": "withdrawal"}, "providers": ["trustly", "adyen"]}]}
    w = await make_wired({**ADYEN_CAN_PAY_OUT, **route("stripe", **rules)})
    await w.stack.servers["trustly"].stop_listening()
    status, payout = await withdraw(w, ADYEN_PAYOUT)
    assert (status, payout["provider"]) == (201, "adyen")
    assert [a["outcome"] for a in payout["attempts"]] == ["refused", "ok"]
    assert {a["rule"] for a in payout["attempts"]} == {"rules[0]"}
    await w.stack.servers["trustly"].start_listening()
    # A Trustly that may have taken the request keeps it: 202, and Adyen never asked.
    w.stack.servers["trustly"].faults = Faults(mode="error")
    status, unknown = await withdraw(w, ADYEN_PAYOUT)
    assert (status, unknown["provider"], unknown["status"]) == (202, "trustly", "processing")
    assert w.stack.servers["adyen"].stats[TRANSFERS] == 1
