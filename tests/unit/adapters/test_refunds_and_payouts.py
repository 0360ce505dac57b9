"""Stripe and Adyen refunds, Adyen payouts (Transfers API) and their webhooks, with payloads of
the providers' real shapes."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest

from adapters import adyen, stripe
from adapters.base import (
    BankAccount,
    PaymentRequest,
    ProviderError,
    RefundRequest,
    RefundResult,
    UpstreamResponse,
    WebhookRejected,
)
from tests.unit.adapters.test_adyen import HMAC_KEY, batch, notification_item, signed
from tests.unit.adapters.test_stripe import WEBHOOK_SECRET

REFUND = RefundRequest(
    payment_reference="pi_3PabcDEF",
    amount=1000,
    currency="EUR",
    reference="rf_01",
    idempotency_key="cgw-r-1",
    reason="requested_by_customer",
)
PAYOUT = PaymentRequest(
    type="withdrawal",
    amount=5000,
    currency="EUR",
    player_id="p-1",
    method_type="bank_transfer",
    return_url=None,
    metadata={},
    reference="gw_payout1",
    idempotency_key="cgw-payout-1",
    bank_account=BankAccount(iban="NL91ABNA0417164300", holder_name="A. Player"),
)


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> UpstreamResponse:
    return UpstreamResponse(status, headers or {}, json.dumps(body).encode())


def stripe_adapter() -> stripe.StripeAdapter:
    return stripe.create("stripe", {"secret_key": "sk_test_1", "webhook_secret": WEBHOOK_SECRET})


def adyen_adapter(**extra: Any) -> adyen.AdyenAdapter:
    return adyen.create(
        "adyen",
        {"api_key": "AQE_k", "merchant_account": "Casino", "hmac_key": HMAC_KEY, **extra},
    )


# ---- Stripe refunds ------------------------------------------------------------------------


def test_stripe_refund_request_is_form_encoded_under_the_refund_key() -> None:
    req = stripe_adapter().refund_request(REFUND)
    assert (req.method, req.path) == ("POST", "/v1/refunds")
    assert req.headers["Idempotency-Key"] == "cgw-r-1"
    assert dict(parse_qsl(req.body.decode())) == {
        "payment_intent": "pi_3PabcDEF",
        "amount": "1000",
        "reason": "requested_by_customer",
        "metadata[gateway_refund_id]": "rf_01",
    }


def test_a_reason_stripe_does_not_know_is_not_sent() -> None:
    req = stripe_adapter().refund_request(
        RefundRequest("pi_1", 10, "EUR", "rf_2", "k", reason="other")
    )
    assert "reason" not in dict(parse_qsl(req.body.decode()))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("succeeded", "succeeded"),
        ("pending", "pending"),
        ("requires_action", "pending"),
        ("failed", "failed"),
        ("canceled", "canceled"),
    ],
)
def test_stripe_refund_statuses(status: str, expected: str) -> None:
    body = {"id": "re_1", "object": "refund", "amount": 1000, "status": status}
    result = stripe_adapter().parse_refund(answer(200, body), REFUND)
    assert (result.status, result.provider_reference) == (expected, "re_1")


@pytest.mark.parametrize(
    ("status", "body", "flags"),
    [
        # More than is left: Stripe refused before acting.
        (
            400,
            {"error": {"type": "invalid_request_error", "code": "amount_too_large",
                       "message": "Refund amount is greater than unrefunded amount"}},
            (True, True, False),
        ),
        (500, {"error": {"type": "api_error", "message": "boom"}}, (False, False, True)),
        (200, {"id": "pi_1", "object": "payment_intent"}, (False, False, True)),
    ],
)
def test_stripe_refund_errors(status: int, body: Any, flags: tuple[bool, bool, bool]) -> None:
    with pytest.raises(ProviderError) as info:
        stripe_adapter().parse_refund(answer(status, body), REFUND)
    err = info.value
    assert (err.rejected, err.failover_safe, err.retry_same) == flags


def stripe_webhook(event: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(event).encode()
    t = 1_800_000_000
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}"}, body


def refund_event(event_type: str, status: str) -> dict[str, Any]:
    return {
        "id": f"evt_{event_type}_{status}",
        "type": event_type,
        "created": 1_800_000_000,
        "data": {
            "object": {
                "id": "re_9",
                "object": "refund",
                "amount": 700,
                "currency": "eur",
                "payment_intent": "pi_3PabcDEF",
                "status": status,
                "metadata": {"gateway_refund_id": "rf_01"},
            }
        },
    }


@pytest.mark.parametrize(
    ("event_type", "status", "unified"),
    [
        ("refund.updated", "succeeded", "refund.succeeded"),
        ("refund.created", "succeeded", "refund.succeeded"),
        ("refund.failed", "failed", "refund.failed"),
        ("refund.updated", "canceled", "refund.canceled"),
        ("refund.updated", "pending", None),
    ],
)
def test_stripe_refund_events(event_type: str, status: str, unified: str | None) -> None:
    headers, body = stripe_webhook(refund_event(event_type, status))
    events = stripe_adapter().verify_webhook(headers, body, 1_800_000_000)
    if unified is None:
        assert events == []
        return
    [event] = events
    assert (event.type, event.provider_reference, event.refund_reference) == (
        unified, "pi_3PabcDEF", "re_9"
    )
    assert (event.merchant_reference, event.amount, event.currency) == ("rf_01", 700, "EUR")


@pytest.mark.parametrize(("refunded", "count"), [(True, 1), (False, 0)])
def test_charge_refunded_in_full_is_a_refunded_payment(refunded: bool, count: int) -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 2500,
        "amount_refunded": 2500 if refunded else 700,
        "currency": "eur",
        "payment_intent": "pi_3PabcDEF",
        "refunded": refunded,
    }
    event = {"id": "evt_c", "type": "charge.refunded", "created": 1, "data": {"object": charge}}
    headers, body = stripe_webhook(event)
    events = stripe_adapter().verify_webhook(headers, body, 1_800_000_000)
    assert len(events) == count
    if events:
        assert (events[0].type, events[0].provider_reference) == ("payment.refunded", "pi_3PabcDEF")


# ---- Adyen refunds -------------------------------------------------------------------------


def test_adyen_refund_request_names_the_payment_in_the_path() -> None:
    req = adyen_adapter().refund_request(
        RefundRequest("QFQTPCQ8HXSKGK82", 1000, "EUR", "rf_01", "cgw-r-1", "fraudulent")
    )
    assert (req.method, req.path) == ("POST", "/v71/payments/QFQTPCQ8HXSKGK82/refunds")
    assert req.headers["Idempotency-Key"] == "cgw-r-1"
    assert json.loads(req.body) == {
        "amount": {"value": 1000, "currency": "EUR"},
        "merchantAccount": "Casino",
        "reference": "rf_01",
        "merchantRefundReason": "FRAUD",
    }


def test_adyen_refund_received_is_pending_until_its_webhook() -> None:
    body = {
        "merchantAccount": "Casino",
        "paymentPspReference": "QFQTPCQ8HXSKGK82",
        "pspReference": "KHQC5N7G84BLNK43",
        "reference": "rf_01",
        "status": "received",
        "amount": {"value": 1000, "currency": "EUR"},
    }
    assert adyen_adapter().parse_refund(answer(201, body), REFUND) == RefundResult(
        "pending", "KHQC5N7G84BLNK43"
    )


@pytest.mark.parametrize(
    ("status", "body", "flags"),
    [
        (422, {"status": 422, "errorCode": "137", "message": "Invalid amount specified",
               "errorType": "validation"}, (True, True, False)),
        (500, {"status": 500, "errorCode": "000", "message": "x", "errorType": "internal"},
         (False, False, True)),
        (201, {"status": "received"}, (False, False, True)),
    ],
)
def test_adyen_refund_errors(status: int, body: Any, flags: tuple[bool, bool, bool]) -> None:
    with pytest.raises(ProviderError) as info:
        adyen_adapter().parse_refund(answer(status, body), REFUND)
    err = info.value
    assert (err.rejected, err.failover_safe, err.retry_same) == flags


# ---- Adyen payouts -------------------------------------------------------------------------


def test_a_payout_is_a_bank_transfer_from_the_balance_account() -> None:
    req = adyen_adapter(balance_account_id="BA3227C223222B5FG88S28BGS").create_request(PAYOUT)
    assert (req.method, req.path) == ("POST", "/btl/v4/transfers")
    assert req.headers["Idempotency-Key"] == "cgw-payout-1"
    assert json.loads(req.body) == {
        "amount": {"value": 5000, "currency": "EUR"},
        "balanceAccountId": "BA3227C223222B5FG88S28BGS",
        "category": "bank",
        "counterparty": {
            "bankAccount": {
                "accountHolder": {"fullName": "A. Player"},
                "accountIdentification": {"type": "iban", "iban": "NL91ABNA0417164300"},
            }
        },
        "priority": "regular",
        "reference": "gw_payout1",
        "referenceForBeneficiary": "gw_payout1",
        "description": "Casino withdrawal",
    }


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"bank_account": None}, "missing_bank_account"),
        ({"method_type": "card"}, "unsupported_payment_method"),
    ],
)
def test_payouts_adyen_cannot_make_are_refused_before_sending(
    changes: dict[str, Any], code: str
) -> None:
    request = dataclasses.replace(PAYOUT, **changes)
    with pytest.raises(ProviderError) as info:
        adyen_adapter(balance_account_id="BA1").create_request(request)
    assert (info.value.provider_code, info.value.failover_safe) == (code, True)


@pytest.mark.parametrize(
    ("transfer_status", "status"),
    [("received", "processing"), ("authorised", "processing"), ("booked", "succeeded"),
     ("refused", "failed"), ("somethingNew", "processing")],
)
def test_a_transfer_answer(transfer_status: str, status: str) -> None:
    body = {"id": "48POO45ZCJOP0UCV", "status": transfer_status, "category": "bank",
            "amount": {"value": 5000, "currency": "EUR"}, "reference": "gw_payout1"}
    result = adyen_adapter(balance_account_id="BA1").parse_create(answer(200, body), PAYOUT)
    assert (result.status, result.provider_reference) == (status, "48POO45ZCJOP0UCV")


def test_a_transfer_refused_as_a_problem_is_rejected_before_acting() -> None:
    body = {"type": "https://docs.adyen.com/errors/validation", "title": "Invalid transfer",
            "status": 422, "detail": "counterparty iban invalid", "errorCode": "30_112"}
    with pytest.raises(ProviderError) as info:
        adyen_adapter(balance_account_id="BA1").parse_create(answer(422, body), PAYOUT)
    err = info.value
    assert (err.provider_code, err.rejected, err.failover_safe) == ("30_112", True, True)
    assert "counterparty iban invalid" in err.message


def transfer_webhook(
    status: str, *, key: str = HMAC_KEY, **data: Any
) -> tuple[dict[str, str], bytes]:
    event = {
        "data": {
            "id": "48POO45ZCJOP0UCV",
            "status": status,
            "direction": "outgoing",
            "category": "bank",
            "amount": {"value": 5000, "currency": "EUR"},
            "reference": "gw_payout1",
            "sequenceNumber": 3,
            **data,
        },
        "environment": "test",
        "timestamp": "2026-11-27T12:00:00+01:00",
        "type": "balancePlatform.transfer.updated",
    }
    body = json.dumps(event).encode()
    mac = hmac.new(bytes.fromhex(key), body, hashlib.sha256).digest()
    return {"HmacSignature": base64.b64encode(mac).decode()}, body


@pytest.mark.parametrize(
    ("status", "event_type"),
    [("booked", "payment.succeeded"), ("failed", "payment.failed"),
     ("returned", "payment.reversed"), ("received", "payment.processing")],
)
def test_transfer_webhooks(status: str, event_type: str) -> None:
    headers, body = transfer_webhook(status)
    [event] = adyen_adapter().verify_webhook(headers, body, 0)
    assert (event.type, event.provider_reference, event.merchant_reference) == (
        event_type, "48POO45ZCJOP0UCV", "gw_payout1"
    )
    assert event.event_id == f"transfer:48POO45ZCJOP0UCV:3:{status}"


def test_a_transfer_webhook_signed_with_another_key_is_refused() -> None:
    headers, body = transfer_webhook("booked", key="00" * 32)
    with pytest.raises(WebhookRejected):
        adyen_adapter().verify_webhook(headers, body, 0)


def test_a_changed_transfer_webhook_is_refused() -> None:
    headers, body = transfer_webhook("failed")
    with pytest.raises(WebhookRejected):
        adyen_adapter().verify_webhook(headers, body.replace(b"failed", b"booked"), 0)


def test_an_incoming_transfer_is_not_a_payout() -> None:
    headers, body = transfer_webhook("booked", direction="incoming")
    assert adyen_adapter().verify_webhook(headers, body, 0) == []


def test_a_standard_refund_notification_still_verifies_alongside() -> None:
    item = signed(notification_item(eventCode="REFUND", pspReference="R1",
                                    originalReference="QFQTPCQ8HXSKGK82",
                                    merchantReference="rf_01"))
    [event] = adyen_adapter().verify_webhook({}, batch(item), 0)
    assert (event.type, event.merchant_reference, event.refund_reference) == (
        "refund.succeeded", "rf_01", "R1"
    )
