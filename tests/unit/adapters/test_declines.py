"""Decline classification, one case per provider code, read through each adapter's own parsing
of an answer of the provider's real shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters import adyen, stripe
from adapters.adyen import declines as adyen_declines
from adapters.base import PaymentRequest, ProviderError, UpstreamResponse
from adapters.stripe import declines as stripe_declines

REQUEST = PaymentRequest(
    type="deposit",
    amount=2500,
    currency="EUR",
    player_id="player-1",
    method_type="card",
    return_url="https://casino.example/return",
    metadata={},
    reference="gw_ref",
    idempotency_key="idem-1",
)

# Written out here, not read from the adapters' tables: the test states what each code means.
STRIPE_EXPECTED: dict[str, str] = {
    "generic_decline": "soft",
    "do_not_honor": "soft",
    "issuer_not_available": "soft",
    "processing_error": "soft",
    "reenter_transaction": "soft",
    "try_again_later": "soft",
    "call_issuer": "soft",
    "approve_with_id": "soft",
    "no_action_taken": "soft",
    "insufficient_funds": "hard",
    "incorrect_cvc": "hard",
    "invalid_cvc": "hard",
    "incorrect_number": "hard",
    "invalid_number": "hard",
    "invalid_expiry_month": "hard",
    "invalid_expiry_year": "hard",
    "expired_card": "hard",
    "lost_card": "hard",
    "stolen_card": "hard",
    "pickup_card": "hard",
    "fraudulent": "hard",
    "merchant_blacklist": "hard",
    "security_violation": "hard",
    "restricted_card": "hard",
    "invalid_account": "hard",
    "card_not_supported": "hard",
    "currency_not_supported": "hard",
    "card_velocity_exceeded": "hard",
    "withdrawal_count_limit_exceeded": "hard",
    "duplicate_transaction": "hard",
    "new_account_information_available": "hard",
    "do_not_try_again": "hard",
    "revocation_of_authorization": "hard",
    "revocation_of_all_authorizations": "hard",
    "stop_payment_order": "hard",
    "transaction_not_allowed": "hard",
    "service_not_allowed": "hard",
    "not_permitted": "hard",
    "incorrect_pin": "hard",
    "invalid_pin": "hard",
    "pin_try_exceeded": "hard",
    "offline_pin_required": "hard",
    "online_or_offline_pin_required": "hard",
    "authentication_required": "hard",
    "incorrect_zip": "hard",
    "invalid_amount": "hard",
    "testmode_decline": "hard",
}

ADYEN_EXPECTED: dict[str, tuple[str, str]] = {
    "2": ("Refused", "soft"),
    "3": ("Referral", "soft"),
    "4": ("Acquirer Error", "soft"),
    "5": ("Blocked Card", "hard"),
    "6": ("Expired Card", "hard"),
    "7": ("Invalid Amount", "hard"),
    "8": ("Invalid Card Number", "hard"),
    "9": ("Issuer Unavailable", "soft"),
    "10": ("Not supported", "hard"),
    "11": ("3D Not Authenticated", "hard"),
    "12": ("Not enough balance", "hard"),
    "14": ("Acquirer Fraud", "hard"),
    "15": ("Cancelled", "hard"),
    "16": ("Shopper Cancelled", "hard"),
    "17": ("Invalid Pin", "hard"),
    "18": ("Pin tries exceeded", "hard"),
    "19": ("Pin validation not possible", "hard"),
    "20": ("FRAUD", "hard"),
    "21": ("Not Submitted", "soft"),
    "22": ("FRAUD-CANCELLED", "hard"),
    "23": ("Transaction Not Permitted", "hard"),
    "24": ("CVC Declined", "hard"),
    "25": ("Restricted Card", "hard"),
    "26": ("Revocation Of Auth", "hard"),
    "27": ("Declined Non Generic", "hard"),
    "28": ("Withdrawal amount exceeded", "hard"),
    "29": ("Withdrawal count exceeded", "hard"),
    "31": ("Issuer Suspected Fraud", "hard"),
    "32": ("AVS Declined", "hard"),
    "33": ("Card requires online pin", "hard"),
    "34": ("No checking account available on Card", "hard"),
    "35": ("No savings account available on Card", "hard"),
    "36": ("Mobile pin required", "hard"),
    "37": ("Contactless fallback", "hard"),
    "38": ("Authentication required", "hard"),
    "39": ("RReq not received from DS", "hard"),
    "40": ("Current AID is in Penalty Box", "hard"),
    "41": ("CVM Required Restart Payment", "hard"),
    "42": ("3DS Authentication Error", "hard"),
    "43": ("Online PIN required", "hard"),
    "44": ("Try another interface", "hard"),
    "45": ("Chip downgrade mode", "hard"),
    "46": ("Transaction blocked by Adyen to prevent excessive retry fees", "hard"),
}


def stripe_adapter() -> stripe.StripeAdapter:
    return stripe.create("stripe", {"secret_key": "sk_test_declines"})


def adyen_adapter() -> adyen.AdyenAdapter:
    return adyen.create("adyen", {"api_key": "AQE_key", "merchant_account": "Casino"})


def stripe_decline(code: str, *, with_intent: bool = True) -> UpstreamResponse:
    error: dict[str, Any] = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": code,
        "message": "Your card was declined.",
    }
    if with_intent:
        error["payment_intent"] = {
            "id": "pi_3Pdecline",
            "object": "payment_intent",
            "amount": 2500,
            "currency": "eur",
            "status": "requires_payment_method",
        }
    return UpstreamResponse(402, {}, json.dumps({"error": error}).encode())


@pytest.mark.parametrize(("code", "kind"), sorted(STRIPE_EXPECTED.items()))
def test_each_stripe_decline_code(code: str, kind: str) -> None:
    result = stripe_adapter().parse_create(stripe_decline(code), REQUEST)
    assert (result.status, result.decline_code, result.decline) == ("failed", code, kind)
    with pytest.raises(ProviderError) as info:
        stripe_adapter().parse_create(stripe_decline(code, with_intent=False), REQUEST)
    assert (info.value.final, info.value.failover_safe, info.value.decline) == (True, True, kind)


def test_the_stripe_table_is_what_the_test_states() -> None:
    assert set(STRIPE_EXPECTED) == stripe_declines.SOFT | stripe_declines.HARD
    assert not stripe_declines.SOFT & stripe_declines.HARD


def test_an_unknown_stripe_code_is_not_read_as_soft() -> None:
    result = stripe_adapter().parse_create(stripe_decline("brand_new_reason"), REQUEST)
    assert result.decline is None


def adyen_refused(code: str | None, reason: str | None) -> UpstreamResponse:
    body: dict[str, Any] = {"pspReference": "PSP0001", "resultCode": "Refused"}
    if code is not None:
        body["refusalReasonCode"] = code
    if reason is not None:
        body["refusalReason"] = reason
    return UpstreamResponse(200, {}, json.dumps(body).encode())


@pytest.mark.parametrize(("code", "expected"), sorted(ADYEN_EXPECTED.items()))
def test_each_adyen_refusal_reason(code: str, expected: tuple[str, str]) -> None:
    reason, kind = expected
    result = adyen_adapter().parse_create(adyen_refused(code, reason), REQUEST)
    assert (result.status, result.decline_code, result.decline) == ("failed", code, kind)
    # An answer carrying only the text reads the same.
    by_text = adyen_adapter().parse_create(adyen_refused(None, reason), REQUEST)
    assert by_text.decline == kind


def test_the_adyen_table_is_what_the_test_states() -> None:
    assert adyen_declines.REASONS == ADYEN_EXPECTED


def test_adyen_error_result_is_a_soft_decline() -> None:
    body = {"pspReference": "PSP0002", "resultCode": "Error"}
    result = adyen_adapter().parse_create(
        UpstreamResponse(200, {}, json.dumps(body).encode()), REQUEST
    )
    assert (result.status, result.decline_code, result.decline) == ("failed", "error", "soft")


def test_an_unknown_adyen_reason_is_not_read_as_soft() -> None:
    result = adyen_adapter().parse_create(adyen_refused("99", None), REQUEST)
    assert (result.decline_code, result.decline) == ("99", None)
