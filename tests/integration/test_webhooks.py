"""Provider webhooks through the gateway, over real sockets.

The simulators send their signed webhooks to the gateway's /v1/webhooks/{provider}, and the
gateway forwards normalized events to a small test backend. The gateway listens on a port
picked before the simulators start, so they can be told where to deliver.
"""

from __future__ import annotations

import copy
import io
import json
import re
import time
from collections.abc import AsyncIterator

import pytest

from gateway.events.delivery import EVENT_ID_HEADER
from gateway.payments.status import next_status
from gateway.payments.webhooks import gateway_event_id
from simulators import adyen as adyen_sim
from tests.wired import (
    ADYEN_ONLY,
    ISO_UTC,
    MakeWired,
    adyen_notification,
    eventually,
    settle,
    stripe_event,
    stripe_headers,
)

# ---- the status rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "event_type", "expected"),
    [
        ("requires_action", "payment.succeeded", ("succeeded", True)),
        ("requires_action", "payment.processing", ("processing", True)),
        ("processing", "payment.requires_action", ("processing", False)),
        ("succeeded", "payment.succeeded", ("succeeded", True)),
        ("succeeded", "payment.processing", ("succeeded", False)),
        ("succeeded", "payment.failed", ("succeeded", False)),
        ("canceled", "payment.succeeded", ("canceled", False)),
        ("failed", "payment.succeeded", ("succeeded", True)),
        # What follows a success is a new state of its own, announced:
        ("succeeded", "payment.canceled", ("canceled", True)),
        ("succeeded", "payment.refunded", ("refunded", True)),
        ("succeeded", "payment.reversed", ("reversed", True)),
        ("refunded", "payment.succeeded", ("refunded", False)),
        ("refunded", "payment.canceled", ("refunded", False)),
        ("pending", "payment.something_new", ("pending", False)),
    ],
)
def test_status_moves_forward_only(current: str, event_type: str, expected: tuple[str, bool]):
    assert next_status(current, event_type) == expected


def test_event_ids_are_stable_per_provider_event():
    assert gateway_event_id("stripe", "evt_1") == gateway_event_id("stripe", "evt_1")
    assert gateway_event_id("stripe", "evt_1") != gateway_event_id("adyen", "evt_1")
    assert re.fullmatch(r"evt_[0-9a-f]{32}", gateway_event_id("stripe", "evt_1"))


# ---- payments reach succeeded by webhook -----------------------------------------------------


async def test_stripe_payment_succeeds_by_webhook(make_wired: MakeWired):
    w = await make_wired()
    payment = await w.pay(player_id="player-7")
    assert (payment["provider"], payment["status"]) == ("stripe", "requires_action")
    answer = await w.stripe_complete(payment["provider_reference"], "succeeded")
    assert answer["delivery"] == {"status": 200, "error": None}
    # The record changed by the webhook alone: no GET (which asks Stripe) has run yet.
    assert await w.stored_status(payment["payment_id"]) == "succeeded"
    got = await w.get(payment["payment_id"])
    assert (got["status"], got["next_action"]) == ("succeeded", None)

    await settle(w)
    assert w.backend is not None
    assert len(w.backend.received) == 1
    received = w.backend.received[0]
    assert received.verified
    event = received.event
    assert event == {
        "event_id": gateway_event_id("stripe", answer["event"]["id"]),
        "type": "payment.succeeded",
        "payment_id": payment["payment_id"],
        "provider": "stripe",
        "provider_reference": payment["provider_reference"],
        "amount": 2500,
        "currency": "EUR",
        "occurred_at": event["occurred_at"],
    }
    assert ISO_UTC.match(event["occurred_at"])
    assert received.headers[EVENT_ID_HEADER] == event["event_id"]
    assert received.headers["Content-Type"] == "application/json"


async def test_adyen_payment_succeeds_by_webhook(make_wired: MakeWired):
    w = await make_wired(ADYEN_ONLY)
    payment = await w.pay()
    assert (payment["provider"], payment["status"]) == ("adyen", "requires_action")
    answer = await w.adyen_complete(payment["provider_reference"], "authorised")
    # Adyen counts a delivery as done only on the literal [accepted].
    assert answer["delivery"] == {
        "status": 200,
        "body": "[accepted]",
        "accepted": True,
        "error": None,
    }

    async def succeeded() -> bool:
        return (await w.get(payment["payment_id"]))["status"] == "succeeded"

    await eventually(succeeded)
    await settle(w)
    assert w.backend is not None
    assert [(e["type"], e["payment_id"]) for e in w.backend.events()] == [
        ("payment.succeeded", payment["payment_id"])
    ]
    event = w.backend.events()[0]
    assert event["provider_reference"] == payment["provider_reference"]
    assert (event["amount"], event["currency"]) == (2500, "EUR")
    assert all(r.verified for r in w.backend.received)


async def test_adyen_refund_after_success_is_refunded_and_announced(make_wired: MakeWired):
    w = await make_wired(ADYEN_ONLY)
    payment = await w.pay()
    await w.adyen_complete(payment["provider_reference"], "authorised")
    await w.adyen_complete(payment["provider_reference"], "refund")
    assert (await w.get(payment["payment_id"]))["status"] == "refunded"
    await settle(w)
    assert w.backend is not None
    events = w.backend.events()
    assert [e["type"] for e in events] == ["payment.succeeded", "payment.refunded"]
    # The refund is its own Adyen transaction; the event names the payment it refunds.
    assert events[1]["provider_reference"] == payment["provider_reference"]
    assert len({e["event_id"] for e in events}) == 2


async def test_adyen_cancellation_after_authorisation_is_canceled_and_announced(
    make_wired: MakeWired,
):
    w = await make_wired(ADYEN_ONLY)
    payment = await w.pay()
    await w.adyen_complete(payment["provider_reference"], "authorised")
    assert await w.stored_status(payment["payment_id"]) == "succeeded"
    await w.adyen_complete(payment["provider_reference"], "cancelled")
    assert await w.stored_status(payment["payment_id"]) == "canceled"
    assert (await w.get(payment["payment_id"]))["status"] == "canceled"
    history = await w.gateway.ledger.status_history(payment["payment_id"])
    assert [(old, new) for old, new, _source in history] == [
        (None, "requires_action"),  # the simulator asks for a redirect first
        ("requires_action", "succeeded"),
        ("succeeded", "canceled"),
    ]
    await settle(w)
    assert w.backend is not None
    assert [(e["type"], e["payment_id"]) for e in w.backend.events()] == [
        ("payment.succeeded", payment["payment_id"]),
        ("payment.canceled", payment["payment_id"]),
    ]


async def test_failed_and_canceled_stripe_payments(make_wired: MakeWired):
    w = await make_wired()
    failed, canceled = await w.pay(), await w.pay()
    await w.stripe_complete(failed["provider_reference"], "payment_failed")
    await w.stripe_complete(canceled["provider_reference"], "canceled")
    assert await w.stored_status(failed["payment_id"]) == "failed"
    assert await w.stored_status(canceled["payment_id"]) == "canceled"
    await settle(w)
    assert w.backend is not None
    assert sorted((e["payment_id"], e["type"]) for e in w.backend.events()) == sorted(
        [
            (failed["payment_id"], "payment.failed"),
            (canceled["payment_id"], "payment.canceled"),
        ]
    )


# ---- forged, stale and tampered webhooks change nothing -----------------------------------


@pytest.mark.parametrize("case", ["bad_signature", "old_timestamp", "changed_body", "none"])
async def test_unverified_stripe_webhook_is_401_and_changes_nothing(
    make_wired: MakeWired, case: str
):
    w = await make_wired()
    payment = await w.pay()
    secret = w.stack.secrets.stripe_webhook_secret
    body = stripe_event(await w.intent(payment["provider_reference"]))
    sent, headers = body, stripe_headers(secret, body)
    if case == "bad_signature":
        headers = stripe_headers("whsec_not_the_secret", body)
    elif case == "old_timestamp":
        headers = stripe_headers(secret, body, int(time.time()) - 600)
    elif case == "changed_body":
        sent = body.replace(b'"amount": 2500', b'"amount": 2')
        assert sent != body
    else:
        headers = {"Content-Type": "application/json"}

    resp = await w.webhook("stripe", sent, headers)
    assert resp.status == 401
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    problem = await resp.json(content_type=None)
    assert (problem["status"], problem["code"]) == (401, "unauthorized")
    assert await w.stored_status(payment["payment_id"]) == "requires_action"
    await settle(w)
    assert w.backend is not None and w.backend.received == []
    assert w.hub.log.entries() == []

    # The same event, signed right, is accepted: only the signature was at fault.
    resp = await w.webhook("stripe", body, stripe_headers(secret, body))
    assert (resp.status, await resp.json()) == (200, {"received": True})
    assert await w.stored_status(payment["payment_id"]) == "succeeded"


@pytest.mark.parametrize("case", ["bad_signature", "changed_amount", "none"])
async def test_unverified_adyen_webhook_is_401_and_changes_nothing(
    make_wired: MakeWired, case: str
):
    w = await make_wired(ADYEN_ONLY)
    payment = await w.pay()
    psp = payment["provider_reference"]
    record = await w.gateway.ledger.payment(payment["payment_id"])
    assert record is not None
    reference = record.reference
    good = adyen_notification(w.stack.secrets.adyen_hmac_key, psp, reference, 2500)
    forged = copy.deepcopy(good)
    item = forged["notificationItems"][0]["NotificationRequestItem"]
    if case == "bad_signature":
        item["additionalData"]["hmacSignature"] = adyen_sim.sign_notification(b"\x01" * 32, item)
    elif case == "changed_amount":
        item["amount"]["value"] = 1
    else:
        item["additionalData"] = {}

    resp = await w.webhook("adyen", json.dumps(forged).encode())
    assert resp.status == 401
    assert (await resp.json(content_type=None))["code"] == "unauthorized"
    assert await w.stored_status(payment["payment_id"]) == "requires_action"
    await settle(w)
    assert w.backend is not None and w.backend.received == []

    resp = await w.webhook("adyen", json.dumps(good).encode())
    assert (resp.status, await resp.text()) == (200, "[accepted]")
    assert await w.stored_status(payment["payment_id"]) == "succeeded"


# ---- redeliveries ----------------------------------------------------------------------------


async def test_stripe_event_delivered_five_times_is_applied_and_forwarded_once(
    make_wired: MakeWired,
):
    w = await make_wired()
    payment = await w.pay()
    answer = await w.stripe_complete(payment["provider_reference"], "succeeded")
    event_id = answer["event"]["id"]
    for _ in range(4):
        resent = await w.sim("stripe", f"/_sim/events/{event_id}/resend")
        assert resent["delivery"] == {"status": 200, "error": None}
    async with w.client.session.get(w.stack.url("stripe") + "/_sim/events") as resp:
        listed = (await resp.json())["data"]
    assert [len(e["deliveries"]) for e in listed] == [5]
    assert all(d["status"] == 200 for d in listed[0]["deliveries"])

    await settle(w, quiet_s=1.0)
    assert w.backend is not None
    assert [e["event_id"] for e in w.backend.events()] == [gateway_event_id("stripe", event_id)]
    assert len(w.hub.log.entries()) == 1
    assert await w.stored_status(payment["payment_id"]) == "succeeded"


async def test_adyen_notification_delivered_five_times_is_acknowledged_each_time(
    make_wired: MakeWired,
):
    w = await make_wired(ADYEN_ONLY)
    payment = await w.pay()
    answer = await w.adyen_complete(payment["provider_reference"], "authorised")
    notification = {
        "live": "false",
        "notificationItems": [{"NotificationRequestItem": answer["notification"]}],
    }
    body = json.dumps(notification).encode()
    for _ in range(4):
        resp = await w.webhook("adyen", body)
        assert (resp.status, await resp.text()) == (200, "[accepted]")
    await settle(w, quiet_s=1.0)
    assert w.backend is not None
    assert [e["type"] for e in w.backend.events()] == ["payment.succeeded"]


# ---- what is not an error --------------------------------------------------------------------


async def test_event_for_unknown_payment_is_acknowledged_and_recorded(make_wired: MakeWired):
    w = await make_wired()
    intent = {
        "id": "pi_unknown123",
        "object": "payment_intent",
        "amount": 900,
        "currency": "eur",
        "metadata": {},
    }
    body = stripe_event(intent)
    resp = await w.webhook(
        "stripe", body, stripe_headers(w.stack.secrets.stripe_webhook_secret, body)
    )
    assert (resp.status, await resp.json()) == (200, {"received": True})
    event_id = gateway_event_id("stripe", json.loads(body)["id"])
    orphans = await w.gateway.ledger.orphan_events("stripe")
    assert [(o["event_id"], o["detail"]["provider_reference"]) for o in orphans] == [
        (event_id, "pi_unknown123")
    ]
    await settle(w)
    assert w.backend is not None and w.backend.received == []


async def test_late_event_does_not_move_a_payment_back(make_wired: MakeWired):
    w = await make_wired()
    payment = await w.pay()
    await w.stripe_complete(payment["provider_reference"], "succeeded")
    intent = await w.intent(payment["provider_reference"])
    body = stripe_event(intent, "payment_intent.processing")
    resp = await w.webhook(
        "stripe", body, stripe_headers(w.stack.secrets.stripe_webhook_secret, body)
    )
    assert resp.status == 200
    assert await w.stored_status(payment["payment_id"]) == "succeeded"
    await settle(w)
    assert w.backend is not None
    assert [e["type"] for e in w.backend.events()] == ["payment.succeeded"]


async def test_unknown_provider_and_game_provider_are_404(make_wired: MakeWired):
    w = await make_wired()
    for name in ("nope", "hub88"):
        resp = await w.webhook(name, b"{}", {"Content-Type": "application/json"})
        assert resp.status == 404
        assert (await resp.json(content_type=None))["code"] == "not_found"


async def test_oversized_webhook_is_413(make_wired: MakeWired):
    w = await make_wired()
    big = b"{" + b" " * (1024 * 1024) + b"}"

    async def chunked() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold while reading, not only up front.
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    for body in (io.BytesIO(big), chunked()):
        resp = await w.client.post("/v1/webhooks/stripe", data=body)
        assert resp.status == 413
        assert (await resp.json(content_type=None))["code"] == "payload_too_large"


async def test_webhooks_need_no_api_key_when_clients_are_configured(make_wired: MakeWired):
    w = await make_wired({"clients": [{"id": "web", "key_env": "WEB_API_KEY"}]})
    key = {"X-API-Key": w.stack.secrets.client_key}
    payment = await w.pay(headers=key)
    answer = await w.stripe_complete(payment["provider_reference"], "succeeded")
    assert answer["delivery"] == {"status": 200, "error": None}
    assert await w.stored_status(payment["payment_id"]) == "succeeded"
