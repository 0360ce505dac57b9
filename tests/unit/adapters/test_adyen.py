"""The Adyen Checkout v71 adapter alone, against payloads of Adyen's real shape."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from typing import Any

import pytest

from adapters import adyen
from adapters.base import (
    NextAction,
    PaymentAdapter,
    PaymentRequest,
    ProviderError,
    UpstreamResponse,
    WebhookRejected,
)

API_KEY = "AQEyhmfxK4_test_api_key"
MERCHANT = "DemoCasinoECOM"
HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
NOW = 1_800_000_000.0

# Published with Adyen's own API libraries (adyen-php-api-library HmacSignatureTest and
# adyen-ruby-api-library hmac_validator_spec): key, item, expected hmacSignature.
VECTOR_ITEM: dict[str, Any] = {
    "pspReference": "7914073381342284",
    "merchantAccountCode": "TestMerchant",
    "merchantReference": "TestPayment-1407325143704",
    "amount": {"value": 1130, "currency": "EUR"},
    "eventCode": "AUTHORISATION",
    "success": "true",
}
ADYEN_VECTORS = [
    (
        "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00",
        VECTOR_ITEM,
        "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I=",
    ),
    (
        "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
        VECTOR_ITEM,
        "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=",
    ),
    (
        "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
        {**VECTOR_ITEM, "amount": {"value": 0, "currency": "EUR"}, "eventCode": "REFUND"},
        "J7HhsgZo5KwqdB7LFZJV6rfQgp+RqC2kuYyw/3x3w+8=",
    ),
]


def make_adapter(hmac_key: str | None = HMAC_KEY) -> adyen.AdyenAdapter:
    credentials: dict[str, Any] = {"api_key": API_KEY, "merchant_account": MERCHANT}
    if hmac_key is not None:
        credentials["hmac_key"] = hmac_key
    return adyen.create("adyen", credentials)


def payment_request(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "type": "deposit",
        "amount": 2500,
        "currency": "EUR",
        "player_id": "player-7f3a",
        "method_type": "card",
        "return_url": "https://casino.example/return",
        "metadata": {"campaign": "welcome"},
        "reference": "pay_01HZX",
        "idempotency_key": "idem-5b1d7c",
    }
    fields.update(overrides)
    return PaymentRequest(**fields)


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> UpstreamResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return UpstreamResponse(status=status, headers=headers or {}, body=raw)


def sign(item: dict[str, Any], key_hex: str = HMAC_KEY) -> str:
    """Adyen's notification HMAC, computed here on its own from Adyen's documentation."""
    payload = ":".join([
        item["pspReference"],
        item.get("originalReference", ""),
        item["merchantAccountCode"],
        item["merchantReference"],
        str(item["amount"]["value"]),
        item["amount"]["currency"],
        item["eventCode"],
        item["success"],
    ])
    mac = hmac.new(bytes.fromhex(key_hex), payload.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def notification_item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "additionalData": {},
        "amount": {"value": 2500, "currency": "EUR"},
        "eventCode": "AUTHORISATION",
        "eventDate": "2026-11-27T12:00:00+01:00",
        "merchantAccountCode": MERCHANT,
        "merchantReference": "pay_01HZX",
        "paymentMethod": "visa",
        "pspReference": "QFQTPCQ8HXSKGK82",
        "reason": "",
        "success": "true",
    }
    item.update(overrides)
    return item


def signed(item: dict[str, Any], key_hex: str = HMAC_KEY) -> dict[str, Any]:
    item = copy.deepcopy(item)
    item.setdefault("additionalData", {})["hmacSignature"] = sign(item, key_hex)
    return item


def batch(*items: dict[str, Any]) -> bytes:
    return json.dumps({
        "live": "false",
        "notificationItems": [{"NotificationRequestItem": item} for item in items],
    }).encode()


# ---- construction ----------------------------------------------------------------------------


def test_spec_declares_credentials_and_secrets() -> None:
    assert adyen.SPEC.kind == "payments"
    assert adyen.SPEC.credentials == ("api_key", "merchant_account")
    assert adyen.SPEC.secrets == frozenset({"api_key", "hmac_key"})
    assert adyen.SPEC.optional == ("hmac_key", "balance_account_id")
    assert adyen.SPEC.payment_types == frozenset({"deposit", "withdrawal"})
    assert dict(adyen.SPEC.payout_methods) == {"bank_transfer": None}
    assert (adyen.SPEC.refunds, adyen.SPEC.refunds_idempotent) == (True, True)


def test_create_gives_a_payment_adapter_that_hides_its_keys() -> None:
    adapter = make_adapter()
    assert isinstance(adapter, PaymentAdapter)
    assert adapter.kind == "payments"
    assert API_KEY not in repr(adapter)
    assert HMAC_KEY not in repr(adapter)


def test_create_without_hmac_key_is_allowed() -> None:
    assert make_adapter(hmac_key=None).kind == "payments"
    assert adyen.create("a", {"api_key": "k", "merchant_account": "m", "hmac_key": ""})


@pytest.mark.parametrize("hmac_key", ["not-hex", "ABC", "44 78", "zz" * 32, 1234])
def test_create_rejects_an_hmac_key_that_is_not_hex(hmac_key: Any) -> None:
    with pytest.raises(ValueError, match="hmac_key must be the hex-encoded") as info:
        adyen.create("adyen", {"api_key": "k", "merchant_account": "m", "hmac_key": hmac_key})
    assert str(hmac_key) not in str(info.value)


@pytest.mark.parametrize(
    ("credentials", "missing"),
    [
        ({"merchant_account": "m"}, "api_key"),
        ({"api_key": "  ", "merchant_account": "m"}, "api_key"),
        ({"api_key": "k"}, "merchant_account"),
        ({"api_key": "k", "merchant_account": 7}, "merchant_account"),
    ],
)
def test_create_requires_api_key_and_merchant_account(
    credentials: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ValueError, match=missing):
        adyen.create("adyen", credentials)


# ---- requests ------------------------------------------------------------------------------


def test_create_request_is_a_json_post_to_v71_payments() -> None:
    req = make_adapter().create_request(payment_request())
    assert req.method == "POST"
    assert req.path == "/v71/payments"
    assert dict(req.headers) == {
        "X-API-Key": API_KEY,
        "Content-Type": "application/json",
        "Idempotency-Key": "idem-5b1d7c",
    }
    assert json.loads(req.body) == {
        "amount": {"value": 2500, "currency": "EUR"},
        "reference": "pay_01HZX",
        "merchantAccount": MERCHANT,
        "paymentMethod": {"type": "scheme"},
        "returnUrl": "https://casino.example/return",
        "shopperReference": "player-7f3a",
        "metadata": {"campaign": "welcome"},
    }


def test_create_request_is_the_same_bytes_on_every_retry() -> None:
    adapter = make_adapter()
    assert adapter.create_request(payment_request()) == adapter.create_request(payment_request())


@pytest.mark.parametrize(
    ("method_type", "adyen_type"),
    [("card", "scheme"), ("ewallet", "paypal"), ("bank_transfer", "bankTransfer_IBAN")],
)
def test_payment_method_types(method_type: str, adyen_type: str) -> None:
    req = make_adapter().create_request(payment_request(method_type=method_type))
    assert json.loads(req.body)["paymentMethod"] == {"type": adyen_type}


def test_empty_metadata_is_left_out() -> None:
    req = make_adapter().create_request(payment_request(metadata={}))
    assert "metadata" not in json.loads(req.body)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        # A payout without a balance account to pay from is refused before sending.
        ({"type": "withdrawal", "method_type": "bank_transfer"}, "unsupported_operation"),
        ({"method_type": "crypto"}, "unsupported_payment_method"),
        ({"return_url": None}, "missing_return_url"),
    ],
)
def test_requests_adyen_cannot_take_are_refused_before_sending(
    overrides: dict[str, Any], code: str
) -> None:
    with pytest.raises(ProviderError) as info:
        make_adapter().create_request(payment_request(**overrides))
    err = info.value
    assert (err.provider_code, err.rejected, err.failover_safe, err.retry_same) == (
        code, True, True, False
    )


def test_health_request_lists_payment_methods() -> None:
    req = make_adapter().health_request()
    assert (req.method, req.path) == ("POST", "/v71/paymentMethods")
    assert req.headers["X-API-Key"] == API_KEY
    assert json.loads(req.body) == {"merchantAccount": MERCHANT}


def test_payments_cannot_be_read_back() -> None:
    adapter = make_adapter()
    assert adapter.get_request("QFQTPCQ8HXSKGK82") is None
    with pytest.raises(ProviderError, match="not supported") as info:
        adapter.parse_get(response(200, {"pspReference": "QFQTPCQ8HXSKGK82"}))
    assert info.value.failover_safe is False


# ---- parse_create: results -----------------------------------------------------------------


def parse(status: int, body: Any, headers: dict[str, str] | None = None, **request: Any):
    return make_adapter().parse_create(response(status, body, headers), payment_request(**request))


@pytest.mark.parametrize(
    ("result_code", "status"),
    [
        ("Authorised", "succeeded"),
        ("Cancelled", "canceled"),
        ("Pending", "processing"),
        ("Received", "processing"),
        ("PartiallyAuthorised", "processing"),
    ],
)
def test_result_codes(result_code: str, status: str) -> None:
    result = parse(200, {"pspReference": "QFQTPCQ8HXSKGK82", "resultCode": result_code})
    assert result.status == status
    assert result.provider_reference == "QFQTPCQ8HXSKGK82"
    assert (result.amount, result.currency) == (2500, "EUR")
    assert result.next_action is None
    assert result.decline_code is None


def test_refused_is_a_failed_payment_with_the_refusal_code() -> None:
    result = parse(200, {
        "pspReference": "V4HZ4RBFJGXXGN82",
        "resultCode": "Refused",
        "refusalReason": "Not enough balance",
        "refusalReasonCode": "12",
        "merchantReference": "pay_01HZX",
    })
    assert (result.status, result.decline_code) == ("failed", "12")
    assert result.provider_reference == "V4HZ4RBFJGXXGN82"


def test_refused_without_a_code_falls_back_to_the_reason() -> None:
    result = parse(200, {"pspReference": "V4HZ4RBFJGXXGN82", "resultCode": "Refused",
                         "refusalReason": "CVC Declined"})
    assert result.decline_code == "CVC Declined"
    bare = parse(200, {"pspReference": "V4HZ4RBFJGXXGN82", "resultCode": "Refused"})
    assert bare.decline_code == "refused"


def test_error_result_is_a_failed_payment() -> None:
    result = parse(200, {"pspReference": "V4HZ4RBFJGXXGN82", "resultCode": "Error",
                         "refusalReason": "Acquirer Error"})
    assert (result.status, result.decline_code) == ("failed", "error")


@pytest.mark.parametrize(
    "result_code", ["RedirectShopper", "IdentifyShopper", "ChallengeShopper", "PresentToShopper"]
)
def test_action_with_a_url_is_a_redirect(result_code: str) -> None:
    result = parse(200, {
        "pspReference": "QFQTPCQ8HXSKGK82",
        "resultCode": result_code,
        "action": {
            "paymentMethodType": "scheme",
            "url": "https://checkoutshopper-test.adyen.com/checkoutshopper/threeDS/redirect",
            "method": "GET",
            "type": "redirect",
        },
    })
    assert result.status == "requires_action"
    assert result.next_action == NextAction(
        type="redirect",
        url="https://checkoutshopper-test.adyen.com/checkoutshopper/threeDS/redirect",
    )


@pytest.mark.parametrize(
    "action",
    [
        {"type": "threeDS2", "subtype": "fingerprint", "token": "eyJ0aHJl",
         "paymentMethodType": "scheme"},
        None,
        "garbage",
    ],
)
def test_action_without_a_url_needs_the_sdk(action: Any) -> None:
    body: dict[str, Any] = {"pspReference": "QFQTPCQ8HXSKGK82", "resultCode": "IdentifyShopper"}
    if action is not None:
        body["action"] = action
    result = parse(200, body)
    assert result.status == "requires_action"
    assert result.next_action == NextAction(type="sdk", provider="adyen", client_secret=None)


def test_a_201_with_a_result_is_parsed_too() -> None:
    assert parse(201, {"pspReference": "QFQTPCQ8HXSKGK82", "resultCode": "Pending"}).status == (
        "processing"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"pspReference": "QFQTPCQ8HX',
        b"",
        b"[]",
        b"null",
        {"resultCode": "Authorised"},
        {"pspReference": "QFQTPCQ8HXSKGK82"},
        {"pspReference": 12345, "resultCode": "Authorised"},
        {"pspReference": "QFQTPCQ8HXSKGK82", "resultCode": ""},
    ],
)
def test_a_2xx_that_cannot_be_read_may_have_acted(body: Any) -> None:
    with pytest.raises(ProviderError) as info:
        parse(200, body)
    err = info.value
    assert (err.retry_same, err.failover_safe, err.rejected, err.status) == (
        True, False, False, 200
    )


def test_an_unknown_result_code_is_ambiguous() -> None:
    with pytest.raises(ProviderError) as info:
        parse(200, {"pspReference": "QFQTPCQ8HXSKGK82", "resultCode": "SomethingNew"})
    assert (info.value.retry_same, info.value.failover_safe) == (True, False)
    assert info.value.provider_code == "SomethingNew"


# ---- parse_create: errors ------------------------------------------------------------------


def adyen_error(status: int, code: str, message: str, error_type: str, **extra: Any):
    return {"status": status, "errorCode": code, "message": message, "errorType": error_type,
            **extra}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, adyen_error(401, "000", "HTTP Status Response - Unauthorized", "security")),
        (403, adyen_error(403, "901", "Invalid Merchant Account", "security")),
        (403, adyen_error(403, "010", "Not allowed", "security")),
        (422, adyen_error(422, "130", "Required field 'reference' is not provided.",
                          "validation", pspReference="LC3SD679J7RPWJ65")),
        (422, adyen_error(422, "14_030", "Return URL is missing.", "validation")),
        (400, adyen_error(400, "702", "Unexpected input", "validation")),
    ],
)
def test_definite_refusals_are_failover_safe(status: int, body: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as info:
        parse(status, body)
    err = info.value
    assert (err.failover_safe, err.rejected, err.retry_same) == (True, True, False)
    assert (err.status, err.provider_code) == (status, body["errorCode"])
    assert body["message"] in err.message


def test_the_psp_reference_of_an_error_is_kept_in_the_message() -> None:
    with pytest.raises(ProviderError, match="LC3SD679J7RPWJ65"):
        parse(422, adyen_error(422, "130", "Required field 'reference' is not provided.",
                               "validation", pspReference="LC3SD679J7RPWJ65"))


@pytest.mark.parametrize("status", [409, 422])
def test_idempotency_key_in_use_is_retried_on_adyen_only(status: int) -> None:
    # Adyen holds a request under this key: its outcome is unknown, never a refusal.
    body = adyen_error(status, "704", "request already processed or in progress", "validation")
    with pytest.raises(ProviderError) as info:
        parse(status, body)
    err = info.value
    assert (err.rejected, err.failover_safe, err.retry_same) == (False, False, True)
    assert err.provider_code == "704"


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [({"Retry-After": "7"}, 7.0), ({"retry-after": "1.5"}, 1.5), ({}, None),
     ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, None), ({"Retry-After": "-3"}, None),
     ({"Retry-After": "nan"}, None)],
)
def test_rate_limit_is_failover_safe(headers: dict[str, str], retry_after: float | None) -> None:
    with pytest.raises(ProviderError) as info:
        parse(429, adyen_error(429, "905", "simulated rate limit", "internal"), headers)
    err = info.value
    assert (err.failover_safe, err.retry_same, err.rejected) == (True, False, False)
    assert err.retry_after_s == retry_after


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, adyen_error(500, "000", "HTTP Status Response - Internal Server Error", "internal",
                          pspReference="HQ3VWSGXRFXXGN82")),
        (500, adyen_error(500, "905_1", "Could not find an acquirer account", "configuration")),
        (502, b"<html><body>502 Bad Gateway</body></html>"),
        (503, b""),
        (409, adyen_error(409, "000", "Conflict", "validation")),
        (408, b"timeout"),
        (302, b""),
    ],
)
def test_ambiguous_failures_retry_the_same_provider(status: int, body: Any) -> None:
    with pytest.raises(ProviderError) as info:
        parse(status, body)
    err = info.value
    assert (err.retry_same, err.failover_safe, err.rejected, err.status) == (
        True, False, False, status
    )


def test_a_404_html_page_is_a_definite_refusal() -> None:
    with pytest.raises(ProviderError) as info:
        parse(404, b"<html>Not Found</html>")
    err = info.value
    assert (err.failover_safe, err.rejected, err.provider_code) == (True, True, None)
    assert "Not Found" in err.message


def test_a_numeric_error_code_is_read_as_text() -> None:
    with pytest.raises(ProviderError) as info:
        parse(422, {"status": 422, "errorCode": 137, "message": "Invalid amount specified"})
    assert info.value.provider_code == "137"


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"errorCode": null}', b'{"message": 5}', b"\xff"])
def test_odd_error_bodies_never_escape_as_other_exceptions(body: bytes) -> None:
    with pytest.raises(ProviderError) as info:
        parse(422, body)
    assert info.value.provider_code is None


# ---- webhooks ------------------------------------------------------------------------------


@pytest.mark.parametrize(("key_hex", "item", "expected"), ADYEN_VECTORS)
def test_adyen_published_hmac_vectors(key_hex: str, item: dict[str, Any], expected: str) -> None:
    # The test's own signer agrees with Adyen's published values...
    assert sign(item, key_hex) == expected
    # ...and the adapter accepts exactly that signature.
    body = batch({**item, "additionalData": {"hmacSignature": expected}})
    events = make_adapter(key_hex).verify_webhook({}, body, NOW)
    assert len(events) == 1
    assert events[0].event_id == f"7914073381342284:{item['eventCode']}:true"


def test_hand_computed_signature() -> None:
    # HMAC-SHA256 over the colon-joined fields, computed outside the adapter:
    # "QFQTPCQ8HXSKGK82::DemoCasinoECOM:pay_01HZX:2500:EUR:AUTHORISATION:true"
    payload = b"QFQTPCQ8HXSKGK82::DemoCasinoECOM:pay_01HZX:2500:EUR:AUTHORISATION:true"
    expected = base64.b64encode(
        hmac.new(bytes.fromhex(HMAC_KEY), payload, hashlib.sha256).digest()
    ).decode()
    item = notification_item(additionalData={"hmacSignature": expected})
    assert len(make_adapter().verify_webhook({}, batch(item), NOW)) == 1


def test_authorisation_success_is_payment_succeeded() -> None:
    events = make_adapter().verify_webhook({}, batch(signed(notification_item())), NOW)
    assert len(events) == 1
    event = events[0]
    assert event.event_id == "QFQTPCQ8HXSKGK82:AUTHORISATION:true"
    assert event.type == "payment.succeeded"
    assert event.provider_reference == "QFQTPCQ8HXSKGK82"
    assert event.merchant_reference == "pay_01HZX"
    assert (event.amount, event.currency) == (2500, "EUR")
    assert event.occurred_at == "2026-11-27T12:00:00+01:00"


def test_authorisation_failure_is_payment_failed() -> None:
    item = signed(notification_item(success="false", reason="Refused"))
    [event] = make_adapter().verify_webhook({}, batch(item), NOW)
    assert (event.type, event.event_id) == (
        "payment.failed", "QFQTPCQ8HXSKGK82:AUTHORISATION:false"
    )


@pytest.mark.parametrize(
    ("event_code", "event_type"),
    [
        ("CANCELLATION", "payment.canceled"),
        ("REFUND", "refund.succeeded"),
        ("REFUND_FAILED", "refund.failed"),
    ],
)
def test_modifications_point_at_the_original_payment(event_code: str, event_type: str) -> None:
    item = signed(notification_item(eventCode=event_code, pspReference="KHQC5N7G84BLNK43",
                                    originalReference="QFQTPCQ8HXSKGK82"))
    [event] = make_adapter().verify_webhook({}, batch(item), NOW)
    assert event.type == event_type
    assert event.provider_reference == "QFQTPCQ8HXSKGK82"
    assert event.event_id == f"KHQC5N7G84BLNK43:{event_code}:true"
    # A refund is its own modification: its pspReference names the refund.
    assert event.refund_reference == (None if event_code == "CANCELLATION" else "KHQC5N7G84BLNK43")


def test_a_refund_adyen_could_not_make_is_a_failed_refund() -> None:
    item = signed(notification_item(eventCode="REFUND", success="false",
                                    pspReference="KHQC5N7G84BLNK43",
                                    originalReference="QFQTPCQ8HXSKGK82"))
    [event] = make_adapter().verify_webhook({}, batch(item), NOW)
    assert (event.type, event.provider_reference, event.refund_reference) == (
        "refund.failed", "QFQTPCQ8HXSKGK82", "KHQC5N7G84BLNK43"
    )


def test_a_refund_without_original_reference_uses_its_psp_reference() -> None:
    item = signed(notification_item(eventCode="REFUND"))
    [event] = make_adapter().verify_webhook({}, batch(item), NOW)
    assert event.provider_reference == "QFQTPCQ8HXSKGK82"


@pytest.mark.parametrize(
    "overrides",
    [
        {"eventCode": "CAPTURE"},
        {"eventCode": "REPORT_AVAILABLE"},
        {"eventCode": "REFUND_FAILED", "success": "false"},
        {"eventCode": "CANCELLATION", "success": "false"},
    ],
)
def test_other_events_are_verified_then_skipped(overrides: dict[str, Any]) -> None:
    item = signed(notification_item(**overrides))
    assert make_adapter().verify_webhook({}, batch(item), NOW) == []


def test_a_batch_gives_one_event_per_relevant_item() -> None:
    items = [
        signed(notification_item()),
        signed(notification_item(eventCode="CAPTURE", pspReference="X1")),
        signed(notification_item(pspReference="Y2", merchantReference="pay_2", success="false")),
    ]
    events = make_adapter().verify_webhook({}, batch(*items), NOW)
    assert [e.event_id for e in events] == [
        "QFQTPCQ8HXSKGK82:AUTHORISATION:true", "Y2:AUTHORISATION:false"
    ]


def test_one_bad_item_rejects_the_whole_batch() -> None:
    good = signed(notification_item())
    bad = signed(notification_item(pspReference="Y2"))
    bad["amount"]["value"] = 250000
    with pytest.raises(WebhookRejected):
        make_adapter().verify_webhook({}, batch(good, bad), NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pspReference", "QFQTPCQ8HXSKGK83"),
        ("merchantReference", "pay_other"),
        ("merchantAccountCode", "OtherMerchant"),
        ("eventCode", "REFUND"),
        ("success", "false"),
        ("originalReference", "QFQTPCQ8HXSKGK82"),
    ],
)
def test_any_tampered_signed_field_is_rejected(field: str, value: str) -> None:
    item = signed(notification_item())
    item[field] = value
    with pytest.raises(WebhookRejected, match="signature"):
        make_adapter().verify_webhook({}, batch(item), NOW)


def test_tampered_currency_is_rejected() -> None:
    item = signed(notification_item())
    item["amount"]["currency"] = "USD"
    with pytest.raises(WebhookRejected, match="signature"):
        make_adapter().verify_webhook({}, batch(item), NOW)


def test_a_signature_made_with_another_key_is_rejected() -> None:
    item = signed(notification_item(), key_hex="00" * 32)
    with pytest.raises(WebhookRejected):
        make_adapter().verify_webhook({}, batch(item), NOW)


@pytest.mark.parametrize("signature", [None, "", "not base64 !!", 42, "AAAA"])
def test_missing_or_malformed_signature_is_rejected(signature: Any) -> None:
    item = notification_item()
    if signature is not None:
        item["additionalData"] = {"hmacSignature": signature}
    with pytest.raises(WebhookRejected):
        make_adapter().verify_webhook({}, batch(item), NOW)


def test_without_an_hmac_key_every_webhook_is_rejected() -> None:
    with pytest.raises(WebhookRejected, match="hmac_key"):
        make_adapter(hmac_key=None).verify_webhook({}, batch(signed(notification_item())), NOW)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html></html>",
        b'{"live": "false", "notificationItems": [{"Notifica',
        b"[]",
        b'{"live": "false"}',
        b'{"live": "false", "notificationItems": []}',
        b'{"live": "false", "notificationItems": {}}',
        b'{"live": "false", "notificationItems": [42]}',
        b'{"live": "false", "notificationItems": [{"NotificationRequestItem": "x"}]}',
    ],
)
def test_malformed_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(WebhookRejected):
        make_adapter().verify_webhook({}, body, NOW)


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": {"value": "2500", "currency": "EUR"}},
        {"amount": {"value": 25.0, "currency": "EUR"}},
        {"amount": {"value": True, "currency": "EUR"}},
        {"amount": {"value": 2500}},
        {"amount": None},
        {"pspReference": None},
        {"eventCode": 5},
        {"success": "yes"},
        {"success": True},
        {"merchantReference": 99},
    ],
)
def test_items_with_malformed_fields_are_rejected(overrides: dict[str, Any]) -> None:
    item = notification_item(additionalData={"hmacSignature": "c2lnbmF0dXJl"}, **overrides)
    with pytest.raises(WebhookRejected):
        make_adapter().verify_webhook({}, batch(item), NOW)


def test_no_timestamp_window_applies() -> None:
    # Adyen signs no timestamp: an old notification verifies at any `now`.
    body = batch(signed(notification_item(eventDate="2019-06-28T18:03:50+01:00")))
    assert len(make_adapter().verify_webhook({}, body, 0.0)) == 1
    assert len(make_adapter().verify_webhook({}, body, NOW * 10)) == 1


def test_webhook_ack_is_the_literal_accepted() -> None:
    assert make_adapter().webhook_ack() == (200, "text/plain", b"[accepted]")
