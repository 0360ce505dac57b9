"""Admin routes of event delivery: what waits or fails, and sending an event again.

    GET  /admin/events/deliveries?status=failing&limit=100     (viewer)
    POST /admin/events/{event_id}/redeliver                     (operator)

Both read the ledger's outbox (`gateway.ledger.outbox`), so every replica answers the same.
`status` is `pending` (not tried yet, or waiting), `failing` (undelivered after a failed
attempt, given-up ones included), `given_up` or `delivered`; without it, every delivery.
A redelivered event is queued again after its payment's earlier undelivered events, its
attempts counted from zero; one being sent right now is left to finish.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web

from gateway.config.model import ClientConfig
from gateway.events.hub import HUB
from gateway.http.admin import audit_action, requires
from gateway.http.context import GATEWAY, json_response
from gateway.ledger.database import LedgerUnavailable
from gateway.ledger.outbox import STATUSES
from gateway.ledger.payments import iso
from gateway.problems import ApiError

_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_LIMIT = 1000


def _api(delivery: dict[str, Any]) -> dict[str, Any]:
    times = ("next_attempt_at", "created_at", "delivered_at")
    return {k: (iso(v) if k in times and v is not None else v) for k, v in delivery.items()}


def _unavailable() -> ApiError:
    return ApiError(
        "unavailable", "the ledger is unreachable", headers={"Retry-After": "5"}
    )


@requires("viewer")
async def list_deliveries(request: web.Request, client: ClientConfig) -> web.Response:
    unknown = set(request.query) - {"status", "limit"}
    if unknown:
        raise ApiError(
            "invalid_request", f"unknown query parameter(s): {', '.join(sorted(unknown))}"
        )
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError("invalid_request", f"status must be one of {', '.join(STATUSES)}")
    raw_limit = request.query.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ApiError("invalid_request", f"limit must be an integer from 1 to {MAX_LIMIT}")
    ledger = request.app[GATEWAY].ledger
    try:
        rows = await ledger.deliveries(status, int(raw_limit))
        backlog = await ledger.delivery_backlog()
    except LedgerUnavailable:
        raise _unavailable() from None
    audit_action(request, client, "events.deliveries.read", status or "*", level=logging.DEBUG)
    oldest = backlog.oldest_pending_at
    return json_response({
        "deliveries": [_api(row) for row in rows],
        "pending": backlog.pending,
        "failing": backlog.failing,
        "oldest_pending_age_s": round(max(0.0, ledger.clock() - oldest), 3)
        if oldest is not None else None,
    })


@requires("operator")
async def redeliver(request: web.Request, client: ClientConfig) -> web.Response:
    event_id = request.match_info["event_id"]
    if not _EVENT_ID.match(event_id):
        raise ApiError("invalid_request", "event_id must be 1-128 printable characters")
    try:
        delivery = await request.app[GATEWAY].ledger.redeliver(event_id)
    except LedgerUnavailable:
        raise _unavailable() from None
    if delivery is None:
        raise ApiError("not_found", f"no event '{event_id}' is kept")
    hub = request.app.get(HUB)
    if hub is not None:
        hub.written()  # the worker looks now, not at its next poll
    audit_action(request, client, "event.redeliver", event_id)
    return json_response(_api(delivery), status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get(
        "/admin/events/deliveries", list_deliveries, name="admin.events.deliveries"
    )
    app.router.add_post(
        "/admin/events/{event_id}/redeliver", redeliver, name="admin.events.redeliver"
    )
