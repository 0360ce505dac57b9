"""The Stripe adapter alone, against payloads of Stripe's real shape."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest

from adapters import stripe
from adapters.base import (
    NextAction,
    PaymentAdapter,
    PaymentRequest,
    PaymentResult,
    ProviderError,
    UpstreamResponse,
    WebhookRejected,
)

SECRET_KEY = "sk_test_51Hx0000000000000000000000"
WEBHOOK_SECRET = "whsec_unit0000000000000000000000"
NOW = 1_718_900_000


def make_adapter(**overrides: Any) -> stripe.StripeAdapter:
    credentials: dict[str, Any] = {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}
    credentials.update(overrides)
    return stripe.create("stripe", credentials)


def make_request(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "type": "deposit",
        "amount": 2500,
        "currency": "EUR",
        "player_id": "p-7f3a",
        "method_type": "card",
        "return_url": "https://casino.example/return",
        "metadata": {"campaign": "welcome"},
        "reference": "pay_01HZX",
        "idempotency_key": "idem-123",
    }
    fields.update(overrides)
    return PaymentRequest(**fields)


def intent(**overrides: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "pi_3PabcDEF",
        "object": "payment_intent",
        "amount": 2500,
        "amount_received": 0,
        "currency": "eur",
        "status": "requires_payment_method",
        "client_secret": "pi_3PabcDEF_secret_xyz",
        "next_action": None,
        "last_payment_error": None,
        "metadata": {"gateway_reference": "pay_01HZX", "player_id": "p-7f3a"},
    }
    obj.update(overrides)
    return obj


def response(status: int, payload: Any, headers: dict[str, str] | None = None) -> UpstreamResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return UpstreamResponse(status=status, headers=headers or {}, body=body)


def stripe_error(**fields: Any) -> dict[str, Any]:
    return {"error": fields}


# ---- create() and SPEC ------------------------------------------------------------------


def test_spec() -> None:
    assert stripe.SPEC.kind == "payments"
    assert stripe.SPEC.credentials == ("secret_key",)
    assert stripe.SPEC.secrets == frozenset({"secret_key", "webhook_secret"})
    assert stripe.SPEC.optional == ("webhook_secret",)


def test_create_returns_a_payment_adapter() -> None:
    adapter = make_adapter()
    assert isinstance(adapter, PaymentAdapter)
    assert adapter.kind == "payments"
    assert SECRET_KEY not in repr(adapter)
    assert WEBHOOK_SECRET not in repr(adapter)


def test_webhook_secret_is_optional() -> None:
    adapter = stripe.create("stripe", {"secret_key": "rk_live_abc"})
    assert adapter.kind == "payments"


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"secret_key": ""},
        {"secret_key": 42},
        {"secret_key": "pk_test_publishable"},
        {"secret_key": "sk_test_abc "},
        {"secret_key": "sk_test_abc", "webhook_secret": "not-whsec"},
        {"secret_key": "sk_test_abc", "webhook_secret": ""},
        {"secret_key": "sk_test_abc", "webhook_secret": "whsec_a b"},
    ],
)
def test_create_rejects_malformed_credentials(credentials: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="stripe"):
        stripe.create("stripe", credentials)


# ---- requests ---------------------------------------------------------------------------


def test_create_request_is_form_encoded_with_pinned_version() -> None:
    req = make_adapter().create_request(make_request())
    assert req.method == "POST"
    assert req.path == "/v1/payment_intents"
    assert req.headers == {
        "Authorization": f"Bearer {SECRET_KEY}",
        "Stripe-Version": "2024-06-20",
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
        "Idempotency-Key": "idem-123",
    }
    assert parse_qsl(req.body.decode()) == [
        ("amount", "2500"),
        ("currency", "eur"),
        ("payment_method_types[]", "card"),
        ("description", "deposit pay_01HZX"),
        ("metadata[campaign]", "welcome"),
        ("metadata[gateway_reference]", "pay_01HZX"),
        ("metadata[player_id]", "p-7f3a"),
        ("metadata[type]", "deposit"),
    ]


def test_create_request_never_sends_return_url() -> None:
    body = make_adapter().create_request(make_request()).body.decode()
    assert "return_url" not in body
    assert "casino.example" not in body


def test_reserved_metadata_cannot_be_overwritten() -> None:
    req = make_adapter().create_request(
        make_request(metadata={"gateway_reference": "forged", "type": "withdrawal", "x": "1"})
    )
    pairs = dict(parse_qsl(req.body.decode()))
    assert pairs["metadata[gateway_reference]"] == "pay_01HZX"
    assert pairs["metadata[type]"] == "deposit"
    assert pairs["metadata[x]"] == "1"


@pytest.mark.parametrize(
    ("method_type", "currency", "stripe_type"),
    [("card", "EUR", "card"), ("ewallet", "SEK", "card"), ("bank_transfer", "EUR", "sepa_debit"),
     ("crypto", "USD", "crypto")],
)
def test_method_type_mapping(method_type: str, currency: str, stripe_type: str) -> None:
    req = make_adapter().create_request(make_request(method_type=method_type, currency=currency))
    pairs = parse_qsl(req.body.decode())
    assert [v for k, v in pairs if k == "payment_method_types[]"] == [stripe_type]


@pytest.mark.parametrize(("method_type", "currency"), [("bank_transfer", "USD"),
                                                       ("crypto", "EUR")])
def test_methods_stripe_takes_in_one_currency_only_are_refused_before_sending(
    method_type: str, currency: str
) -> None:
    with pytest.raises(ProviderError) as info:
        make_adapter().create_request(make_request(method_type=method_type, currency=currency))
    err = info.value
    assert (err.provider_code, err.rejected, err.failover_safe) == (
        "unsupported_payment_method", True, True
    )


def test_amount_is_minor_units_and_special_characters_are_encoded() -> None:
    req = make_adapter().create_request(
        make_request(amount=1, currency="JPY", metadata={"note": "a&b=c [x]"})
    )
    pairs = dict(parse_qsl(req.body.decode()))
    assert pairs["amount"] == "1"
    assert pairs["currency"] == "jpy"
    assert pairs["metadata[note]"] == "a&b=c [x]"


def test_withdrawal_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ProviderError) as info:
        make_adapter().create_request(make_request(type="withdrawal"))
    err = info.value
    assert err.provider_code == "unsupported_operation"
    assert err.rejected is True
    assert err.failover_safe is True
    assert err.retry_same is False


def test_get_request_quotes_the_reference() -> None:
    adapter = make_adapter()
    req = adapter.get_request("pi_123")
    assert (req.method, req.path, req.body) == ("GET", "/v1/payment_intents/pi_123", b"")
    assert req.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert req.headers["Stripe-Version"] == "2024-06-20"
    assert "Idempotency-Key" not in req.headers
    assert adapter.get_request("../v1/charges?x=1").path == (
        "/v1/payment_intents/..%2Fv1%2Fcharges%3Fx%3D1"
    )


def test_health_request() -> None:
    req = make_adapter().health_request()
    assert (req.method, req.path) == ("GET", "/v1/payment_intents?limit=1")
    assert req.headers["Stripe-Version"] == "2024-06-20"


# ---- successful answers -----------------------------------------------------------------


@pytest.mark.parametrize("status", ["requires_payment_method", "requires_confirmation",
                                    "requires_action"])
def test_actionable_statuses_give_the_client_secret(status: str) -> None:
    result = make_adapter().parse_create(response(200, intent(status=status)), make_request())
    assert result == PaymentResult(
        status="requires_action",
        provider_reference="pi_3PabcDEF",
        amount=2500,
        currency="EUR",
        next_action=NextAction(type="sdk", provider="stripe",
                               client_secret="pi_3PabcDEF_secret_xyz"),
    )


def test_redirect_next_action_wins_over_sdk() -> None:
    obj = intent(status="requires_action", next_action={
        "type": "redirect_to_url",
        "redirect_to_url": {"url": "https://hooks.stripe.com/3ds/abc", "return_url": None},
    })
    result = make_adapter().parse_get(response(200, obj))
    assert result.next_action == NextAction(type="redirect", url="https://hooks.stripe.com/3ds/abc")


def test_sdk_action_for_other_next_action_types() -> None:
    obj = intent(status="requires_action", next_action={"type": "use_stripe_sdk",
                                                       "use_stripe_sdk": {}})
    result = make_adapter().parse_get(response(200, obj))
    assert result.next_action is not None
    assert result.next_action.type == "sdk"


def test_retryable_decline_stays_requires_action() -> None:
    obj = intent(last_payment_error={"type": "card_error", "code": "card_declined",
                                     "decline_code": "insufficient_funds"})
    result = make_adapter().parse_get(response(200, obj))
    assert result.status == "requires_action"
    assert result.decline_code is None
    assert result.next_action is not None and result.next_action.client_secret


@pytest.mark.parametrize(
    ("stripe_status", "unified"),
    [("processing", "processing"), ("requires_capture", "processing"),
     ("succeeded", "succeeded"), ("canceled", "canceled"), ("some_future_status", "pending")],
)
def test_status_map(stripe_status: str, unified: str) -> None:
    result = make_adapter().parse_get(response(200, intent(status=stripe_status)))
    assert result.status == unified
    assert result.next_action is None
    assert result.provider_reference == "pi_3PabcDEF"


def test_wrong_typed_fields_are_dropped_not_guessed() -> None:
    obj = intent(status="succeeded", amount=True, currency=5)
    result = make_adapter().parse_get(response(200, obj))
    assert (result.amount, result.currency) == (None, None)


def test_requires_action_without_client_secret_has_no_next_action() -> None:
    result = make_adapter().parse_get(response(200, intent(client_secret=None)))
    assert result.status == "requires_action"
    assert result.next_action is None


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"id": "pi_1", "status": "succ',
        b"",
        b"\xff\xfe\x00",
        b"[" * 100_000,
        b"[]",
        b"null",
        b'{"id": 5, "status": "succeeded"}',
        b'{"id": "pi_1"}',
        b'{"id": "pi_1", "status": "succeeded", "object": "charge"}',
        b'{"error": {"type": "api_error", "message": "x"}}',
    ],
)
def test_unusable_2xx_is_ambiguous(body: bytes) -> None:
    for parse in (
        lambda r: make_adapter().parse_create(r, make_request()),
        make_adapter().parse_get,
    ):
        with pytest.raises(ProviderError) as info:
            parse(UpstreamResponse(status=200, headers={}, body=body))
        err = info.value
        assert (err.retry_same, err.failover_safe, err.rejected) == (True, False, False)
        assert err.status == 200


# ---- error answers ----------------------------------------------------------------------


def classify(status: int, payload: Any, headers: dict[str, str] | None = None,
             op: str = "create") -> ProviderError:
    adapter = make_adapter()
    with pytest.raises(ProviderError) as info:
        if op == "create":
            adapter.parse_create(response(status, payload, headers), make_request())
        else:
            adapter.parse_get(response(status, payload, headers))
    return info.value


def flags(err: ProviderError) -> tuple[bool, bool, bool]:
    return err.rejected, err.failover_safe, err.retry_same


def test_card_error_with_intent_is_a_failed_payment() -> None:
    body = stripe_error(
        type="card_error", code="card_declined", decline_code="insufficient_funds",
        message="Your card has insufficient funds.",
        payment_intent=intent(last_payment_error={"code": "card_declined"}),
    )
    result = make_adapter().parse_create(response(402, body), make_request())
    assert result == PaymentResult(
        status="failed", provider_reference="pi_3PabcDEF", amount=2500, currency="EUR",
        decline_code="insufficient_funds", decline="hard",
    )


def test_card_error_without_decline_code_uses_code() -> None:
    body = stripe_error(type="card_error", code="expired_card", message="Expired.",
                        payment_intent=intent())
    result = make_adapter().parse_create(response(402, body), make_request())
    assert (result.status, result.decline_code) == ("failed", "expired_card")


@pytest.mark.parametrize(
    "payment_intent", [None, "pi_123", {"id": "pi_1"}, {"status": "requires_payment_method"}]
)
def test_card_error_without_usable_intent_is_a_final_decline(payment_intent: Any) -> None:
    # Stripe refused in its own shape: no money moved, and no other acquirer should be
    # tried with a card declined as fraudulent.
    body = stripe_error(type="card_error", code="card_declined", decline_code="fraudulent",
                        message="Your card was declined.", payment_intent=payment_intent)
    err = classify(402, body)
    assert flags(err) == (True, True, False)
    assert err.final is True
    assert err.provider_code == "fraudulent"
    assert err.status == 402


def test_402_with_garbage_body_is_not_failover_safe() -> None:
    err = classify(402, b"<html>declined</html>")
    assert flags(err) == (True, False, False)
    assert err.final is False


def test_idempotency_error() -> None:
    body = stripe_error(type="idempotency_error",
                        message="Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with.")
    err = classify(400, body)
    assert flags(err) == (True, False, False)
    assert err.provider_code == "idempotency_error"
    assert err.status == 400


@pytest.mark.parametrize("status", [409])
def test_conflict_is_retry_same(status: int) -> None:
    body = stripe_error(type="idempotency_error", code="idempotency_key_in_use",
                        message="There is currently another in-progress request using this "
                                "Idempotent Key.")
    err = classify(status, body)
    assert flags(err) == (False, False, True)
    assert err.provider_code == "idempotency_key_in_use"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize(
    "payload", [stripe_error(type="api_error", message="An unknown error occurred"),
                b"<html>bad gateway</html>", b""],
)
def test_server_errors_are_retry_same(status: int, payload: Any) -> None:
    err = classify(status, payload)
    assert flags(err) == (False, False, True)
    assert err.status == status


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize(
    "payload",
    [stripe_error(type="authentication_error", message="Invalid API Key provided: sk_test_***"),
     stripe_error(type="invalid_request_error", message="Invalid API Key provided: sk_test_***"),
     b"Unauthorized"],
)
def test_auth_errors_are_failover_safe(status: int, payload: Any) -> None:
    err = classify(status, payload)
    assert flags(err) == (True, True, False)
    assert err.status == status


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), ("0.5", 0.5), (None, None), ("Wed, 21 Oct 2015 07:28:00 GMT", None),
     ("-1", None), ("nan", None), ("inf", None)],
)
def test_rate_limit_is_failover_safe_with_retry_after(
    retry_after: str | None, expected: float | None
) -> None:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    err = classify(429, stripe_error(type="rate_limit_error", message="Too many requests"),
                   headers)
    assert flags(err) == (True, True, False)
    assert err.retry_after_s == expected
    assert err.provider_code == "rate_limit_error"


@pytest.mark.parametrize("status", [400, 404, 422])
def test_invalid_request_is_failover_safe(status: int) -> None:
    body = stripe_error(type="invalid_request_error", code="parameter_invalid_integer",
                        param="amount", message="Invalid integer: abc")
    err = classify(status, body)
    assert flags(err) == (True, True, False)
    assert err.provider_code == "parameter_invalid_integer"
    assert "Invalid integer" in err.message


def test_invalid_request_without_code_uses_type() -> None:
    err = classify(400, stripe_error(type="invalid_request_error", message="Invalid currency"))
    assert err.provider_code == "invalid_request_error"


def test_resource_missing_on_get() -> None:
    body = stripe_error(type="invalid_request_error", code="resource_missing", param="intent",
                        message="No such payment_intent: 'pi_nope'")
    err = classify(404, body, op="get")
    assert err.status == 404
    assert err.provider_code == "resource_missing"
    assert err.rejected is True
    assert err.retry_same is False


@pytest.mark.parametrize("status", [400, 404, 405, 413, 418])
def test_4xx_not_in_stripe_shape_is_not_failover_safe(status: int) -> None:
    err = classify(status, b"<html>nginx</html>")
    assert flags(err) == (True, False, False)
    assert err.status == status


@pytest.mark.parametrize("payload", [{"error": "nope"}, [], {"error": {"type": 5}}])
def test_odd_error_shapes_never_crash(payload: Any) -> None:
    err = classify(400, payload)
    assert err.rejected is True


@pytest.mark.parametrize("status", [301, 304, 100])
def test_other_statuses_are_ambiguous(status: int) -> None:
    assert flags(classify(status, b"")) == (False, False, True)


# ---- webhooks ---------------------------------------------------------------------------


def sign(body: bytes, timestamp: int, secret: str = WEBHOOK_SECRET) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def event(event_type: str = "payment_intent.succeeded", **overrides: Any) -> bytes:
    obj: dict[str, Any] = {
        "id": "evt_1PabcXYZ",
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1_718_899_990,
        "type": event_type,
        "livemode": False,
        "data": {"object": intent(status="succeeded", amount_received=2500)},
    }
    obj.update(overrides)
    return json.dumps(obj).encode()


def signed_headers(body: bytes, timestamp: int = NOW) -> dict[str, str]:
    return {"Stripe-Signature": f"t={timestamp},v1={sign(body, timestamp)}"}


@pytest.mark.parametrize(
    ("stripe_type", "unified"),
    [("payment_intent.succeeded", "payment.succeeded"),
     ("payment_intent.payment_failed", "payment.failed"),
     ("payment_intent.canceled", "payment.canceled"),
     ("payment_intent.processing", "payment.processing"),
     ("payment_intent.requires_action", "payment.requires_action")],
)
def test_webhook_event_types(stripe_type: str, unified: str) -> None:
    body = event(stripe_type)
    events = make_adapter().verify_webhook(signed_headers(body), body, NOW)
    assert len(events) == 1
    ev = events[0]
    assert ev.event_id == "evt_1PabcXYZ"
    assert ev.type == unified
    assert ev.provider_reference == "pi_3PabcDEF"
    assert ev.merchant_reference == "pay_01HZX"
    assert (ev.amount, ev.currency) == (2500, "EUR")
    assert ev.occurred_at == "2024-06-20T16:13:10Z"


@pytest.mark.parametrize("stripe_type", ["charge.succeeded", "payment_intent.created",
                                         "payment_intent.amount_capturable_updated"])
def test_other_event_types_are_acknowledged_and_ignored(stripe_type: str) -> None:
    body = event(stripe_type)
    assert make_adapter().verify_webhook(signed_headers(body), body, NOW) == []


def test_webhook_header_lookup_is_case_insensitive_and_allows_spaces() -> None:
    body = event()
    headers = {"stripe-signature": f"t={NOW}, v1={sign(body, NOW)}"}
    assert len(make_adapter().verify_webhook(headers, body, NOW)) == 1


def test_any_of_several_v1_signatures_verifies() -> None:
    body = event()
    header = f"t={NOW},v1={'0' * 64},v1={sign(body, NOW, 'whsec_old')},v1={sign(body, NOW)}"
    header += f",v0={sign(body, NOW, 'whsec_other')}"
    assert len(make_adapter().verify_webhook({"Stripe-Signature": header}, body, NOW)) == 1


def test_missing_fields_in_event_object() -> None:
    body = event(data={"object": {"id": "pi_1", "object": "payment_intent"}}, created="x")
    [ev] = make_adapter().verify_webhook(signed_headers(body), body, NOW)
    assert (ev.merchant_reference, ev.amount, ev.currency, ev.occurred_at) == (
        None, None, None, None
    )


@pytest.mark.parametrize(
    ("headers_for", "now", "reason"),
    [
        (lambda b: {}, NOW, "missing Stripe-Signature"),
        (lambda b: {"Stripe-Signature": ""}, NOW, "missing Stripe-Signature"),
        (lambda b: {"Stripe-Signature": "garbage"}, NOW, "no timestamp"),
        (lambda b: {"Stripe-Signature": f"v1={sign(b, NOW)}"}, NOW, "no timestamp"),
        (lambda b: {"Stripe-Signature": f"t=abc,v1={sign(b, NOW)}"}, NOW, "timestamp"),
        (lambda b: {"Stripe-Signature": f"t={'9' * 5000},v1={sign(b, NOW)}"}, NOW, "timestamp"),
        (lambda b: {"Stripe-Signature": f"t=1e9,v1={sign(b, NOW)}"}, NOW, "timestamp"),
        (lambda b: {"Stripe-Signature": f"t={NOW}"}, NOW, "no v1"),
        (lambda b: {"Stripe-Signature": f"t={NOW},v0={sign(b, NOW)}"}, NOW, "no v1"),
        (lambda b: {"Stripe-Signature": f"t={NOW},v1={sign(b, NOW, 'whsec_x')}"}, NOW,
         "signature mismatch"),
        (lambda b: {"Stripe-Signature": f"t={NOW},v1=ünicode"}, NOW, "signature mismatch"),
        (lambda b: {"Stripe-Signature": f"t={NOW + 1},v1={sign(b, NOW)}"}, NOW,
         "signature mismatch"),
        (lambda b: signed_headers(b, NOW - 301), NOW, "tolerance"),
        (lambda b: signed_headers(b, NOW + 301), NOW, "tolerance"),
        (lambda b: signed_headers(b), float("nan"), "tolerance"),
    ],
)
def test_webhook_rejections(headers_for: Any, now: float, reason: str) -> None:
    body = event()
    with pytest.raises(WebhookRejected, match=reason):
        make_adapter().verify_webhook(headers_for(body), body, now)


def test_tolerance_edge_is_accepted() -> None:
    body = event()
    adapter = make_adapter()
    assert len(adapter.verify_webhook(signed_headers(body, NOW - 300), body, NOW)) == 1
    assert len(adapter.verify_webhook(signed_headers(body, NOW + 300), body, NOW)) == 1


def test_tampered_body_is_rejected() -> None:
    body = event()
    headers = signed_headers(body)
    tampered = body.replace(b'"amount": 2500', b'"amount": 9999')
    assert tampered != body
    with pytest.raises(WebhookRejected, match="signature mismatch"):
        make_adapter().verify_webhook(headers, tampered, NOW)


def test_webhook_without_configured_secret_is_rejected() -> None:
    adapter = stripe.create("stripe", {"secret_key": SECRET_KEY})
    body = event()
    with pytest.raises(WebhookRejected, match="no webhook secret"):
        adapter.verify_webhook(signed_headers(body), body, NOW)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"type": "payment_intent.succeeded"}', "no id or type"),
        (b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {}}', "no payment intent"),
        (b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": 1}}}',
         "no payment intent"),
    ],
)
def test_signed_but_malformed_events_are_rejected(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookRejected, match=reason):
        make_adapter().verify_webhook(signed_headers(body), body, NOW)


def test_webhook_ack() -> None:
    status, content_type, body = make_adapter().webhook_ack()
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"received": True}


WEIRD_PAYLOADS: list[Any] = [
    {"id": "pi_1", "status": "requires_action", "next_action": {"redirect_to_url": "x"}},
    {"id": "pi_1", "status": "requires_action", "next_action": {"redirect_to_url": {"url": 5}}},
    {"id": "pi_1", "status": "requires_action", "next_action": []},
    {"id": "pi_1", "status": ["succeeded"]},
    {"id": "pi_1", "status": "succeeded", "amount": "2500", "currency": ["eur"]},
    {"id": "pi_1", "status": "succeeded", "amount": 1.5},
    {"error": {"type": "card_error", "payment_intent": {"id": "pi_1", "status": 5}}},
    {"error": {"type": "card_error", "decline_code": 7, "code": None}},
    {"error": {"type": "idempotency_error", "message": None}},
    {"error": {"type": "api_error", "message": ["x"]}},
    {"error": None},
    "just a string",
    12345,
]


@pytest.mark.parametrize("status", [200, 201, 400, 401, 402, 404, 409, 429, 500])
@pytest.mark.parametrize("payload", WEIRD_PAYLOADS)
def test_any_answer_gives_a_result_or_a_provider_error(status: int, payload: Any) -> None:
    adapter = make_adapter()
    for parse in (lambda r: adapter.parse_create(r, make_request()), adapter.parse_get):
        try:
            result = parse(response(status, payload))
        except ProviderError:
            continue
        assert isinstance(result, PaymentResult)
