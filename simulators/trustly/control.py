"""The `/_sim` control endpoints: send a notification about an order, list orders and
deliveries."""

from __future__ import annotations

from aiohttp import web

from simulators.trustly.notifications import METHODS, notify
from simulators.trustly.state import STATE


async def notify_order(request: web.Request) -> web.Response:
    try:
        data = await request.json()
    except ValueError:
        data = None
    method = data.get("method") if isinstance(data, dict) else None
    if method not in METHODS:
        return web.json_response(
            {"error": f"method must be one of {', '.join(METHODS)}"}, status=400
        )
    refund = bool(data.get("refund", False)) if isinstance(data, dict) else False
    order_id = request.match_info["orderid"]
    try:
        result = await notify(request.app, order_id, method, refund=refund)
    except KeyError:
        return web.json_response({"error": f"no order {order_id}"}, status=404)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.json_response(result)


async def list_orders(request: web.Request) -> web.Response:
    orders = request.app[STATE].orders.values()
    return web.json_response({"orders": [order.to_dict() for order in orders]})


async def list_notifications(request: web.Request) -> web.Response:
    return web.json_response({"notifications": request.app[STATE].deliveries})
