"""`create_app`: the aiohttp application with its keys, settings and routes, and the
lifecycle of its HTTP session and background tasks."""

from __future__ import annotations

from aiohttp import web

from simulators import faults
from simulators.outbound import outbound_lifecycle
from simulators.trustly.api import error_response, rpc
from simulators.trustly.control import list_notifications, list_orders, notify_order
from simulators.trustly.signing import private_key, public_key
from simulators.trustly.state import STATE, TrustlyState

DEFAULT_PORT = 9105
CHECKOUT_URL = "https://checkout.test.trustly.example/checkout"


def create_app(
    *,
    username: str,
    password: str,
    merchant_public_key_pem: str,
    trustly_private_key_pem: str,
    auto_complete_s: float | None = None,
) -> web.Application:
    if not username or not password:
        raise ValueError("username and password are required")
    if auto_complete_s is not None and auto_complete_s < 0:
        raise ValueError("auto_complete_s must not be negative")
    app = web.Application()
    app[STATE] = TrustlyState(
        username=username,
        password=password,
        merchant_key=public_key(merchant_public_key_pem),
        trustly_key=private_key(trustly_private_key_pem),
        checkout_url=CHECKOUT_URL,
        auto_complete_s=auto_complete_s,
    )
    faults.install(app, error_response)
    app.cleanup_ctx.append(outbound_lifecycle(STATE))
    app.router.add_post("/api/1", rpc)
    app.router.add_post("/_sim/orders/{orderid}/notify", notify_order)
    app.router.add_get("/_sim/orders", list_orders)
    app.router.add_get("/_sim/notifications", list_notifications)
    return app


