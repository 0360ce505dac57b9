"""`create_app`: the aiohttp application with its settings, routes, error middleware and
the lifecycle of its HTTP session and background tasks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from simulators import faults
from simulators.outbound import outbound_lifecycle
from simulators.stripe.api import create_intent, get_intent, list_intents, unknown_route
from simulators.stripe.control import complete_intent, list_events, resend_event
from simulators.stripe.refunds import complete_refund, create_refund
from simulators.stripe.state import STATE, StripeState
from simulators.stripe.wire import (
    VERSION_RE,
    StripeApiError,
    error_response,
    json_response,
    rand,
)

DEFAULT_PORT = 9103
DEFAULT_API_VERSION = "2024-06-20"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def stripe_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except StripeApiError as exc:
        response = json_response(exc.status, {"error": exc.error})
    if not request.path.startswith("/_sim/"):
        response.headers.setdefault("Request-Id", f"req_{rand(14)}")
    return response


def create_app(
    secret_key: str,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    auto_complete_s: float | None = None,
    api_version: str | None = None,
) -> web.Application:
    if not isinstance(secret_key, str) or not secret_key:
        raise ValueError("secret_key is required")
    if webhook_url is not None and not webhook_secret:
        raise ValueError("webhook_url needs webhook_secret: Stripe signs every delivery")
    if auto_complete_s is not None and auto_complete_s < 0:
        raise ValueError("auto_complete_s must be >= 0")
    version = api_version or DEFAULT_API_VERSION
    if not VERSION_RE.fullmatch(version):
        raise ValueError(f"api_version {version!r} is not a Stripe API version")

    app = web.Application()
    app[STATE] = StripeState(
        secret_key=secret_key,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        auto_complete_s=auto_complete_s,
        api_version=version,
    )
    faults.install(app, error_response)
    app.middlewares.append(stripe_errors)
    app.cleanup_ctx.append(outbound_lifecycle(STATE))
    app.router.add_post("/v1/payment_intents", create_intent)
    app.router.add_get("/v1/payment_intents", list_intents)
    app.router.add_get("/v1/payment_intents/{id}", get_intent)
    app.router.add_post("/v1/refunds", create_refund)
    app.router.add_post("/_sim/refunds/{id}/complete", complete_refund)
    app.router.add_post("/_sim/payment_intents/{id}/complete", complete_intent)
    app.router.add_post("/_sim/events/{id}/resend", resend_event)
    app.router.add_get("/_sim/events", list_events)
    app.router.add_route("*", "/v1/{tail:.*}", unknown_route)
    return app
