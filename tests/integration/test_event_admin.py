"""The admin routes of event delivery: list what fails, send an event again.

Every answer is checked against the OpenAPI document, as in test_openapi.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from gateway.http.validation import openapi_document
from tests.integration.test_openapi import Recorder
from tests.wired import MakeWired, Wired, eventually, start_backend

VIEW_KEY = "view_" + uuid.uuid4().hex
OP_KEY = "op_" + uuid.uuid4().hex
WEB_KEY = "web_" + uuid.uuid4().hex
CLIENTS = {
    "clients": [
        {"id": "web", "key_sha256": hashlib.sha256(WEB_KEY.encode()).hexdigest()},
        {"id": "viewer", "key_sha256": hashlib.sha256(VIEW_KEY.encode()).hexdigest(),
         "roles": ["viewer"]},
        {"id": "ops", "key_sha256": hashlib.sha256(OP_KEY.encode()).hexdigest(),
         "roles": ["operator"]},
    ]
}
VIEWER, OPERATOR = {"X-API-Key": VIEW_KEY}, {"X-API-Key": OP_KEY}
LIST = "/admin/events/deliveries"
REDELIVER = "/admin/events/{event_id}/redeliver"


async def deliveries(w: Wired, rec: Recorder, query: str = "") -> dict[str, Any]:
    resp = await w.client.get(LIST + query, headers=VIEWER)
    assert resp.status == 200
    return await rec.check(resp, "get", LIST)


async def test_a_given_up_delivery_is_listed_and_sent_again_on_request(make_wired: MakeWired):
    backend = await start_backend()
    backend.status = 503
    w = await make_wired(
        {**CLIENTS, "events": {"max_attempts": 2, "backoff_initial_s": 0.05}}, backend=backend
    )
    rec = Recorder(openapi_document())
    payment = await w.pay(player_id="pia", headers={"X-API-Key": WEB_KEY})
    await w.stripe_complete(payment["provider_reference"], "succeeded")

    async def given_up() -> bool:
        return (await deliveries(w, rec, "?status=given_up"))["deliveries"] != []

    await eventually(given_up)
    listed = await deliveries(w, rec, "?status=failing")
    (failing,) = listed["deliveries"]
    assert (failing["payment_id"], failing["type"]) == (payment["payment_id"], "payment.succeeded")
    assert (failing["status"], failing["attempts"]) == ("given_up", 2)
    assert failing["last_error"] == "DeliveryFailed: backend answered HTTP 503"
    assert (listed["pending"], listed["failing"]) == (0, 1)
    assert backend.attempts == 2 and backend.received == []

    event_id = failing["event_id"]
    path = f"/admin/events/{event_id}/redeliver"
    refused = await w.client.post(path, headers=VIEWER)  # operators only
    assert refused.status == 403
    await rec.check(refused, "post", REDELIVER)
    backend.status = 200
    resp = await w.client.post(path, headers=OPERATOR)
    assert resp.status == 202
    queued = await rec.check(resp, "post", REDELIVER)
    assert (queued["event_id"], queued["status"], queued["attempts"]) == (event_id, "pending", 0)

    async def delivered() -> bool:
        return [e["event_id"] for e in backend.events()] == [event_id]

    await eventually(delivered)
    (done,) = (await deliveries(w, rec, "?status=delivered"))["deliveries"]
    assert (done["event_id"], done["attempts"]) == (event_id, 1)
    assert done["delivered_at"] is not None
    assert (await deliveries(w, rec, "?status=failing"))["deliveries"] == []

    for resp, method, template, status in [
        (await w.client.get(LIST), "get", LIST, 401),
        (await w.client.get(LIST + "?status=lost", headers=VIEWER), "get", LIST, 400),
        (await w.client.get(LIST + "?limit=0", headers=VIEWER), "get", LIST, 400),
        (await w.client.get(LIST + "?colour=red", headers=VIEWER), "get", LIST, 400),
        (await w.client.post("/admin/events/evt_nope/redeliver", headers=OPERATOR), "post",
         REDELIVER, 404),
        (await w.client.post(path), "post", REDELIVER, 401),
    ]:
        assert resp.status == status
        await rec.check(resp, method, template)
    assert rec.seen == {("get", LIST): {200, 400, 401}, ("post", REDELIVER): {202, 401, 403, 404}}
