"""Stripe webhooks: the Stripe-Signature header and `payment_intent.*` events."""

from __future__ import annotations

from typing import Any

from adapters.base import PaymentEvent, WebhookRejected
from adapters.stripe.answers import currency_of, int_or_none, iso_utc, str_or_none

_EVENT_TYPES: dict[str, str] = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
    "payment_intent.canceled": "payment.canceled",
    "payment_intent.processing": "payment.processing",
    "payment_intent.requires_action": "payment.requires_action",
}


def parse_signature_header(value: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:
            val = val.strip()
            # Bounded so a huge value cannot overflow the tolerance arithmetic.
            if not val.isascii() or not val.isdigit() or len(val) > 12:
                raise WebhookRejected("malformed Stripe-Signature timestamp")
            timestamp = int(val)
        elif key == "v1":
            signatures.append(val.strip())
    if timestamp is None:
        raise WebhookRejected("Stripe-Signature has no timestamp")
    if not signatures:
        raise WebhookRejected("Stripe-Signature has no v1 signature")
    return timestamp, signatures


def events_of(event: Any) -> list[PaymentEvent]:
    if not isinstance(event, dict):
        raise WebhookRejected("event is not an object")
    event_id = str_or_none(event.get("id"))
    event_type = str_or_none(event.get("type"))
    if event_id is None or event_type is None:
        raise WebhookRejected("event has no id or type")
    unified = _EVENT_TYPES.get(event_type)
    if unified is None:
        return []
    data = event.get("data")
    intent = data.get("object") if isinstance(data, dict) else None
    intent_id = str_or_none(intent.get("id")) if isinstance(intent, dict) else None
    if not isinstance(intent, dict) or intent_id is None:
        raise WebhookRejected("event carries no payment intent")
    metadata = intent.get("metadata")
    merchant_reference = (
        str_or_none(metadata.get("gateway_reference")) if isinstance(metadata, dict) else None
    )
    return [
        PaymentEvent(
            event_id=event_id,
            type=unified,
            provider_reference=intent_id,
            merchant_reference=merchant_reference,
            amount=int_or_none(intent.get("amount")),
            currency=currency_of(intent.get("currency")),
            occurred_at=iso_utc(event.get("created")),
        )
    ]
