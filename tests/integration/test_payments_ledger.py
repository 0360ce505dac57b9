"""The ledger's rules seen from outside: over real sockets, with the simulators.

- nothing is sent unless the ledger durably names the provider first;
- a replay never moves a payment back, whatever the provider replays;
- an id the ledger does not know changes nothing;
- a provider's concurrent-use refusal keeps the payment there, never fails it over;
- malformed, deeply nested or huge answers and bodies are classified, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from gateway.ledger.database import LedgerUnavailable
from gateway.payments import ids as payment_ids
from simulators.faults import Faults
from tests.conftest import GatewayUnderTest, MakeGateway
from tests.wired import (
    ADYEN_ONLY,
    DEPOSIT,
    MakeWired,
    Wired,
    adyen_notification,
    eventually,
    settle,
    stripe_headers,
)

STRIPE_CREATE = "/v1/payment_intents"
ADYEN_CREATE = "/v71/payments"
HUB88_LIST = "/operator/generic/v2/game/list"


async def pay(gw: GatewayUnderTest, key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    resp = await gw.client.post("/v1/payments", json=DEPOSIT, headers=headers)
    return resp.status, await resp.json(content_type=None)


# ---- the owner is on record before anything is sent ---------------------------------------


async def test_a_ledger_failing_at_the_owner_write_sends_nothing(gw: GatewayUnderTest):
    # The first provider is named in the claim's own write: that write fails.
    claim = gw.gateway.ledger.claim

    async def fail_naming_an_owner(client_id: str, key: str, fp: str, owner: Any = None) -> Any:
        if owner is not None:
            raise LedgerUnavailable("injected: the ledger refused the write")
        return await claim(client_id, key, fp, owner)

    gw.gateway.ledger.claim = fail_naming_an_owner  # type: ignore[method-assign]
    status, body = await pay(gw)
    assert status == 503
    assert body["code"] == "idempotency_store_unavailable"
    assert gw.calls("stripe", STRIPE_CREATE) == 0
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_a_ledger_failing_at_the_failover_owner_write_sends_nothing_there(
    gw: GatewayUnderTest,
):
    # Stripe refuses connections (nothing sent: failover-safe); naming Adyen then fails.
    await gw.stack.servers["stripe"].stop_listening()

    async def fail(held: Any, provider: str) -> None:
        raise LedgerUnavailable("injected: the ledger refused the write")

    gw.gateway.ledger.stamp_owner = fail  # type: ignore[method-assign]
    status, body = await pay(gw)
    assert status == 503
    assert body["code"] == "idempotency_store_unavailable"
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_a_ledger_down_at_the_claim_is_503_with_retry_after(gw: GatewayUnderTest):
    async def fail(*args: Any) -> Any:
        raise LedgerUnavailable("injected")

    gw.gateway.ledger.claim = fail  # type: ignore[method-assign]
    resp = await gw.client.post(
        "/v1/payments", json=DEPOSIT, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    assert (await resp.json())["code"] == "idempotency_store_unavailable"
    assert gw.calls("stripe", STRIPE_CREATE) == 0


# ---- replays keep what the ledger learnt ----------------------------------------------------


async def _unknown_then_settled_by_webhook(w: Wired, provider: str) -> tuple[str, dict[str, Any]]:
    """A payment answered 202 (its provider holds it past the timeout), then settled by a
    webhook."""
    w.stack.servers[provider].faults = Faults(hold_ms=1500)
    key = uuid.uuid4().hex
    resp = await w.client.post("/v1/payments", json=DEPOSIT, headers={"Idempotency-Key": key})
    assert resp.status == 202
    accepted: dict[str, Any] = await resp.json()
    assert (accepted["provider"], accepted["status"]) == (provider, "processing")
    w.stack.servers[provider].faults = Faults()
    await asyncio.sleep(1.6)  # the held request has been processed by now
    if provider == "stripe":
        created = [i for i in _stripe_intents(w) if i["metadata"].get("gateway_reference")]
        assert len(created) == 1
        await w.stripe_complete(created[0]["id"], "succeeded")
    else:
        payments = list(_adyen_payments(w))
        assert len(payments) == 1, (payments, dict(w.stack.servers["adyen"].stats))
        await w.adyen_complete(payments[0], "authorised")

    async def settled() -> bool:
        record = await w.gateway.ledger.payment(accepted["payment_id"])
        return record is not None and record.status == "succeeded"

    await eventually(settled)
    return key, accepted


def _stripe_intents(w: Wired) -> list[dict[str, Any]]:
    from simulators import stripe as stripe_sim

    return list(w.stack.servers["stripe"].app[stripe_sim.STATE].intents.values())


def _adyen_payments(w: Wired) -> list[str]:
    from simulators import adyen as adyen_sim

    return list(w.stack.servers["adyen"].app[adyen_sim.STATE].payments)


@pytest.mark.parametrize("provider", ["stripe", "adyen"])
async def test_replaying_a_202_after_its_success_webhook_keeps_succeeded(
    make_wired: MakeWired, provider: str
):
    w = await make_wired(ADYEN_ONLY if provider == "adyen" else None)
    key, accepted = await _unknown_then_settled_by_webhook(w, provider)
    create = STRIPE_CREATE if provider == "stripe" else ADYEN_CREATE
    sent = w.stack.servers[provider].stats[create]
    for _ in range(2):
        resp = await w.client.post(
            "/v1/payments", json=DEPOSIT, headers={"Idempotency-Key": key}
        )
        assert resp.status == 201
        assert resp.headers["Idempotent-Replayed"] == "true"
        replayed = await resp.json()
        assert replayed["payment_id"] == accepted["payment_id"]
        assert replayed["status"] == "succeeded"
        assert replayed["next_action"] is None
    assert w.stack.servers[provider].stats[create] == sent  # known: nobody was asked again
    got = await w.get(accepted["payment_id"])
    assert got["status"] == "succeeded"


# ---- ids the ledger does not know -------------------------------------------------------


async def test_a_forged_unsigned_id_changes_nothing(make_wired: MakeWired):
    w = await make_wired(ADYEN_ONLY)
    payment = await w.pay()
    real = payment_ids.decode(payment["payment_id"], None)
    forged_ref = payment_ids.PaymentRef(
        real.provider, "gw_forged", real.provider_reference, 1, "EUR", real.created_at
    )
    forged = payment_ids.encode(forged_ref, None)
    resp = await w.client.get(f"/v1/payments/{forged}")
    assert resp.status == 404
    assert await w.gateway.ledger.payment(forged) is None
    # The real payment's webhook still finds and updates the real record.
    await w.adyen_complete(payment["provider_reference"], "authorised")
    assert await w.stored_status(payment["payment_id"]) == "succeeded"
    await settle(w)
    assert w.backend is not None
    assert [e["payment_id"] for e in w.backend.events()] == [payment["payment_id"]]


# ---- the provider's own concurrent-use refusal -----------------------------------------------


@pytest.mark.parametrize("provider", ["stripe", "adyen"])
async def test_a_key_in_use_at_the_provider_keeps_the_payment_there(
    make_gateway: MakeGateway, provider: str
):
    routes = {"payments.create": {"providers": [provider, "adyen" if provider == "stripe"
                                                 else "stripe"]}}
    gw = await make_gateway(
        {
            "routes": routes,
            "ledger": {"backend": "memory", "claim_lease_s": 0.3},
            "providers": {provider: {"timeout_ms": 4000}},
        }
    )
    other = "adyen" if provider == "stripe" else "stripe"
    create = STRIPE_CREATE if provider == "stripe" else ADYEN_CREATE
    other_create = ADYEN_CREATE if provider == "stripe" else STRIPE_CREATE
    gw.stack.servers[provider].faults = Faults(hold_ms=2000)
    key = uuid.uuid4().hex
    first = asyncio.create_task(pay(gw, key))
    await eventually_calls(gw, provider, create, 1)
    await asyncio.sleep(0.4)  # the first request's claim lease is over; it is still held
    status, body = await pay(gw, key)  # takes the claim over, asks the owner again
    assert status == 202
    assert (body["provider"], body["status"]) == (provider, "processing")
    assert gw.calls(provider, create) >= 2  # the provider was asked and refused: key in use
    first_status, first_body = await first
    assert first_status == 201 and first_body["provider"] == provider
    assert gw.calls(other, other_create) == 0
    # Once the provider is done, the key's outcome is learnt there: one payment.
    status, learnt = await pay(gw, key)
    assert status == 201
    assert learnt["provider_reference"] == first_body["provider_reference"]
    assert gw.calls(other, other_create) == 0


async def eventually_calls(gw: GatewayUnderTest, name: str, path: str, n: int) -> None:
    for _ in range(200):
        if gw.calls(name, path) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} {path} not called {n} times")


# ---- malformed and oversized answers and bodies ---------------------------------------------


@pytest.mark.parametrize("mode", ["deep_json", "huge", "garbage", "truncated"])
async def test_a_malformed_create_answer_is_a_202_owned_by_that_provider(
    gw: GatewayUnderTest, mode: str
):
    gw.stack.servers["stripe"].faults = Faults(mode=mode)
    status, body = await pay(gw)
    assert status == 202, body
    assert (body["provider"], body["status"]) == ("stripe", "processing")
    assert gw.calls("adyen", ADYEN_CREATE) == 0


@pytest.mark.parametrize("mode", ["deep_json", "huge"])
async def test_a_malformed_read_back_answer_serves_the_ledger_record(
    gw: GatewayUnderTest, mode: str
):
    status, created = await pay(gw)
    assert status == 201
    gw.stack.servers["stripe"].faults = Faults(mode=mode)
    resp = await gw.client.get(f"/v1/payments/{created['payment_id']}")
    assert resp.status == 200
    got = await resp.json()
    assert (got["payment_id"], got["status"]) == (created["payment_id"], "requires_action")


@pytest.mark.parametrize("mode", ["deep_json", "huge"])
async def test_a_malformed_catalog_answer_is_a_partial_catalog(gw: GatewayUnderTest, mode: str):
    gw.stack.servers["hub88"].faults = Faults(mode=mode)
    resp = await gw.client.get("/v1/games")
    assert resp.status == 200
    body = await resp.json()
    assert body["meta"]["partial"] is True
    assert body["meta"]["providers"]["hub88"] == "error"
    assert gw.calls("hub88", HUB88_LIST) >= 1


@pytest.mark.parametrize("provider", ["stripe", "adyen"])
async def test_deeply_nested_or_huge_webhook_bodies_are_refused_not_500(
    make_wired: MakeWired, provider: str
):
    w = await make_wired()
    deep = b"[" * 100_000 + b"]" * 100_000
    huge = json.dumps({"padding": "x" * (2 * 1024 * 1024)}).encode()
    for body, status in ((deep, 401), (huge, 413)):
        resp = await w.webhook(provider, body, {"Content-Type": "application/json"})
        assert resp.status == status
    # Even signed, a deeply nested Stripe event is refused as unreadable, not a 500.
    secret = w.stack.secrets.stripe_webhook_secret
    resp = await w.webhook("stripe", deep, stripe_headers(secret, deep))
    assert resp.status == 401
    # An Adyen batch nested too deep to read is refused before any item is verified.
    good = adyen_notification(w.stack.secrets.adyen_hmac_key, "psp1", "ref1", 100)
    nested = json.dumps(good).encode()[:-1] + b', "x": ' + deep + b"}"
    resp = await w.webhook("adyen", nested)
    assert resp.status == 401
