"""`POST /v1/refunds`: refunds of a succeeded PaymentIntent, and their events.

Parameters: ``payment_intent`` (required), ``amount`` (default: what is left),
``reason`` (duplicate | fraudulent | requested_by_customer), ``metadata[...]``. Refunds of a
card intent succeed at once; those of a bank debit (``sepa_debit``) are ``pending`` until
`POST /_sim/refunds/{id}/complete` with `{"outcome": "succeeded" | "failed" | "canceled"}`.
Each refund sends ``refund.created``; a later outcome ``refund.updated`` (or
``refund.failed``); a charge refunded in full also ``charge.refunded``. Errors as Stripe's:
an intent that has not succeeded is ``charge_not_refundable``, a refunded one
``charge_already_refunded``, more than is left ``amount_too_large``. Idempotency-Key as for
intents (`simulators.stripe.api.replay`).
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from simulators.stripe.api import headers_for, replay
from simulators.stripe.params import parse_metadata
from simulators.stripe.state import STATE, SavedResponse, StripeState
from simulators.stripe.webhooks import deliver, new_event
from simulators.stripe.wire import (
    StripeApiError,
    authenticate,
    dumps,
    json_response,
    parse_form,
    rand,
    request_version,
)

REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
REFUND_OUTCOMES = ("succeeded", "failed", "canceled")
_KNOWN = frozenset({"payment_intent", "amount", "reason", "metadata"})


def refunded_total(state: StripeState, intent_id: str) -> int:
    return sum(
        r["amount"]
        for r in state.refunds.values()
        if r["payment_intent"] == intent_id and r["status"] in ("pending", "succeeded")
    )


async def create_refund(request: web.Request) -> web.Response:
    state = request.app[STATE]
    authenticate(request, state)
    version = request_version(request, state)
    pairs = parse_qsl((await request.read()).decode("utf-8"), keep_blank_values=True)
    key = request.headers.get("Idempotency-Key")
    endpoint = "POST /v1/refunds"
    fingerprint = tuple(sorted(pairs))
    again = replay(state, key, endpoint, fingerprint)
    if again is not None:
        return again
    refund = _new_refund(state, parse_form(pairs))
    state.refunds[refund["id"]] = refund
    request_id = f"req_{rand(14)}"
    encoded = dumps(refund)
    if key is not None:
        state.idempotency[key] = SavedResponse(
            endpoint, fingerprint, 200, encoded, request_id, version
        )
    await deliver(state, new_event(state, "refund.created", refund))
    if refund["status"] == "succeeded":
        await _charge_event(state, refund["payment_intent"])
    return web.Response(
        status=200, body=encoded, content_type="application/json",
        headers=headers_for(request_id, version, key),
    )


def _new_refund(state: StripeState, params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - _KNOWN)
    if unknown:
        raise StripeApiError(
            400, f"Received unknown parameter: {unknown[0]}", code="parameter_unknown",
            param=unknown[0],
        )
    intent_id = params.get("payment_intent")
    intent = state.intents.get(intent_id) if isinstance(intent_id, str) else None
    if intent is None:
        raise StripeApiError(
            404, f"No such payment_intent: '{intent_id}'", code="resource_missing",
            param="payment_intent",
        )
    if intent["status"] != "succeeded":
        raise StripeApiError(
            400, f"This PaymentIntent ({intent['id']}) does not have a successful charge to "
            "refund.", code="charge_not_refundable",
        )
    left = intent["amount"] - refunded_total(state, intent["id"])
    if left <= 0:
        raise StripeApiError(
            400, f"Charge {intent['latest_charge']} has already been refunded.",
            code="charge_already_refunded",
        )
    raw = params.get("amount", str(left))
    if not isinstance(raw, str) or not re.fullmatch(r"\d+", raw) or int(raw) < 1:
        raise StripeApiError(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param="amount"
        )
    amount = int(raw)
    if amount > left:
        raise StripeApiError(
            400, f"Refund amount ({amount}) is greater than unrefunded amount on charge "
            f"({left})", code="amount_too_large", param="amount",
        )
    reason = params.get("reason")
    if reason is not None and reason not in REASONS:
        raise StripeApiError(400, f"Invalid reason: {reason}", param="reason")
    bank_debit = "sepa_debit" in intent["payment_method_types"]
    return {
        "id": f"re_{rand(24)}",
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": intent["latest_charge"],
        "created": int(time.time()),
        "currency": intent["currency"],
        "failure_reason": None,
        "metadata": parse_metadata(params),
        "payment_intent": intent["id"],
        "reason": reason,
        "receipt_number": None,
        "status": "pending" if bank_debit else "succeeded",
    }


async def _charge_event(state: StripeState, intent_id: str) -> None:
    intent = state.intents[intent_id]
    refunded = sum(
        r["amount"] for r in state.refunds.values()
        if r["payment_intent"] == intent_id and r["status"] == "succeeded"
    )
    charge = {
        "id": intent["latest_charge"],
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": refunded,
        "currency": intent["currency"],
        "payment_intent": intent_id,
        "refunded": refunded >= intent["amount"],
        "status": "succeeded",
    }
    await deliver(state, new_event(state, "charge.refunded", charge))


async def complete_refund(request: web.Request) -> web.Response:
    state = request.app[STATE]
    refund = state.refunds.get(request.match_info["id"])
    if refund is None:
        return json_response(404, {"error": {"type": "invalid_request_error",
                                             "message": "No such refund"}})
    try:
        data = await request.json()
    except ValueError:
        data = None
    outcome = data.get("outcome") if isinstance(data, dict) else None
    if outcome not in REFUND_OUTCOMES:
        return json_response(400, {"error": {"type": "invalid_request_error",
                                             "message": f"outcome must be one of "
                                             f"{', '.join(REFUND_OUTCOMES)}"}})
    refund["status"] = outcome
    if outcome == "failed":
        refund["failure_reason"] = "lost_or_stolen_card"
    event = new_event(state, "refund.failed" if outcome == "failed" else "refund.updated", refund)
    delivery = await deliver(state, event)
    if outcome == "succeeded":
        await _charge_event(state, refund["payment_intent"])
    return json_response(200, {"refund": refund, "event": event, "delivery": delivery})
