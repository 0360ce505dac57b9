"""An Adyen Checkout API v71 on a local port: payments, payment methods and webhooks.

Endpoints (JSON, header `X-API-Key` required, else 401 with errorCode "000"):
- `POST /v71/payments`: validates like Adyen (errors `{status, errorCode, message,
  errorType, pspReference?}`): unknown or missing merchantAccount -> 403 "901"; missing
  amount -> 422 "100"; amount value not a positive integer -> 422 "137"; currency not three
  upper-case letters -> 422 "138"; no reference -> 422 "130"; no paymentMethod.type -> 422
  "14_006"; no returnUrl -> 422 "14_030"; a body that is not a JSON object -> 400 "000".
  paymentMethod.type ``scheme`` answers ``RedirectShopper`` with a redirect action; every
  other type answers ``Pending``.
- `POST /v71/paymentMethods`: `{"paymentMethods": [...]}` for the merchant account.

Idempotency-Key: a processed request is stored under its key; the same key with the same
JSON body replays the stored answer (with the `Idempotency-Key` header echoed, as Adyen
does) and records nothing new. The same key with a different body answers HTTP 409
errorCode "704" "request already processed or in progress", errorType "validation": the
answer Adyen gives for a key it already holds. Rejected requests (401/403/4xx validation)
are not stored, so their key may be used again.

Magic amounts (`amount.value`):
- 5000002: ``Refused``, refusalReason "Refused", refusalReasonCode "2" (a decline).
- 5000500: the payment is recorded, then the answer is HTTP 500 ("000", "internal"): the
  caller cannot know whether money moved. A retry with the same Idempotency-Key gets the
  payment's real answer, as a lost answer would on Adyen.

Control endpoints (besides `simulators.faults`' `/_sim/faults` and `/_sim/stats`):
- `GET /_sim/payments`: `{"payments": [...]}`, every recorded payment, oldest first.
- `POST /_sim/payments/{pspReference}/complete` with `{"outcome": "authorised" | "refused" |
  "cancelled" | "refund"}`: moves the payment on (409 if it cannot move that way, 404 if
  unknown) and, when `webhook_url` is set, POSTs a standard notification signed with
  `hmac_key` there. The answer reports the notification and whether the receiver answered
  the literal `[accepted]`. Cancellation and refund are modifications with their own
  pspReference and the payment's in `originalReference`, as on Adyen.
- `GET /_sim/webhooks`: every delivery attempt, oldest first.
Injected faults (`error`, `rate_limited`) answer in Adyen's error shape with errorCode "905"
and errorType "internal".

Settings of `create_app`: `api_key` (required), `merchant_account` (default "DemoCasino"),
`webhook_url`, `hmac_key` (hex, as Adyen's Customer Area shows it; without it notifications
go out unsigned), `auto_complete_s` (authorise every new pending payment after that many
seconds and send its webhook; for demos).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from simulators import faults

DEFAULT_PORT = 9104

PAYMENTS_PATH = "/v71/payments"
PAYMENT_METHODS_PATH = "/v71/paymentMethods"
REDIRECT_BASE_URL = "https://checkoutshopper-test.adyen.example/redirect"

MAGIC_REFUSED = 5000002
MAGIC_INTERNAL_ERROR = 5000500

PAYMENT_METHODS: list[dict[str, Any]] = [
    {"name": "Cards", "type": "scheme", "brands": ["visa", "mc", "amex"]},
    {"name": "PayPal", "type": "paypal"},
    {"name": "Bank Transfer (IBAN)", "type": "bankTransfer_IBAN"},
]

_PSP_ALPHABET = string.ascii_uppercase + string.digits
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# outcome -> (states it may leave, new state, eventCode, success)
OUTCOMES: dict[str, tuple[frozenset[str], str, str, bool]] = {
    "authorised": (frozenset({"pending"}), "authorised", "AUTHORISATION", True),
    "refused": (frozenset({"pending"}), "refused", "AUTHORISATION", False),
    "cancelled": (frozenset({"pending", "authorised"}), "cancelled", "CANCELLATION", True),
    "refund": (frozenset({"authorised"}), "refunded", "REFUND", True),
}
MODIFICATIONS = frozenset({"CANCELLATION", "REFUND"})


@dataclass
class SimPayment:
    psp_reference: str
    reference: str
    merchant_account: str
    value: int
    currency: str
    method_type: str
    state: str  # pending | authorised | refused | cancelled | refunded

    def to_dict(self) -> dict[str, Any]:
        return {
            "pspReference": self.psp_reference,
            "merchantReference": self.reference,
            "merchantAccount": self.merchant_account,
            "amount": {"value": self.value, "currency": self.currency},
            "paymentMethodType": self.method_type,
            "state": self.state,
        }


@dataclass
class StoredAnswer:
    body: Any  # the request's decoded JSON, compared on a replay
    status: int
    answer: dict[str, Any]


@dataclass
class AdyenState:
    api_key: str
    merchant_account: str
    webhook_url: str | None
    hmac_key: bytes | None
    auto_complete_s: float | None
    payments: dict[str, SimPayment] = field(default_factory=dict)
    idempotency: dict[str, StoredAnswer] = field(default_factory=dict)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None


STATE = web.AppKey("adyen_state", AdyenState)


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


def _validation(code: str, message: str, status: int = 422) -> AdyenFailure:
    return AdyenFailure(status, code, message, "validation")


def new_psp_reference() -> str:
    return "".join(secrets.choice(_PSP_ALPHABET) for _ in range(16))


def sign_notification(hmac_key: bytes, item: dict[str, Any]) -> str:
    """Adyen's HMAC of a NotificationRequestItem, from Adyen's webhook documentation."""
    amount = item["amount"]
    signed = [
        item["pspReference"],
        item.get("originalReference", ""),
        item["merchantAccountCode"],
        item["merchantReference"],
        str(amount["value"]),
        amount["currency"],
        item["eventCode"],
        item["success"],
    ]
    digest = hmac.new(hmac_key, ":".join(signed).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


# ---- handlers ---------------------------------------------------------------------------------


async def _json_body(request: web.Request, state: AdyenState) -> dict[str, Any]:
    if request.headers.get("X-API-Key") != state.api_key:
        raise AdyenFailure(401, "000", "HTTP Status Response - Unauthorized", "security")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise _validation("000", "Unable to parse message.", status=400)
    if body.get("merchantAccount") != state.merchant_account:
        raise AdyenFailure(403, "901", "Invalid Merchant Account", "security")
    return body


def _failure_response(failure: AdyenFailure) -> web.Response:
    return web.json_response(failure.body, status=failure.status)


def _validate_payment(body: dict[str, Any]) -> tuple[int, str, str, str]:
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise _validation("100", "Required object 'amount' is not provided.")
    value = amount.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _validation("137", "Invalid amount specified")
    currency = amount.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise _validation("138", "Unsupported currency specified")
    reference = body.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        raise _validation("130", "Required field 'reference' is not provided.")
    method = body.get("paymentMethod")
    method_type = method.get("type") if isinstance(method, dict) else None
    if not isinstance(method_type, str) or not method_type:
        raise _validation("14_006", "Required object 'paymentMethod' is not provided.")
    return_url = body.get("returnUrl")
    if not isinstance(return_url, str) or not return_url:
        raise _validation("14_030", "Return URL is missing.")
    return value, currency, reference, method_type


def _payment_answer(payment: SimPayment) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "pspReference": payment.psp_reference,
        "merchantReference": payment.reference,
    }
    if payment.state == "refused":
        answer.update(resultCode="Refused", refusalReason="Refused", refusalReasonCode="2")
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


async def create_payment(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await _json_body(request, state)
        value, currency, reference, method_type = _validate_payment(body)
    except AdyenFailure as failure:
        return _failure_response(failure)

    key = request.headers.get("Idempotency-Key")
    echo = {"Idempotency-Key": key} if key else {}
    if key is not None and key in state.idempotency:
        stored = state.idempotency[key]
        if stored.body != body:
            reused = AdyenFailure(409, "704", "request already processed or in progress",
                                  "validation")
            return _failure_response(reused)
        return web.json_response(stored.answer, status=stored.status, headers=echo)

    psp = new_psp_reference()
    payment = SimPayment(
        psp_reference=psp,
        reference=reference,
        merchant_account=state.merchant_account,
        value=value,
        currency=currency,
        method_type=method_type,
        state="refused" if value == MAGIC_REFUSED else "pending",
    )
    state.payments[psp] = payment
    answer = _payment_answer(payment)
    if key is not None:
        state.idempotency[key] = StoredAnswer(body=body, status=200, answer=answer)
    if payment.state == "pending" and state.auto_complete_s is not None:
        _spawn(state, _auto_complete(request.app, psp, state.auto_complete_s))
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
        await _json_body(request, request.app[STATE])
    except AdyenFailure as failure:
        return _failure_response(failure)
    return web.json_response({"paymentMethods": PAYMENT_METHODS})


# ---- control ----------------------------------------------------------------------------------


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


async def complete(app: web.Application, psp: str, outcome: str) -> dict[str, Any]:
    """Move a payment on and send its notification; KeyError if unknown, ValueError if stuck."""
    state = app[STATE]
    payment = state.payments[psp]
    allowed, new_state, event_code, success = OUTCOMES[outcome]
    if payment.state not in allowed:
        raise ValueError(f"payment {psp} is {payment.state}; it cannot become {new_state}")
    payment.state = new_state
    item = _notification_item(state, payment, event_code, success)
    delivery = await _deliver(state, item) if state.webhook_url else None
    return {"payment": payment.to_dict(), "notification": item, "delivery": delivery}


def _notification_item(
    state: AdyenState, payment: SimPayment, event_code: str, success: bool
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "additionalData": {},
        "amount": {"value": payment.value, "currency": payment.currency},
        "eventCode": event_code,
        "eventDate": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "merchantAccountCode": payment.merchant_account,
        "merchantReference": payment.reference,
        "paymentMethod": "visa" if payment.method_type == "scheme" else payment.method_type,
        "pspReference": payment.psp_reference,
        "reason": "" if success else "Refused",
        "success": "true" if success else "false",
    }
    if event_code in MODIFICATIONS:
        # A modification is its own transaction that points at the payment it modifies.
        item["originalReference"] = payment.psp_reference
        item["pspReference"] = new_psp_reference()
    if state.hmac_key is not None:
        item["additionalData"]["hmacSignature"] = sign_notification(state.hmac_key, item)
    return item


async def _deliver(state: AdyenState, item: dict[str, Any]) -> dict[str, Any]:
    assert state.webhook_url is not None and state.session is not None
    notification = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
    record: dict[str, Any] = {"notification": notification, "status": None, "body": None,
                              "accepted": False, "error": None}
    try:
        async with state.session.post(state.webhook_url, json=notification) as response:
            text = await response.text()
            record.update(status=response.status, body=text[:1000])
            # Adyen counts a delivery as done only on the literal "[accepted]".
            record["accepted"] = response.status == 200 and text.strip() == "[accepted]"
    except (aiohttp.ClientError, TimeoutError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    state.webhooks.append(record)
    return {key: record[key] for key in ("status", "body", "accepted", "error")}


async def _auto_complete(app: web.Application, psp: str, delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    if app[STATE].payments[psp].state == "pending":
        await complete(app, psp, "authorised")


def _spawn(state: AdyenState, coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


# ---- the app ----------------------------------------------------------------------------------


def create_app(
    *,
    api_key: str,
    merchant_account: str = "DemoCasino",
    webhook_url: str | None = None,
    hmac_key: str | None = None,
    auto_complete_s: float | None = None,
) -> web.Application:
    if not api_key:
        raise ValueError("api_key is required")
    key_bytes = None
    if hmac_key:
        try:
            key_bytes = bytes.fromhex(hmac_key)
        except ValueError:
            raise ValueError("hmac_key must be hex-encoded") from None
    if auto_complete_s is not None and auto_complete_s < 0:
        raise ValueError("auto_complete_s must not be negative")

    app = web.Application()
    app[STATE] = AdyenState(
        api_key=api_key,
        merchant_account=merchant_account,
        webhook_url=webhook_url,
        hmac_key=key_bytes,
        auto_complete_s=auto_complete_s,
    )
    faults.install(app, error_response)
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post(PAYMENTS_PATH, create_payment)
    app.router.add_post(PAYMENT_METHODS_PATH, payment_methods)
    app.router.add_get("/_sim/payments", list_payments)
    app.router.add_post("/_sim/payments/{psp}/complete", complete_payment)
    app.router.add_get("/_sim/webhooks", list_webhooks)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    yield
    tasks = list(state.tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await state.session.close()
    state.session = None

