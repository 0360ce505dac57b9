"""Notifications: built for an order, signed with Trustly's key, POSTed to the order's
NotificationURL, and the merchant's answer checked (a JSON-RPC result signed with the
merchant's key, for the same method and uuid, whose data says `"status": "OK"`)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web

from simulators.trustly.signing import sign, signature_ok
from simulators.trustly.state import STATE, Order, TrustlyState

METHODS = ("pending", "credit", "debit", "cancel", "payoutconfirmation")

# The state an order is in after each notification about it (refund ones aside).
NEXT_STATE = {
    "pending": "pending",
    "credit": "credited",
    "debit": "debited",
    "cancel": "canceled",
    "payoutconfirmation": "sent",
}


def _timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


def build(
    state: TrustlyState, order: Order, method: str, amount: Decimal | None, refund: bool
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "orderid": order.order_id,
        "messageid": order.message_id,
        "notificationid": str(next(state.notification_numbers)),
        "enduserid": order.end_user_id,
        "timestamp": _timestamp(),
    }
    if method != "cancel":
        data["amount"] = f"{(amount if amount is not None else order.amount):.2f}"
        data["currency"] = order.currency
    if refund:
        data["refund"] = "1"
    call_id = str(uuid.uuid4())
    return {
        "method": method,
        "params": {
            "signature": sign(state.trustly_key, method, call_id, data),
            "uuid": call_id,
            "data": data,
        },
        "version": "1.1",
    }


async def deliver(
    state: TrustlyState, order: Order, notification: dict[str, Any]
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "notification": notification, "status": None, "answered_ok": False, "error": None,
    }
    assert state.session is not None
    try:
        async with state.session.post(order.notification_url, json=notification) as response:
            record["status"] = response.status
            text = await response.text()
            record["answered_ok"] = _answer_ok(state, notification, text)
    except (aiohttp.ClientError, TimeoutError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    state.deliveries.append(record)
    return {key: record[key] for key in ("status", "answered_ok", "error")}


def _answer_ok(state: TrustlyState, notification: dict[str, Any], text: str) -> bool:
    try:
        result = json.loads(text)["result"]
    except (ValueError, KeyError, TypeError):
        return False
    if not isinstance(result, dict):
        return False
    method, call_id = notification["method"], notification["params"]["uuid"]
    return (
        result.get("method") == method
        and result.get("uuid") == call_id
        and result.get("data") == {"status": "OK"}
        and signature_ok(state.merchant_key, method, call_id, result.get("data"),
                         result.get("signature"))
    )


async def notify(
    app: web.Application, order_id: str, method: str, *, refund: bool = False
) -> dict[str, Any]:
    """Send one notification about an order (or its oldest open refund); KeyError if the
    order is unknown, ValueError if it has no refund to tell about."""
    state = app[STATE]
    order = state.orders[order_id]
    amount = None
    if refund:
        open_refunds = [r for r in order.refunds if r.state == "queued"]
        if not open_refunds:
            raise ValueError(f"order {order_id} has no queued refund")
        target = open_refunds[0]
        amount = target.amount
        if method in ("debit", "payoutconfirmation"):
            target.state = "done"
        elif method in ("cancel", "credit"):
            target.state = "failed"
    else:
        order.state = NEXT_STATE.get(method, order.state)
    notification = build(state, order, method, amount, refund)
    delivery = await deliver(state, order, notification)
    return {"order": order.to_dict(), "notification": notification, "delivery": delivery}


async def _auto_complete(app: web.Application, order_id: str, delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    order = app[STATE].orders[order_id]
    if order.kind == "Deposit":
        await notify(app, order_id, "pending")
        await notify(app, order_id, "credit")
    else:
        await notify(app, order_id, "debit")
        await notify(app, order_id, "payoutconfirmation")


def schedule_auto_complete(app: web.Application, order_id: str) -> None:
    state = app[STATE]
    if state.auto_complete_s is None:
        return
    task = asyncio.get_running_loop().create_task(
        _auto_complete(app, order_id, state.auto_complete_s)
    )
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
