"""Trustly's notifications: verified, read as events, and answered with a signed "OK".

Trustly POSTs `{"method": "credit"|"debit"|"pending"|"cancel"|"payoutconfirmation"|
"account", "params": {"signature", "uuid", "data": {"orderid", "messageid",
"notificationid", "amount", "currency", "enduserid", "timestamp", ...}}, "version": "1.1"}`
to the NotificationURL of the order, signed with Trustly's key over method + uuid + data.
The merchant answers a JSON-RPC result signed with its own key, whose data is
`{"status": "OK"}`; anything else and Trustly delivers it again. `notificationid` is the
event id, so a redelivery is applied once.

A notification names the order (the payment's `orderid`, our MessageID in `messageid`) but
not whether it is a deposit or a payout, and the same method means different things for
each; `withdrawal_type` carries the payout reading:

=================== ============================ ===================================
method              deposit                      withdrawal (Withdraw)
=================== ============================ ===================================
pending             processing                   processing
credit              succeeded (money received)   failed (the payout came back)
debit               reversed (taken back)        processing (the player confirmed)
payoutconfirmation  -                            succeeded (the money was sent)
cancel              canceled                     canceled
=================== ============================ ===================================

With `"refund": "1"` in its data, a notification is about a refund of that deposit
(Trustly's refunds have no order of their own): debit or payoutconfirmation means the refund
went out (refund.succeeded); cancel or credit means it failed (refund.failed); pending is no
news. Such a refund is named by the deposit and its amount only.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import MAX_SMALL_JSON_BYTES, PaymentEvent, WebhookRejected, decode_json
from adapters.money import MoneyError, from_decimal
from adapters.trustly.answers import text_of
from adapters.trustly.signing import sign, verify

# method -> (deposit reading, withdrawal reading)
PAYMENT_EVENTS: dict[str, tuple[str | None, str | None]] = {
    "pending": ("payment.processing", "payment.processing"),
    "credit": ("payment.succeeded", "payment.failed"),
    "debit": ("payment.reversed", "payment.processing"),
    "payoutconfirmation": (None, "payment.succeeded"),
    "cancel": ("payment.canceled", "payment.canceled"),
}
REFUND_EVENTS: dict[str, str] = {
    "debit": "refund.succeeded",
    "payoutconfirmation": "refund.succeeded",
    "cancel": "refund.failed",
    "credit": "refund.failed",
}


def read_notification(body: bytes) -> tuple[str, str, dict[str, Any], Any]:
    """(method, uuid, data, signature) of a notification, or WebhookRejected."""
    try:
        payload = decode_json(body, MAX_SMALL_JSON_BYTES)
    except ValueError:
        raise WebhookRejected("Trustly notification is not JSON") from None
    if not isinstance(payload, dict) or str(payload.get("version")) != "1.1":
        raise WebhookRejected("Trustly notification is not JSON-RPC 1.1")
    method, params = payload.get("method"), payload.get("params")
    if not isinstance(method, str) or not isinstance(params, dict):
        raise WebhookRejected("Trustly notification has no method or params")
    call_id, data = params.get("uuid"), params.get("data")
    if not isinstance(call_id, str) or not isinstance(data, dict):
        raise WebhookRejected("Trustly notification has no uuid or data")
    return method, call_id, data, params.get("signature")


def verify_notification(trustly_key: rsa.RSAPublicKey, body: bytes) -> list[PaymentEvent]:
    method, call_id, data, signature = read_notification(body)
    if not verify(trustly_key, method, call_id, data, signature):
        raise WebhookRejected("Trustly notification signature does not verify")
    notification_id = text_of(data.get("notificationid"))
    order_id = text_of(data.get("orderid"))
    if notification_id is None or order_id is None:
        raise WebhookRejected("Trustly notification has no notificationid or orderid")
    currency = data.get("currency") if isinstance(data.get("currency"), str) else None
    refund = str(data.get("refund", "")) == "1"
    deposit_type: str | None
    payout_type: str | None
    if refund:
        refund_type = REFUND_EVENTS.get(method)
        if refund_type is None:
            return []
        deposit_type, payout_type = refund_type, None
    else:
        deposit_type, payout_type = PAYMENT_EVENTS.get(method, (None, None))
        if deposit_type is None and payout_type is None:
            return []  # account, or a method this gateway does not use: acknowledged
    return [
        PaymentEvent(
            event_id=notification_id,
            type=deposit_type or payout_type or "",
            provider_reference=order_id,
            merchant_reference=text_of(data.get("messageid")),
            amount=_minor(data.get("amount"), currency),
            currency=currency,
            occurred_at=_iso(data.get("timestamp")),
            withdrawal_type=payout_type if not refund else None,
        )
    ]


def notification_answer(private_key: rsa.RSAPrivateKey, body: bytes) -> bytes:
    """The signed JSON-RPC result Trustly expects: status OK for this notification."""
    try:
        method, call_id, _data, _signature = read_notification(body)
    except WebhookRejected:
        method, call_id = "", ""
    data = {"status": "OK"}
    answer = {
        "result": {
            "signature": sign(private_key, method, call_id, data),
            "uuid": call_id,
            "method": method,
            "data": data,
        },
        "version": "1.1",
    }
    return json.dumps(answer, separators=(",", ":")).encode("utf-8")


def _minor(amount: Any, currency: str | None) -> int | None:
    if not isinstance(amount, str) or currency is None:
        return None
    try:
        return from_decimal(amount, currency)
    except MoneyError:
        return None


def _iso(timestamp: Any) -> str | None:
    # "2010-01-20 14:42:04.675645+01": Python reads it once the zone has its minutes.
    if not isinstance(timestamp, str) or not timestamp:
        return None
    text = timestamp.replace(" ", "T", 1)
    if len(text) >= 3 and text[-3] in "+-" and text[-2:].isdigit():
        text += ":00"
    return text
