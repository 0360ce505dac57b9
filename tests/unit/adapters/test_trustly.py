"""The Trustly adapter against messages of Trustly's real shape, signed both ways with RSA keys
made at test time. Signatures are made and checked here with `cryptography` directly and a
serializer written out in this file, not with the adapter's own code."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters import trustly
from adapters.base import (
    NextAction,
    PaymentAdapter,
    PaymentRequest,
    ProviderError,
    RefundRequest,
    RefundResult,
    UpstreamResponse,
    WebhookRejected,
)
from adapters.trustly.signing import serialize

NOTIFY = "https://gateway.example/v1/webhooks/trustly"


@dataclasses.dataclass(frozen=True)
class Keys:
    merchant: rsa.RSAPrivateKey
    trustly: rsa.RSAPrivateKey

    @staticmethod
    def pem(key: rsa.RSAPrivateKey) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @staticmethod
    def public_pem(key: rsa.RSAPrivateKey) -> str:
        return (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        merchant=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        trustly=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


def adapter(keys: Keys, **changes: str) -> trustly.TrustlyAdapter:
    credentials = {
        "username": "casino",
        "password": "s3cret-pass",
        "private_key": Keys.pem(keys.merchant),
        "trustly_public_key": Keys.public_pem(keys.trustly),
        "notification_url": NOTIFY,
        **changes,
    }
    return trustly.create("trustly", credentials)


def by_hand(data: Any) -> str:
    """Trustly's serialization as its documentation states it, written out separately."""
    if isinstance(data, dict):
        out = ""
        for key in sorted(data):
            out += key + by_hand(data[key])
        return out
    if isinstance(data, list):
        return "".join(by_hand(v) for v in data)
    return "" if data is None else str(data)


def trustly_sign(key: rsa.RSAPrivateKey, method: str, uuid: str, data: Any) -> str:
    text = (method + uuid + by_hand(data)).encode()
    return base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA1())).decode()


def merchant_signed(key: rsa.RSAPrivateKey, method: str, uuid: str, data: Any, sig: str) -> bool:
    text = (method + uuid + by_hand(data)).encode()
    try:
        key.public_key().verify(base64.b64decode(sig), text, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True


def deposit(**changes: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "type": "deposit",
        "amount": 2550,
        "currency": "SEK",
        "player_id": "player-7",
        "method_type": "bank_transfer",
        "return_url": "https://casino.example/cashier",
        "metadata": {},
        "reference": "gw_0123456789abcdef01234567",
        "idempotency_key": "cgw-abc",
        "country": "SE",
    }
    fields.update(changes)
    return PaymentRequest(**fields)


def result_answer(key: rsa.RSAPrivateKey, method: str, uuid: str, data: Any) -> UpstreamResponse:
    body = {
        "result": {
            "signature": trustly_sign(key, method, uuid, data),
            "uuid": uuid,
            "method": method,
            "data": data,
        },
        "version": "1.1",
    }
    return UpstreamResponse(200, {}, json.dumps(body).encode())


def error_answer(
    key: rsa.RSAPrivateKey, method: str, uuid: str, code: int, message: str
) -> UpstreamResponse:
    data = {"code": code, "message": message}
    body = {
        "version": "1.1",
        "error": {
            "name": "JSONRPCError",
            "code": code,
            "message": message,
            "error": {
                "signature": trustly_sign(key, method, uuid, data),
                "uuid": uuid,
                "method": method,
                "data": data,
            },
        },
    }
    return UpstreamResponse(200, {}, json.dumps(body).encode())


# ---- serialization and construction --------------------------------------------------------


def test_serialization_is_sorted_keys_and_values_concatenated() -> None:
    data = {
        "Username": "joe",
        "Attributes": {"Locale": "sv_SE", "Amount": "10.00", "Nothing": None},
        "MessageID": "m1",
        "List": ["a", {"z": "1", "b": "2"}],
    }
    assert serialize(data) == (
        "AttributesAmount10.00Localesv_SENothing" "Listab2z1" "MessageIDm1" "Usernamejoe"
    )
    assert serialize(data) == by_hand(data)
    assert serialize({"b": "2", "a": None, "c": ["x", "y"]}) == "ab2cxy"


def test_create_gives_a_payment_adapter_that_hides_its_secrets(keys: Keys) -> None:
    made = adapter(keys)
    assert isinstance(made, PaymentAdapter)
    assert "s3cret-pass" not in repr(made) and "PRIVATE" not in repr(made)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"private_key": "not a key"}, "private_key must be a PEM RSA private key"),
        ({"trustly_public_key": "nope"}, "trustly_public_key must be"),
        ({"notification_url": "ftp://x"}, r"notification_url must be an http\(s\) URL"),
        ({"notification_url": "https://x/hook?a=1"}, "without a query"),
        ({"username": ""}, "needs credentials.username"),
    ],
)
def test_bad_credentials_are_named(keys: Keys, changes: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        adapter(keys, **changes)
    assert "not a key" not in str(info.value)


# ---- requests ---------------------------------------------------------------------------


def test_a_deposit_is_a_signed_json_rpc_call(keys: Keys) -> None:
    req = adapter(keys).create_request(deposit())
    assert (req.method, req.path) == ("POST", "/api/1")
    body = json.loads(req.body)
    assert body["method"] == "Deposit" and body["version"] == "1.1"
    params = body["params"]
    assert params["Data"] == {
        "Username": "casino",
        "Password": "s3cret-pass",
        "NotificationURL": NOTIFY,
        "EndUserID": "player-7",
        "MessageID": "gw_0123456789abcdef01234567",
        "Attributes": {
            "Locale": "sv_SE",
            "Country": "SE",
            "SuccessURL": "https://casino.example/cashier",
            "FailURL": "https://casino.example/cashier",
            "Amount": "25.50",
            "Currency": "SEK",
        },
    }
    assert merchant_signed(keys.merchant, "Deposit", params["UUID"], params["Data"],
                           params["Signature"])
    # A retry is the same call: the same UUID.
    again = json.loads(adapter(keys).create_request(deposit()).body)
    assert again["params"]["UUID"] == params["UUID"]


def test_a_withdrawal_pins_the_amount_the_casino_approved(keys: Keys) -> None:
    req = adapter(keys).create_request(deposit(type="withdrawal", amount=10000, currency="EUR"))
    body = json.loads(req.body)
    data = body["params"]["Data"]
    assert body["method"] == "Withdraw"
    assert data["Currency"] == "EUR" and "Amount" not in data
    assert data["Attributes"]["SuggestedMinAmount"] == "100.00"
    assert data["Attributes"]["SuggestedMaxAmount"] == "100.00"
    assert merchant_signed(keys.merchant, "Withdraw", body["params"]["UUID"], data,
                           body["params"]["Signature"])


def test_a_refund_names_the_deposit_order(keys: Keys) -> None:
    refund = RefundRequest("1187741486", 3000, "EUR", "rf_1", "cgw-r-1")
    body = json.loads(adapter(keys).refund_request(refund).body)
    data = body["params"]["Data"]
    assert body["method"] == "Refund"
    assert (data["OrderID"], data["Amount"], data["Currency"]) == ("1187741486", "30.00", "EUR")
    assert data["Attributes"] == {"ExternalReference": "rf_1"}
    assert merchant_signed(keys.merchant, "Refund", body["params"]["UUID"], data,
                           body["params"]["Signature"])


@pytest.mark.parametrize(
    "changes",
    [{"method_type": "card"}, {"currency": "USD"}],
)
def test_what_trustly_cannot_take_is_refused_before_sending(
    keys: Keys, changes: dict[str, Any]
) -> None:
    with pytest.raises(ProviderError) as info:
        adapter(keys).create_request(deposit(**changes))
    assert (info.value.rejected, info.value.failover_safe) == (True, True)


# ---- answers ----------------------------------------------------------------------------


def uuid_of(keys: Keys, request: PaymentRequest) -> str:
    return str(json.loads(adapter(keys).create_request(request).body)["params"]["UUID"])


def test_a_signed_deposit_answer_is_a_redirect(keys: Keys) -> None:
    request = deposit()
    data = {"orderid": "1187741486", "url": "https://trustly.example/checkout?OrderID=1187741486"}
    result = adapter(keys).parse_create(
        result_answer(keys.trustly, "Deposit", uuid_of(keys, request), data), request
    )
    assert (result.status, result.provider_reference) == ("requires_action", "1187741486")
    assert result.next_action == NextAction(type="redirect", url=data["url"])
    assert (result.amount, result.currency) == (2550, "SEK")


def test_a_withdrawal_answer_waits_for_the_player(keys: Keys) -> None:
    request = deposit(type="withdrawal")
    data = {"orderid": "2190971587", "url": "https://trustly.example/checkout?OrderID=2190971587"}
    result = adapter(keys).parse_create(
        result_answer(keys.trustly, "Withdraw", uuid_of(keys, request), data), request
    )
    assert (result.status, result.next_action) == ("pending", NextAction("redirect", data["url"]))


@pytest.mark.parametrize("forgery", ["other_key", "other_uuid", "changed_data"])
def test_an_answer_that_does_not_verify_is_unknown_never_a_refusal(
    keys: Keys, forgery: str
) -> None:
    request = deposit()
    call_id = uuid_of(keys, request)
    data = {"orderid": "1187741486", "url": "https://trustly.example/x"}
    signer = keys.merchant if forgery == "other_key" else keys.trustly
    answer_uuid = "00000000-0000-0000-0000-000000000000" if forgery == "other_uuid" else call_id
    response = result_answer(signer, "Deposit", answer_uuid, data)
    if forgery == "changed_data":
        response = UpstreamResponse(200, {}, response.body.replace(b"1187741486", b"999"))
    with pytest.raises(ProviderError) as info:
        adapter(keys).parse_create(response, request)
    assert (info.value.retry_same, info.value.failover_safe) == (True, False)


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        # (retry_same, failover_safe, rejected, final, status)
        (616, "ERROR_INVALID_CREDENTIALS", (False, True, False, False, 401)),
        (636, "ERROR_UNABLE_TO_VERIFY_RSA_SIGNATURE", (False, True, False, False, 401)),
        (615, "ERROR_INVALID_AMOUNT", (False, True, True, False, None)),
        (622, "ERROR_INVALID_CURRENCY_CODE", (False, True, True, False, None)),
        (637, "ERROR_DUPLICATE_MESSAGE_ID", (True, False, False, False, None)),
        (638, "ERROR_ENDUSER_IS_BLOCKED", (False, True, True, True, None)),
        (620, "ERROR_UNKNOWN", (False, True, True, False, None)),
    ],
)
def test_deposit_errors(keys: Keys, code: int, message: str, expected: tuple[Any, ...]) -> None:
    request = deposit()
    response = error_answer(keys.trustly, "Deposit", uuid_of(keys, request), code, message)
    with pytest.raises(ProviderError) as info:
        adapter(keys).parse_create(response, request)
    err = info.value
    assert (err.retry_same, err.failover_safe, err.rejected, err.final, err.status) == expected
    assert err.provider_code == message
    if code == 638:
        assert err.decline == "hard"


def test_a_refund_error_trustly_cannot_explain_leaves_the_refund_unknown(keys: Keys) -> None:
    refund = RefundRequest("1187741486", 3000, "EUR", "rf_1", "cgw-r-1")
    call_id = json.loads(adapter(keys).refund_request(refund).body)["params"]["UUID"]
    with pytest.raises(ProviderError) as info:
        adapter(keys).parse_refund(
            error_answer(keys.trustly, "Refund", call_id, 620, "ERROR_UNKNOWN"), refund
        )
    assert (info.value.failover_safe, info.value.retry_same) == (False, False)
    accepted = adapter(keys).parse_refund(
        result_answer(keys.trustly, "Refund", call_id, {"orderid": "1187741486", "result": "1"}),
        refund,
    )
    assert accepted == RefundResult("pending", None)


def test_a_json_rpc_error_trustly_could_not_read_is_a_refusal(keys: Keys) -> None:
    body = {
        "version": "1.1",
        "error": {
            "name": "JSONRPCError", "code": 623, "message": "ERROR_INVALID_PARAMETERS",
            "error": {"signature": None, "uuid": None, "method": None,
                      "data": {"code": 623, "message": "ERROR_INVALID_PARAMETERS"}},
        },
    }
    with pytest.raises(ProviderError) as info:
        adapter(keys).parse_create(UpstreamResponse(200, {}, json.dumps(body).encode()), deposit())
    assert (info.value.rejected, info.value.failover_safe) == (True, True)


@pytest.mark.parametrize(("status", "safe"), [(500, False), (503, False), (429, True)])
def test_http_errors(keys: Keys, status: int, safe: bool) -> None:
    with pytest.raises(ProviderError) as info:
        adapter(keys).parse_create(UpstreamResponse(status, {}, b"busy"), deposit())
    assert (info.value.failover_safe, info.value.retry_same) == (safe, not safe)


# ---- notifications ----------------------------------------------------------------------


def notification(
    key: rsa.RSAPrivateKey, method: str, **data: Any
) -> bytes:
    fields = {
        "orderid": "1187741486",
        "messageid": "gw_0123456789abcdef01234567",
        "notificationid": "4876513450",
        "amount": "25.50",
        "currency": "SEK",
        "enduserid": "player-7",
        "timestamp": "2026-11-27 14:42:04.675645+01",
        **data,
    }
    uuid = "258a2184-2842-b485-23ca-293425152415"
    body = {
        "method": method,
        "params": {"signature": trustly_sign(key, method, uuid, fields), "uuid": uuid,
                   "data": fields},
        "version": "1.1",
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("method", "deposit_type", "payout_type"),
    [
        ("credit", "payment.succeeded", "payment.failed"),
        ("debit", "payment.reversed", "payment.processing"),
        ("pending", "payment.processing", "payment.processing"),
        ("cancel", "payment.canceled", "payment.canceled"),
        ("payoutconfirmation", "payment.succeeded", "payment.succeeded"),
    ],
)
def test_notifications_read_by_method(
    keys: Keys, method: str, deposit_type: str, payout_type: str
) -> None:
    [event] = adapter(keys).verify_webhook({}, notification(keys.trustly, method), 0)
    assert event.type == deposit_type
    assert (event.withdrawal_type or event.type) == payout_type
    assert (event.event_id, event.provider_reference) == ("4876513450", "1187741486")
    assert event.merchant_reference == "gw_0123456789abcdef01234567"
    assert (event.amount, event.currency) == (2550, "SEK")
    assert event.occurred_at == "2026-11-27T14:42:04.675645+01:00"


@pytest.mark.parametrize(
    ("method", "event_type"),
    [("debit", "refund.succeeded"), ("payoutconfirmation", "refund.succeeded"),
     ("cancel", "refund.failed"), ("credit", "refund.failed"), ("pending", None)],
)
def test_refund_notifications(keys: Keys, method: str, event_type: str | None) -> None:
    body = notification(keys.trustly, method, refund="1", amount="10.00")
    events = adapter(keys).verify_webhook({}, body, 0)
    if event_type is None:
        assert events == []
        return
    [event] = events
    assert (event.type, event.amount, event.withdrawal_type) == (event_type, 1000, None)


def test_an_account_notification_is_acknowledged_without_news(keys: Keys) -> None:
    assert adapter(keys).verify_webhook({}, notification(keys.trustly, "account"), 0) == []


@pytest.mark.parametrize("forgery", ["merchant_key", "changed_amount", "no_signature"])
def test_a_notification_that_does_not_verify_is_refused(keys: Keys, forgery: str) -> None:
    body = notification(keys.merchant if forgery == "merchant_key" else keys.trustly, "credit")
    if forgery == "changed_amount":
        body = body.replace(b'"25.50"', b'"2550.00"')
    if forgery == "no_signature":
        payload = json.loads(body)
        del payload["params"]["signature"]
        body = json.dumps(payload).encode()
    with pytest.raises(WebhookRejected):
        adapter(keys).verify_webhook({}, body, 0)


def test_the_answer_to_a_notification_is_a_signed_ok(keys: Keys) -> None:
    body = notification(keys.trustly, "credit")
    status, content_type, raw = adapter(keys).webhook_ack(body)
    assert (status, content_type) == (200, "application/json")
    answer = json.loads(raw)
    result = answer["result"]
    assert answer["version"] == "1.1"
    assert result["data"] == {"status": "OK"}
    assert (result["method"], result["uuid"]) == ("credit", "258a2184-2842-b485-23ca-293425152415")
    assert merchant_signed(keys.merchant, "credit", result["uuid"], result["data"],
                           result["signature"])


def test_amounts_convert_exactly(keys: Keys) -> None:
    for text, minor in (("0.10", 10), ("1234567.89", 123456789), ("100", 10000)):
        body = notification(keys.trustly, "credit", amount=text, currency="EUR")
        [event] = adapter(keys).verify_webhook({}, body, 0)
        assert event.amount == minor
    # More decimals than the currency has is not rounded: the amount is left unknown.
    body = notification(keys.trustly, "credit", amount="1.005", currency="EUR")
    assert adapter(keys).verify_webhook({}, body, 0)[0].amount is None
