"""POST /v1/webhooks/{provider}: read and verify a provider's webhook, then apply its events.

What is applied and how is `gateway.payments.webhooks`; this is the HTTP side of it.
"""

from __future__ import annotations

import logging
import time
import weakref

from aiohttp import web

from adapters.base import PaymentEvent, WebhookRejected
from gateway.events.hub import HUB
from gateway.http.body import read_body
from gateway.http.context import CTX, GATEWAY
from gateway.ledger.database import LedgerUnavailable
from gateway.payments.announcements import NOBODY
from gateway.payments.webhooks import Locks, handle_event
from gateway.problems import ApiError

log = logging.getLogger("gateway.webhooks")

MAX_BODY_BYTES = 1024 * 1024
LOCKS: web.AppKey[Locks] = web.AppKey("webhook_locks", weakref.WeakValueDictionary)


async def receive(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    name = request.match_info["provider"]
    state = ctx["runtime"].providers.get(name)
    verify = getattr(state.adapter, "verify_webhook", None) if state is not None else None
    if state is None or verify is None:
        raise ApiError("not_found", f"no webhook endpoint for '{name}'")
    ctx["provider"] = name
    body = await read_body(request, MAX_BODY_BYTES, ctx["runtime"].config.server.body_timeout_s)
    try:
        verified: list[PaymentEvent] = verify(request.headers, body, time.time())
    except WebhookRejected as exc:
        log.warning(
            "webhook rejected",
            extra={"provider": name, "reason": str(exc), "request_id": ctx["request_id"]},
        )
        raise ApiError("unauthorized", "the webhook signature does not verify") from None
    hub = request.app.get(HUB)
    announcer = hub if hub is not None else NOBODY
    try:
        for event in verified:
            await handle_event(gw, name, event, locks=request.app[LOCKS], announcer=announcer)
    except LedgerUnavailable as exc:
        log.error("webhook not applied: the ledger is unreachable", extra={"error": str(exc)})
        raise ApiError(
            "unavailable",
            "the gateway cannot record the event now; deliver it again",
            headers={"Retry-After": "5"},
        ) from None
    status, content_type, ack = state.adapter.webhook_ack(body)
    return web.Response(status=status, body=ack, content_type=content_type)


def add_routes(app: web.Application) -> None:
    """Register the webhook route."""
    app[LOCKS] = weakref.WeakValueDictionary()
    app.router.add_post("/v1/webhooks/{provider}", receive, name="webhooks.receive")
