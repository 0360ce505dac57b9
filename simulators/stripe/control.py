"""The ``/_sim`` control endpoints: complete an intent, resend an event, list events."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from simulators.stripe.intents import OUTCOMES, TERMINAL, apply_outcome
from simulators.stripe.state import STATE
from simulators.stripe.webhooks import deliver, new_event
from simulators.stripe.wire import json_response


def _control_error(status: int, message: str, code: str | None = None) -> web.Response:
    error: dict[str, Any] = {"type": "invalid_request_error", "message": message}
    if code is not None:
        error["code"] = code
    return json_response(status, {"error": error})


async def complete_intent(request: web.Request) -> web.Response:
    state = request.app[STATE]
    intent = state.intents.get(request.match_info["id"])
    if intent is None:
        return _control_error(404, f"No such payment_intent: '{request.match_info['id']}'",
                              "resource_missing")
    try:
        data = await request.json()
    except ValueError:
        return _control_error(400, "body must be a JSON object")
    if not isinstance(data, dict) or data.get("outcome") not in OUTCOMES:
        return _control_error(400, f"outcome must be one of {', '.join(OUTCOMES)}")
    decline_code = data.get("decline_code", "generic_decline")
    if not isinstance(decline_code, str) or not decline_code:
        return _control_error(400, "decline_code must be a non-empty string")
    if intent["status"] in TERMINAL:
        return _control_error(
            400,
            f"This PaymentIntent's status is {intent['status']}; it cannot change.",
            "payment_intent_unexpected_state",
        )
    event_type = apply_outcome(intent, data["outcome"], decline_code)
    event = new_event(state, event_type, intent)
    delivery = await deliver(state, event)
    return json_response(200, {"payment_intent": intent, "event": event, "delivery": delivery})


async def resend_event(request: web.Request) -> web.Response:
    state = request.app[STATE]
    event = state.events.get(request.match_info["id"])
    if event is None:
        return _control_error(404, f"No such event: '{request.match_info['id']}'",
                              "resource_missing")
    if state.webhook_url is None:
        return _control_error(400, "no webhook_url configured")
    delivery = await deliver(state, event)
    return json_response(200, {"event": event, "delivery": delivery})


async def list_events(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = [
        {"event": event, "deliveries": state.deliveries[event_id]}
        for event_id, event in state.events.items()
    ]
    return json_response(200, {"data": data})
