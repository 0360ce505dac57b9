"""`POST /v1/payments/{payment_id}/refunds` and `GET .../refunds/{refund_id}`.

What is refunded, and how, is `gateway.payments.refunds`; this is the HTTP side of it. With
a player token, only that player's payments can be refunded or read (404 for any other, as
for `GET /v1/payments/{id}`).
"""

from __future__ import annotations

from aiohttp import web

from gateway.events.hub import HUB
from gateway.http.api import idempotency_key, read_json
from gateway.http.context import CTX, GATEWAY, json_response
from gateway.http.validation import validate_body
from gateway.payments.announcements import NOBODY
from gateway.payments.refunds import create_refund, get_refund


async def create(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    key = idempotency_key(request)
    body = validate_body("RefundRequest", await read_json(request))
    hub = request.app.get(HUB)
    status, refund, replayed = await create_refund(
        gw,
        ctx["runtime"],
        ctx["client_id"],
        key,
        request.match_info["payment_id"],
        body,
        ctx["player_id"],
        hub if hub is not None else NOBODY,
    )
    ctx["provider"] = refund["provider"]
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return json_response(refund, status=status, headers=headers)


async def get(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    refund = await get_refund(
        gw, request.match_info["payment_id"], request.match_info["refund_id"], ctx["player_id"]
    )
    ctx["provider"] = refund["provider"]
    return json_response(refund)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/payments/{payment_id}/refunds", create, name="refunds.create")
    app.router.add_get(
        "/v1/payments/{payment_id}/refunds/{refund_id}", get, name="refunds.get"
    )
