"""The Checkout API endpoints (``/v71/payments`` with idempotency, ``/v71/paymentMethods``),
their request checks and Adyen's error shape (`AdyenFailure`, `error_response`).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

from simulators.adyen.state import (
    STATE,
    AdyenState,
    SimPayment,
    StoredAnswer,
    new_psp_reference,
)
from simulators.adyen.webhooks import auto_complete, spawn
from simulators.faults import FAULTS

PAYMENTS_PATH = "/v71/payments"
PAYMENT_METHODS_PATH = "/v71/paymentMethods"
REDIRECT_BASE_URL = "https://checkoutshopper-test.adyen.example/redirect"

MAGIC_REFUSED = 5000002
# A hard decline: Adyen's refusal reason 12, "Not enough balance".
MAGIC_NOT_ENOUGH_BALANCE = 5000012
_REFUSALS = {
    MAGIC_REFUSED: ("Refused", "2"),
    MAGIC_NOT_ENOUGH_BALANCE: ("Not enough balance", "12"),
}
MAGIC_INTERNAL_ERROR = 5000500

PAYMENT_METHODS: list[dict[str, Any]] = [
    {"name": "Cards", "type": "scheme", "brands": ["visa", "mc", "amex"]},
    {"name": "PayPal", "type": "paypal"},
    {"name": "Bank Transfer (IBAN)", "type": "bankTransfer_IBAN"},
]

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class AdyenFailure(Exception):
    def __init__(self, status: int, code: str, message: str, error_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"status": status, "errorCode": code, "message": message,
                     "errorType": error_type}


def error_response(status: int, message: str) -> web.Response:
    return web.json_response(
        {"status": status, "errorCode": "905", "message": message, "errorType": "internal"},
        status=status,
    )


def validation(code: str, message: str, status: int = 422) -> AdyenFailure:
    return AdyenFailure(status, code, message, "validation")


async def json_body(request: web.Request, state: AdyenState) -> dict[str, Any]:
    if request.headers.get("X-API-Key") != state.api_key:
        raise AdyenFailure(401, "000", "HTTP Status Response - Unauthorized", "security")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise validation("000", "Unable to parse message.", status=400)
    if body.get("merchantAccount") != state.merchant_account:
        raise AdyenFailure(403, "901", "Invalid Merchant Account", "security")
    return body


def failure_response(failure: AdyenFailure) -> web.Response:
    return web.json_response(failure.body, status=failure.status)


def _validate_payment(body: dict[str, Any]) -> tuple[int, str, str, str]:
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise validation("100", "Required object 'amount' is not provided.")
    value = amount.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise validation("137", "Invalid amount specified")
    currency = amount.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise validation("138", "Unsupported currency specified")
    reference = body.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        raise validation("130", "Required field 'reference' is not provided.")
    method = body.get("paymentMethod")
    method_type = method.get("type") if isinstance(method, dict) else None
    if not isinstance(method_type, str) or not method_type:
        raise validation("14_006", "Required object 'paymentMethod' is not provided.")
    return_url = body.get("returnUrl")
    if not isinstance(return_url, str) or not return_url:
        raise validation("14_030", "Return URL is missing.")
    return value, currency, reference, method_type


def _payment_answer(payment: SimPayment) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "pspReference": payment.psp_reference,
        "merchantReference": payment.reference,
    }
    if payment.state == "refused":
        reason, code = _REFUSALS.get(payment.value, ("Refused", "2"))
        answer.update(resultCode="Refused", refusalReason=reason, refusalReasonCode=code)
    elif payment.method_type == "scheme":
        answer["resultCode"] = "RedirectShopper"
        answer["action"] = {
            "type": "redirect",
            "method": "GET",
            "url": f"{REDIRECT_BASE_URL}/{payment.psp_reference}",
            "paymentMethodType": "scheme",
        }
    else:
        answer["resultCode"] = "Pending"
    return answer


def replayed(state: AdyenState, key: str | None, body: Any) -> web.Response | None:
    """The stored answer for this Idempotency-Key (704 for another body), or None."""
    if key is None or key not in state.idempotency:
        return None
    stored = state.idempotency[key]
    if stored.body != body:
        reused = AdyenFailure(409, "704", "request already processed or in progress",
                              "validation")
        return failure_response(reused)
    return web.json_response(
        stored.answer, status=stored.status, headers={"Idempotency-Key": key}
    )


async def create_payment(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await json_body(request, state)
        value, currency, reference, method_type = _validate_payment(body)
    except AdyenFailure as failure:
        return failure_response(failure)

    key = request.headers.get("Idempotency-Key")
    echo = {"Idempotency-Key": key} if key else {}
    if key is not None and key in state.idempotency:
        stored = state.idempotency[key]
        if stored.body != body:
            reused = AdyenFailure(409, "704", "request already processed or in progress",
                                  "validation")
            return failure_response(reused)
        return web.json_response(stored.answer, status=stored.status, headers=echo)
    if key is not None and key in state.in_flight:
        busy = AdyenFailure(409, "704", "request already processed or in progress", "validation")
        return failure_response(busy)
    if key is not None:
        state.in_flight.add(key)
    try:
        hold_ms = request.app[FAULTS].hold_ms
        if hold_ms:
            await asyncio.sleep(hold_ms / 1000)
        return _create(request, state, body, key, echo, value, currency, reference, method_type)
    finally:
        if key is not None:
            state.in_flight.discard(key)


def _create(
    request: web.Request,
    state: AdyenState,
    body: Any,
    key: str | None,
    echo: dict[str, str],
    value: int,
    currency: str,
    reference: str,
    method_type: str,
) -> web.Response:
    psp = new_psp_reference()
    payment = SimPayment(
        psp_reference=psp,
        reference=reference,
        merchant_account=state.merchant_account,
        value=value,
        currency=currency,
        method_type=method_type,
        state="refused" if value in _REFUSALS else "pending",
    )
    state.payments[psp] = payment
    answer = _payment_answer(payment)
    if key is not None:
        state.idempotency[key] = StoredAnswer(body=body, status=200, answer=answer)
    if payment.state == "pending" and state.auto_complete_s is not None:
        spawn(state, auto_complete(request.app, psp, state.auto_complete_s))
    headers = {**echo, "pspReference": psp}
    if value == MAGIC_INTERNAL_ERROR:
        # Recorded but the answer is lost: the same key later gets the stored answer.
        lost = {"status": 500, "errorCode": "000",
                "message": "HTTP Status Response - Internal Server Error",
                "errorType": "internal", "pspReference": psp}
        return web.json_response(lost, status=500, headers=headers)
    return web.json_response(answer, headers=headers)


async def payment_methods(request: web.Request) -> web.Response:
    try:
        await json_body(request, request.app[STATE])
    except AdyenFailure as failure:
        return failure_response(failure)
    return web.json_response({"paymentMethods": PAYMENT_METHODS})
