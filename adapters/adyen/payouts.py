"""Adyen payouts to players: the Transfers API (`POST /btl/v4/transfers`) and its webhooks.

A payout is a transfer of category ``bank`` from the configured balance account to the
player's bank account (IBAN and holder name from the request). The answer is a Transfer
whose status is usually ``received``; the outcome comes later as
``balancePlatform.transfer.updated`` webhooks, signed in the ``HmacSignature`` header
(base64 HMAC-SHA256 of the raw body with the webhook's HMAC key).

Transfer status -> payment status (anything else: the payout is in progress):

=====================================  ===========
booked                                 succeeded
refused, failed, error, cancelled      failed
returned                               reversed (the bank sent a booked payout back)
received, authorised, pendingApproval  processing
=====================================  ===========
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from adapters.base import (
    MAX_SMALL_JSON_BYTES,
    PaymentEvent,
    PaymentRequest,
    PaymentResult,
    PaymentStatus,
    ProviderError,
    UpstreamResponse,
    WebhookRejected,
    decode_json,
    header,
    json_error_text,
)

TRANSFERS_PATH = "/btl/v4/transfers"

TRANSFER_STATUSES: dict[str, PaymentStatus] = {
    "booked": "succeeded",
    "refused": "failed",
    "failed": "failed",
    "error": "failed",
    "cancelled": "failed",
    "received": "processing",
    "authorised": "processing",
    "pendingApproval": "processing",
}
# What each webhook status announces; `returned` is news after a success.
TRANSFER_EVENTS: dict[str, str] = {
    "booked": "payment.succeeded",
    "refused": "payment.failed",
    "failed": "payment.failed",
    "error": "payment.failed",
    "cancelled": "payment.failed",
    "returned": "payment.reversed",
    "received": "payment.processing",
    "authorised": "payment.processing",
}
TRANSFER_WEBHOOKS = frozenset(
    {"balancePlatform.transfer.created", "balancePlatform.transfer.updated"}
)


def transfer_payload(request: PaymentRequest, balance_account_id: str) -> dict[str, Any]:
    account = request.bank_account
    assert account is not None, "checked by the adapter before"
    return {
        "amount": {"value": request.amount, "currency": request.currency},
        "balanceAccountId": balance_account_id,
        "category": "bank",
        "counterparty": {
            "bankAccount": {
                "accountHolder": {"fullName": account.holder_name},
                "accountIdentification": {"type": "iban", "iban": account.iban},
            }
        },
        "priority": "regular",
        "reference": request.reference,
        # Shown to the player by their bank: the gateway's reference, nothing personal.
        "referenceForBeneficiary": request.reference[:80],
        "description": "Casino withdrawal",
    }


def parse_transfer(response: UpstreamResponse, request: PaymentRequest) -> PaymentResult:
    try:
        data = decode_json(response.body, MAX_SMALL_JSON_BYTES)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    transfer_id, status = data.get("id"), data.get("status")
    if not (isinstance(transfer_id, str) and transfer_id and isinstance(status, str)):
        raise ProviderError(
            f"Adyen answered {response.status} without a transfer id and status: "
            f"{json_error_text(response.body)}",
            status=response.status,
            retry_same=True,
        )
    # A status this table does not know: the transfer exists, its outcome is unknown.
    payment_status = TRANSFER_STATUSES.get(status, "processing")
    reason = data.get("reason")
    return PaymentResult(
        status=payment_status,
        provider_reference=transfer_id,
        amount=request.amount,
        currency=request.currency,
        decline_code=reason if payment_status == "failed" and isinstance(reason, str) else None,
    )


def verify_transfer_webhook(
    hmac_key: bytes, headers: Mapping[str, str], body: bytes
) -> list[PaymentEvent]:
    given = header(headers, "HmacSignature")
    if not given:
        raise WebhookRejected("Adyen transfer webhook has no HmacSignature header")
    try:
        given_bytes = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("Adyen HmacSignature is not base64") from None
    expected = hmac.new(hmac_key, body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given_bytes):
        raise WebhookRejected("Adyen transfer webhook HMAC signature does not verify")
    try:
        event = decode_json(body, MAX_SMALL_JSON_BYTES)
    except ValueError:
        raise WebhookRejected("Adyen transfer webhook is not JSON") from None
    if not isinstance(event, dict) or event.get("type") not in TRANSFER_WEBHOOKS:
        return []
    data = event.get("data")
    if not isinstance(data, dict):
        raise WebhookRejected("Adyen transfer webhook has no data")
    transfer_id, status = data.get("id"), data.get("status")
    if not (isinstance(transfer_id, str) and transfer_id and isinstance(status, str)):
        raise WebhookRejected("Adyen transfer webhook has no transfer id or status")
    event_type = TRANSFER_EVENTS.get(status)
    if event_type is None or data.get("direction") == "incoming":
        return []
    amount = data.get("amount")
    amount = amount if isinstance(amount, dict) else {}
    value = amount.get("value")
    reference = data.get("reference")
    sequence = data.get("sequenceNumber")
    return [
        PaymentEvent(
            event_id=f"transfer:{transfer_id}:{sequence}:{status}",
            type=event_type,
            provider_reference=transfer_id,
            merchant_reference=reference if isinstance(reference, str) else None,
            amount=value if isinstance(value, int) and not isinstance(value, bool) else None,
            currency=amount.get("currency") if isinstance(amount.get("currency"), str) else None,
            occurred_at=event.get("timestamp") if isinstance(event.get("timestamp"), str) else None,
        )
    ]
