"""The ``/_sim`` control endpoints: list payments and webhook deliveries, complete a
payment.
"""

from __future__ import annotations

from aiohttp import web

from simulators.adyen.state import OUTCOMES, STATE
from simulators.adyen.webhooks import complete


async def list_payments(request: web.Request) -> web.Response:
    payments = request.app[STATE].payments.values()
    return web.json_response({"payments": [p.to_dict() for p in payments]})


async def list_webhooks(request: web.Request) -> web.Response:
    return web.json_response({"webhooks": request.app[STATE].webhooks})


async def complete_payment(request: web.Request) -> web.Response:
    try:
        data = await request.json()
    except ValueError:
        data = None
    outcome = data.get("outcome") if isinstance(data, dict) else None
    if outcome not in OUTCOMES:
        return web.json_response(
            {"error": f"outcome must be one of {', '.join(OUTCOMES)}"}, status=400
        )
    psp = request.match_info["psp"]
    try:
        result = await complete(request.app, psp, outcome)
    except KeyError:
        return web.json_response({"error": f"no payment {psp}"}, status=404)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.json_response(result)
