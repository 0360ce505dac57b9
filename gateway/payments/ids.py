"""Opaque payment ids that any gateway instance can resolve without a shared store.

The id carries the owning provider, the gateway's reference, the provider's reference when
known at creation, amount, currency and creation time, base64url-encoded. With a
`payment_id_secret_env` configured it also carries an HMAC tag, so a client cannot forge an
id that points at someone else's payment; without one, ids are only encoded (fine for one
trusted frontend, and the README says so).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

PREFIX = "pay_"
_SEP = "\x1f"
_VERSION = "1"
_TAG_BYTES = 16


@dataclass(frozen=True, slots=True)
class PaymentRef:
    provider: str
    reference: str  # the gateway's reference, also sent to the provider
    provider_reference: str  # empty when the outcome was unknown at creation
    amount: int
    currency: str
    created_at: int  # unix seconds


class BadPaymentId(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(ref: PaymentRef, secret: bytes | None) -> str:
    payload = _SEP.join(
        [
            _VERSION,
            ref.provider,
            ref.reference,
            ref.provider_reference,
            str(ref.amount),
            ref.currency,
            str(ref.created_at),
        ]
    ).encode()
    token = _b64(payload)
    if secret:
        token += "." + _b64(hmac.new(secret, payload, hashlib.sha256).digest()[:_TAG_BYTES])
    return PREFIX + token


def decode(payment_id: str, secret: bytes | None) -> PaymentRef:
    if not payment_id.startswith(PREFIX) or len(payment_id) > 512:
        raise BadPaymentId("not a payment id")
    body, _, tag = payment_id[len(PREFIX) :].partition(".")
    try:
        payload = _unb64(body)
        fields = payload.decode().split(_SEP)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadPaymentId("not a payment id") from None
    if secret:
        try:
            given = _unb64(tag)
        except (binascii.Error, ValueError):
            raise BadPaymentId("not a payment id") from None
        want = hmac.new(secret, payload, hashlib.sha256).digest()[:_TAG_BYTES]
        if not hmac.compare_digest(given, want):
            raise BadPaymentId("not a payment id")
    if len(fields) != 7 or fields[0] != _VERSION:
        raise BadPaymentId("not a payment id")
    _, provider, reference, provider_reference, amount, currency, created = fields
    if not (provider and reference and amount.isdigit() and created.isdigit()):
        raise BadPaymentId("not a payment id")
    return PaymentRef(provider, reference, provider_reference, int(amount), currency, int(created))


def gateway_reference(client_id: str, idempotency_key: str) -> str:
    """Stable for one client's key: every retry of a payment carries the same reference."""
    digest = hashlib.sha256(f"ref\0{client_id}\0{idempotency_key}".encode()).hexdigest()
    return "gw_" + digest[:24]


def provider_idempotency_key(client_id: str, idempotency_key: str, provider: str) -> str:
    """Derived from the client's key, one per provider: a retry on the same provider is
    deduplicated by that provider, and a failover to another starts clean there."""
    digest = hashlib.sha256(f"idem\0{client_id}\0{idempotency_key}\0{provider}".encode())
    return "cgw-" + digest.hexdigest()[:40]
