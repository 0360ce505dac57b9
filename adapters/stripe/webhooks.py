"""Stripe webhooks: the Stripe-Signature header; `payment_intent.*`, `refund.*` and
`charge.refunded` events."""

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
# Refund events carry the Refund; its status says what happened. A pending refund is no news.
_REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed"})
_REFUND_OUTCOMES = {
    "succeeded": "refund.succeeded",
    "failed": "refund.failed",
    "canceled": "refund.canceled",
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
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if event_type in _REFUND_EVENTS:
        return _refund_event(event_id, event, obj)
    if event_type == "charge.refunded":
        return _charge_refunded(event_id, event, obj)
    unified = _EVENT_TYPES.get(event_type)
    if unified is None:
        return []
    intent = obj
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


def _refund_event(event_id: str, event: dict[str, Any], refund: Any) -> list[PaymentEvent]:
    if not isinstance(refund, dict) or str_or_none(refund.get("id")) is None:
        raise WebhookRejected("refund event carries no refund")
    unified = _REFUND_OUTCOMES.get(str_or_none(refund.get("status")) or "")
    intent_id = str_or_none(refund.get("payment_intent"))
    if unified is None or intent_id is None:
        return []
    metadata = refund.get("metadata")
    refund_id = (
        str_or_none(metadata.get("gateway_refund_id")) if isinstance(metadata, dict) else None
    )
    return [
        PaymentEvent(
            event_id=event_id,
            type=unified,
            provider_reference=intent_id,
            merchant_reference=refund_id,
            amount=int_or_none(refund.get("amount")),
            currency=currency_of(refund.get("currency")),
            occurred_at=iso_utc(event.get("created")),
            refund_reference=str_or_none(refund.get("id")),
        )
    ]


def _charge_refunded(event_id: str, event: dict[str, Any], charge: Any) -> list[PaymentEvent]:
    """A charge refunded in full (whoever refunded it, the gateway or Stripe's dashboard) is
    a refunded payment; a partial refund is news about a refund, which refund.* events tell."""
    if not isinstance(charge, dict):
        raise WebhookRejected("charge event carries no charge")
    intent_id = str_or_none(charge.get("payment_intent"))
    if charge.get("refunded") is not True or intent_id is None:
        return []
    return [
        PaymentEvent(
            event_id=event_id,
            type="payment.refunded",
            provider_reference=intent_id,
            merchant_reference=None,
            amount=int_or_none(charge.get("amount_refunded")),
            currency=currency_of(charge.get("currency")),
            occurred_at=iso_utc(event.get("created")),
        )
    ]
