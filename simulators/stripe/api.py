"""The ``/v1/payment_intents`` endpoints (create with Stripe's idempotency, get, list) and
the 404 for any other ``/v1`` path.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from simulators.faults import FAULTS
from simulators.stripe.intents import decline, new_intent
from simulators.stripe.state import STATE, SavedResponse, StripeState
from simulators.stripe.webhooks import schedule_auto_complete
from simulators.stripe.wire import (
    StripeApiError,
    authenticate,
    dumps,
    json_response,
    parse_form,
    rand,
    request_version,
)

DECLINE_AMOUNT = 4000002  # generic_decline: a soft decline
HARD_DECLINE_AMOUNT = 4000051  # insufficient_funds: a hard decline
API_ERROR_AMOUNT = 4000500

_FORM = "application/x-www-form-urlencoded"


def _headers(request_id: str, version: str, key: str | None) -> dict[str, str]:
    headers = {"Request-Id": request_id, "Stripe-Version": version}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def replay(
    state: StripeState, key: str | None, endpoint: str, fingerprint: tuple[tuple[str, str], ...]
) -> web.Response | None:
    """The saved answer for this Idempotency-Key, as Stripe replays it; None when the key is
    new (or absent). Raises Stripe's errors for a bad key, a key reused with other
    parameters, and a key whose first request is still running."""
    if key is None:
        return None
    if not key or len(key) > 255:
        raise StripeApiError(
            400, "Idempotency keys must be between 1 and 255 characters long.",
            param="idempotency_key",
        )
    saved = state.idempotency.get(key)
    if saved is not None:
        if saved.endpoint != endpoint or saved.params != fingerprint:
            raise StripeApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{key}' if you "
                "meant to execute a different request.",
                error_type="idempotency_error",
            )
        headers = _headers(f"req_{rand(14)}", saved.version, key)
        headers["Idempotent-Replayed"] = "true"
        headers["Original-Request"] = saved.request_id
        return web.Response(
            status=saved.status, body=saved.body, content_type="application/json",
            headers=headers,
        )
    if key in state.in_flight:
        raise StripeApiError(
            409,
            "There is currently another in-progress request using this Idempotent Key "
            "(that probably means you submitted twice, and the other request is still "
            f"going through): {key}. Please try again later.",
            error_type="idempotency_error",
        )
    return None


def headers_for(request_id: str, version: str, key: str | None) -> dict[str, str]:
    return _headers(request_id, version, key)


async def create_intent(request: web.Request) -> web.Response:
    state = request.app[STATE]
    authenticate(request, state)
    version = request_version(request, state)
    body = await request.read()
    if body and request.content_type != _FORM:
        raise StripeApiError(
            400,
            "Invalid request (check that your POST content type is "
            "application/x-www-form-urlencoded). If you have any questions, we can help at "
            "https://support.stripe.com/.",
        )
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise StripeApiError(400, "Invalid request: the body is not UTF-8.") from None
    key = request.headers.get("Idempotency-Key")
    endpoint = "POST /v1/payment_intents"
    fingerprint = tuple(sorted(pairs))
    again = replay(state, key, endpoint, fingerprint)
    if again is not None:
        return again
    if key is not None:
        state.in_flight.add(key)
    try:
        hold_ms = request.app[FAULTS].hold_ms
        if hold_ms:
            await asyncio.sleep(hold_ms / 1000)
        return _create(request, state, pairs, version, key, endpoint, fingerprint)
    finally:
        if key is not None:
            state.in_flight.discard(key)


def _create(
    request: web.Request,
    state: StripeState,
    pairs: list[tuple[str, str]],
    version: str,
    key: str | None,
    endpoint: str,
    fingerprint: tuple[tuple[str, str], ...],
) -> web.Response:
    intent = new_intent(parse_form(pairs), version)
    state.intents[intent["id"]] = intent
    status: int
    payload: Any
    if intent["amount"] in (DECLINE_AMOUNT, HARD_DECLINE_AMOUNT):
        reason = "generic_decline" if intent["amount"] == DECLINE_AMOUNT else "insufficient_funds"
        error = decline(intent, reason)
        status, payload = 402, {"error": {**error, "payment_intent": copy.deepcopy(intent)}}
    elif intent["amount"] == API_ERROR_AMOUNT:
        message = "An unknown error occurred while processing your request."
        status, payload = 500, {"error": {"type": "api_error", "message": message}}
        schedule_auto_complete(request.app, intent["id"])
    else:
        status, payload = 200, intent
        schedule_auto_complete(request.app, intent["id"])

    request_id = f"req_{rand(14)}"
    encoded = dumps(payload)
    if key is not None:
        state.idempotency[key] = SavedResponse(
            endpoint, fingerprint, status, encoded, request_id, version
        )
    return web.Response(
        status=status, body=encoded, content_type="application/json",
        headers=_headers(request_id, version, key),
    )


async def get_intent(request: web.Request) -> web.Response:
    state = request.app[STATE]
    authenticate(request, state)
    version = request_version(request, state)
    intent_id = request.match_info["id"]
    intent = state.intents.get(intent_id)
    if intent is None:
        raise StripeApiError(
            404, f"No such payment_intent: '{intent_id}'", code="resource_missing",
            param="intent",
        )
    return json_response(200, intent, _headers(f"req_{rand(14)}", version, None))


async def list_intents(request: web.Request) -> web.Response:
    state = request.app[STATE]
    authenticate(request, state)
    version = request_version(request, state)
    unknown = sorted(set(request.query) - {"limit"})
    if unknown:
        raise StripeApiError(
            400, f"Received unknown parameter: {unknown[0]}", code="parameter_unknown",
            param=unknown[0],
        )
    raw = request.query.get("limit", "10")
    if not raw.isascii() or not raw.isdigit():
        raise StripeApiError(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param="limit"
        )
    limit = int(raw)
    if not 1 <= limit <= 100:
        raise StripeApiError(
            400, "This value must be between 1 and 100.", code="parameter_invalid_integer",
            param="limit",
        )
    newest_first = list(reversed(state.intents.values()))
    payload = {
        "object": "list",
        "data": newest_first[:limit],
        "has_more": len(newest_first) > limit,
        "url": "/v1/payment_intents",
    }
    return json_response(200, payload, _headers(f"req_{rand(14)}", version, None))


async def unknown_route(request: web.Request) -> web.Response:
    raise StripeApiError(
        404, f"Unrecognized request URL ({request.method}: {request.path}).",
    )
