"""Trustly notifications at `POST /v1/webhooks/trustly`, over real sockets: a deposit settled
by its credit, the answer a signed JSON-RPC "OK" the simulator verifies, a redelivery applied
once, and a notification that does not verify refused without changing anything."""

from __future__ import annotations

import json
from typing import Any

from simulators import trustly as trustly_sim
from tests.wired import MakeWired, Wired, eventually, settle

TRUSTLY_ONLY = {"routes": {"payments.create": {"providers": ["trustly"]}}}
SEK_BANK = {"currency": "SEK", "method": {"type": "bank_transfer"}, "country": "SE"}


async def deposit(w: Wired) -> dict[str, Any]:
    payment = await w.pay(**SEK_BANK)
    assert (payment["provider"], payment["status"]) == ("trustly", "requires_action")
    assert payment["next_action"]["url"].startswith(trustly_sim.CHECKOUT_URL)
    return payment


def notification(w: Wired, order_id: str, method: str) -> dict[str, Any]:
    state = w.stack.servers["trustly"].app[trustly_sim.STATE]
    built: dict[str, Any] = trustly_sim.notifications.build(
        state, state.orders[order_id], method, None, False
    )
    return built


async def test_a_trustly_deposit_is_settled_by_its_credit(make_wired: MakeWired):
    w = await make_wired(TRUSTLY_ONLY)
    payment = await deposit(w)
    answer = await w.trustly_notify(payment["provider_reference"], "pending")
    assert answer["delivery"]["answered_ok"] is True  # a signed OK the simulator verified
    await w.trustly_notify(payment["provider_reference"], "credit")

    async def succeeded() -> bool:
        return await w.stored_status(payment["payment_id"]) == "succeeded"

    await eventually(succeeded)
    await settle(w)
    assert w.backend is not None
    events = w.backend.events()
    assert [e["type"] for e in events] == ["payment.processing", "payment.succeeded"]
    assert (events[1]["amount"], events[1]["currency"]) == (2500, "SEK")


async def test_a_redelivered_notification_is_applied_once(make_wired: MakeWired):
    w = await make_wired(TRUSTLY_ONLY)
    payment = await deposit(w)
    body = json.dumps(notification(w, payment["provider_reference"], "credit")).encode()
    for _ in range(2):
        resp = await w.webhook("trustly", body, {"Content-Type": "application/json"})
        assert resp.status == 200
        answer = json.loads(await resp.read())
        assert answer["result"]["data"] == {"status": "OK"}
    await settle(w)
    assert w.backend is not None
    assert [e["type"] for e in w.backend.events()] == ["payment.succeeded"]


async def test_a_notification_with_a_bad_signature_is_refused_and_changes_nothing(
    make_wired: MakeWired,
):
    w = await make_wired(TRUSTLY_ONLY)
    payment = await deposit(w)
    forged = notification(w, payment["provider_reference"], "credit")
    forged["params"]["data"]["amount"] = "9999.00"  # changed after Trustly signed it
    resp = await w.webhook("trustly", json.dumps(forged).encode())
    assert resp.status == 401
    assert (await resp.json())["code"] == "unauthorized"
    # Signed by someone else's key: refused the same way.
    other_private, _ = trustly_sim.generate_keypair()
    impostor = trustly_sim.signing.private_key(other_private)
    unsigned = notification(w, payment["provider_reference"], "credit")
    params = unsigned["params"]
    params["signature"] = trustly_sim.sign(impostor, "credit", params["uuid"], params["data"])
    assert (await w.webhook("trustly", json.dumps(unsigned).encode())).status == 401
    assert await w.stored_status(payment["payment_id"]) == "requires_action"
    await settle(w, quiet_s=0.2)
    assert w.backend is not None and w.backend.events() == []
    assert await w.gateway.ledger.orphan_events("trustly") == []
