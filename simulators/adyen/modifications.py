"""Refunds: `POST /v71/payments/{pspReference}/refunds` and their REFUND notifications.

A refund of an authorised payment, at most what is left of it, answers 201 `received` with
the refund's own pspReference (Idempotency-Key as for payments). The outcome is sent by
`POST /_sim/refunds/{pspReference}/complete` with `{"outcome": "refunded" | "failed"}`: a
REFUND notification with success "true" or "false", naming the payment in
originalReference and the refund's `reference` in merchantReference.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from simulators.adyen.api import (
    AdyenFailure,
    failure_response,
    json_body,
    replayed,
    validation,
)
from simulators.adyen.state import STATE, SimRefund, StoredAnswer, new_psp_reference
from simulators.adyen.webhooks import deliver_item, notification_item

REFUND_OUTCOMES = ("refunded", "failed")


async def refund_payment(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await json_body(request, state)
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise validation("100", "Required object 'amount' is not provided.")
        value = amount.get("value")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise validation("137", "Invalid amount specified")
        reference = body.get("reference")
        payment = state.payments.get(request.match_info["psp"])
        if payment is None or payment.state != "authorised":
            raise validation("167", "Original pspReference required for this operation")
        if amount.get("currency") != payment.currency:
            raise validation("138", "Unsupported currency specified")
    except AdyenFailure as failure:
        return failure_response(failure)
    key = request.headers.get("Idempotency-Key")
    again = replayed(state, key, body)
    if again is not None:
        return again
    if payment.refunded + value > payment.value:
        return failure_response(validation("137", "Invalid amount specified"))
    refund = SimRefund(
        psp_reference=new_psp_reference(),
        payment=payment,
        reference=reference if isinstance(reference, str) else "",
        value=value,
    )
    payment.refunded += value
    state.refunds[refund.psp_reference] = refund
    answer: dict[str, Any] = {
        "merchantAccount": state.merchant_account,
        "paymentPspReference": payment.psp_reference,
        "pspReference": refund.psp_reference,
        "reference": refund.reference,
        "status": "received",
        "amount": {"value": value, "currency": payment.currency},
    }
    if key is not None:
        state.idempotency[key] = StoredAnswer(body=body, status=201, answer=answer)
    return web.json_response(answer, status=201, headers={"Idempotency-Key": key} if key else {})


async def complete_refund(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        data = await request.json()
    except ValueError:
        data = None
    outcome = data.get("outcome") if isinstance(data, dict) else None
    if outcome not in REFUND_OUTCOMES:
        return web.json_response(
            {"error": f"outcome must be one of {', '.join(REFUND_OUTCOMES)}"}, status=400
        )
    refund = state.refunds.get(request.match_info["psp"])
    if refund is None:
        return web.json_response({"error": "no such refund"}, status=404)
    if refund.state != "received":
        return web.json_response({"error": f"the refund is {refund.state}"}, status=409)
    refund.state = outcome
    success = outcome == "refunded"
    if not success:
        refund.payment.refunded -= refund.value
    item = notification_item(
        state, refund.payment, "REFUND", success,
        psp_reference=refund.psp_reference, value=refund.value, reference=refund.reference,
    )
    delivery = await deliver_item(state, item) if state.webhook_url else None
    return web.json_response(
        {"refund": refund.to_dict(), "notification": item, "delivery": delivery}
    )
