"""`POST /api/1`: Trustly's JSON-RPC 1.1 API with Deposit, Withdraw, Refund and Balance.

Every request must carry `params.Signature` (the merchant's RSA signature of method + UUID +
Data), `params.UUID` and `params.Data` with `Username` and `Password`. Answers come with
HTTP 200, signed with Trustly's key: `{"result": {"signature", "uuid", "method", "data"},
"version": "1.1"}`, or `{"error": {"name": "JSONRPCError", "code", "message", "error":
{"signature", "uuid", "method", "data": {"code", "message"}}}, "version": "1.1"}`. A body
that is not a JSON-RPC request gets an unsigned error with uuid and method null.
"""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from simulators.faults import FAULTS
from simulators.trustly.notifications import schedule_auto_complete
from simulators.trustly.signing import sign, signature_ok
from simulators.trustly.state import STATE, Order, SimRefund, TrustlyState

CURRENCIES = frozenset({"EUR", "SEK", "NOK", "DKK", "GBP", "PLN", "CZK"})
_AMOUNT = re.compile(r"^[0-9]{1,10}\.[0-9]{2}$")

ERRORS = {
    615: "ERROR_INVALID_AMOUNT",
    616: "ERROR_INVALID_CREDENTIALS",
    620: "ERROR_UNKNOWN",
    622: "ERROR_INVALID_CURRENCY_CODE",
    623: "ERROR_INVALID_PARAMETERS",
    636: "ERROR_UNABLE_TO_VERIFY_RSA_SIGNATURE",
    637: "ERROR_DUPLICATE_MESSAGE_ID",
}


class TrustlyError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(ERRORS[code])
        self.code = code


def _answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json"
    )


def error_response(status: int, message: str) -> web.Response:
    """An unsigned JSON-RPC error (what an injected fault answers, with its HTTP status)."""
    return _answer(_rpc_error(None, 620, message), status)


def _rpc_error(signed: dict[str, Any] | None, code: int, message: str) -> dict[str, Any]:
    inner = signed or {
        "signature": None, "uuid": None, "method": None,
        "data": {"code": code, "message": message},
    }
    return {
        "version": "1.1",
        "error": {"name": "JSONRPCError", "code": code, "message": message, "error": inner},
    }


def _signed(state: TrustlyState, method: str, uuid: str, data: Any) -> dict[str, Any]:
    return {"signature": sign(state.trustly_key, method, uuid, data), "uuid": uuid,
            "method": method, "data": data}


async def rpc(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        payload = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        payload = None
    params = payload.get("params") if isinstance(payload, dict) else None
    method = payload.get("method") if isinstance(payload, dict) else None
    if not isinstance(params, dict) or not isinstance(method, str):
        return _answer(_rpc_error(None, 623, ERRORS[623]))
    uuid, data = params.get("UUID"), params.get("Data")
    if not isinstance(uuid, str) or not isinstance(data, dict):
        return _answer(_rpc_error(None, 623, ERRORS[623]))
    try:
        if not signature_ok(state.merchant_key, method, uuid, data, params.get("Signature")):
            raise TrustlyError(636)
        if data.get("Username") != state.username or data.get("Password") != state.password:
            raise TrustlyError(616)
        handler = HANDLERS.get(method)
        if handler is None:
            raise TrustlyError(623)
        result = await handler(request, state, data)
    except TrustlyError as exc:
        message = ERRORS[exc.code]
        inner = _signed(state, method, uuid, {"code": exc.code, "message": message})
        return _answer(_rpc_error(inner, exc.code, message))
    return _answer({"result": _signed(state, method, uuid, result), "version": "1.1"})


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise TrustlyError(623)
    return value


def _amount(value: Any) -> Decimal:
    if not isinstance(value, str) or not _AMOUNT.match(value):
        raise TrustlyError(615)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise TrustlyError(615) from None
    if amount <= 0:
        raise TrustlyError(615)
    return amount


def _currency(value: Any) -> str:
    if value not in CURRENCIES:
        raise TrustlyError(622)
    return str(value)


async def _new_order(
    request: web.Request, state: TrustlyState, data: dict[str, Any], kind: str
) -> dict[str, Any]:
    message_id = _text(data, "MessageID")
    notification_url = _text(data, "NotificationURL")
    end_user = _text(data, "EndUserID")
    attributes = data.get("Attributes")
    if not isinstance(attributes, dict):
        raise TrustlyError(623)
    if kind == "Deposit":
        amount = _amount(attributes.get("Amount"))
        currency = _currency(attributes.get("Currency"))
    else:
        currency = _currency(data.get("Currency"))
        amount = _amount(attributes.get("SuggestedMaxAmount"))
    if message_id in state.message_ids:
        raise TrustlyError(637)
    # Taken at once: a second request with this MessageID, even while this one is held, is
    # refused as a duplicate.
    state.message_ids.add(message_id)
    hold_ms = request.app[FAULTS].hold_ms
    if hold_ms:
        await asyncio.sleep(hold_ms / 1000)
    order = Order(
        order_id=state.new_order_id(),
        kind=kind,
        message_id=message_id,
        end_user_id=end_user,
        notification_url=notification_url,
        currency=currency,
        amount=amount,
    )
    state.orders[order.order_id] = order
    schedule_auto_complete(request.app, order.order_id)
    return {
        "orderid": order.order_id,
        "url": f"{state.checkout_url}?OrderID={order.order_id}&Method={kind}",
    }


async def deposit(request: web.Request, state: TrustlyState, data: dict[str, Any]) -> Any:
    return await _new_order(request, state, data, "Deposit")


async def withdraw(request: web.Request, state: TrustlyState, data: dict[str, Any]) -> Any:
    return await _new_order(request, state, data, "Withdraw")


async def refund(request: web.Request, state: TrustlyState, data: dict[str, Any]) -> Any:
    order = state.orders.get(_text(data, "OrderID"))
    if order is None or order.kind != "Deposit" or order.state != "credited":
        raise TrustlyError(623)
    amount = _amount(data.get("Amount"))
    if _currency(data.get("Currency")) != order.currency:
        raise TrustlyError(622)
    taken = sum((r.amount for r in order.refunds if r.state != "failed"), Decimal(0))
    if taken + amount > order.amount:
        raise TrustlyError(615)
    attributes = data.get("Attributes")
    reference = attributes.get("ExternalReference") if isinstance(attributes, dict) else None
    order.refunds.append(SimRefund(amount, reference if isinstance(reference, str) else None))
    return {"orderid": order.order_id, "result": "1"}


async def balance(request: web.Request, state: TrustlyState, data: dict[str, Any]) -> Any:
    return [{"currency": "EUR", "balance": "1000000.00"}]


HANDLERS = {"Deposit": deposit, "Withdraw": withdraw, "Refund": refund, "Balance": balance}
