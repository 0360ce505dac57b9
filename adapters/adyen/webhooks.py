"""Adyen notifications: HMAC-signed items, verified one by one, mapped to payment events."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from adapters.base import MAX_SMALL_JSON_BYTES, PaymentEvent, WebhookRejected, decode_json

# eventCode -> (event type when success is "true", event type when "false"); None = skipped.
EVENT_TYPES: dict[str, tuple[str | None, str | None]] = {
    "AUTHORISATION": ("payment.succeeded", "payment.failed"),
    # A failed cancellation leaves the payment as it was.
    "CANCELLATION": ("payment.canceled", None),
    "REFUND": ("refund.succeeded", "refund.failed"),
    # A refund that failed after Adyen accepted it (the card scheme returned it).
    "REFUND_FAILED": ("refund.failed", None),
}
# Modification events name the payment they modify in originalReference.
MODIFICATION_EVENTS = frozenset({"CANCELLATION", "REFUND", "REFUND_FAILED"})
REFUND_EVENTS = frozenset({"REFUND", "REFUND_FAILED"})


def verify_notifications(hmac_key: bytes, body: bytes) -> list[PaymentEvent]:
    """The payment events of one notification batch; WebhookRejected if any item fails."""
    try:
        data = decode_json(body, MAX_SMALL_JSON_BYTES)
    except ValueError:
        raise WebhookRejected("Adyen notification is not JSON") from None
    items = data.get("notificationItems") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise WebhookRejected("Adyen notification has no notificationItems")
    events: list[PaymentEvent] = []
    for wrapper in items:
        item = wrapper.get("NotificationRequestItem") if isinstance(wrapper, dict) else None
        if not isinstance(item, dict):
            raise WebhookRejected("Adyen notification item is malformed")
        fields = _signed_fields(item)
        if not _signature_ok(hmac_key, item, fields):
            raise WebhookRejected("Adyen notification HMAC signature does not verify")
        event = _event(item, fields)
        if event is not None:
            events.append(event)
    return events


def _signature_ok(hmac_key: bytes, item: Mapping[str, Any], fields: list[str]) -> bool:
    additional = item.get("additionalData")
    given = additional.get("hmacSignature") if isinstance(additional, dict) else None
    if not isinstance(given, str) or not given:
        return False
    try:
        given_bytes = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        return False
    payload = ":".join(fields).encode("utf-8")
    expected = hmac.new(hmac_key, payload, hashlib.sha256).digest()
    return hmac.compare_digest(expected, given_bytes)


def _signed_fields(item: Mapping[str, Any]) -> list[str]:
    """The eight values Adyen's HMAC covers, in order; WebhookRejected if one is malformed."""
    amount = item.get("amount")
    if not isinstance(amount, dict):
        raise WebhookRejected("Adyen notification item has no amount")
    value = amount.get("value")
    if isinstance(value, bool) or not isinstance(value, int):
        raise WebhookRejected("Adyen notification amount value is not an integer")
    fields = [
        _required(item, "pspReference"),
        _optional(item, "originalReference"),
        _required(item, "merchantAccountCode"),
        _optional(item, "merchantReference"),
        str(value),
        _required(amount, "currency"),
        _required(item, "eventCode"),
        _required(item, "success"),
    ]
    if fields[-1] not in ("true", "false"):
        raise WebhookRejected("Adyen notification success is neither 'true' nor 'false'")
    return fields


def _required(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise WebhookRejected(f"Adyen notification item has no {key}")
    return value


def _optional(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebhookRejected(f"Adyen notification {key} is not a string")
    return value


def _event(item: Mapping[str, Any], fields: list[str]) -> PaymentEvent | None:
    psp, original, _, merchant_reference, value, currency, event_code, success = fields
    types = EVENT_TYPES.get(event_code)
    event_type = None if types is None else types[0 if success == "true" else 1]
    if event_type is None:
        return None
    reference = original if event_code in MODIFICATION_EVENTS and original else psp
    event_date = item.get("eventDate")
    return PaymentEvent(
        event_id=f"{psp}:{event_code}:{success}",
        type=event_type,
        provider_reference=reference,
        merchant_reference=merchant_reference or None,
        amount=int(value),
        currency=currency,
        occurred_at=event_date if isinstance(event_date, str) and event_date else None,
        # A refund is its own modification: its pspReference names it.
        refund_reference=psp if event_code in REFUND_EVENTS else None,
    )
