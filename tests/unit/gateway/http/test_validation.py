"""Request bodies against the OpenAPI components: what the document allows, the code takes."""

from __future__ import annotations

import pytest

from gateway.http.validation import AMOUNT_RULE, validate_body
from gateway.problems import ApiError

DEPOSIT = {"type": "deposit", "currency": "EUR", "player_id": "p", "method": {"type": "card"}}


def test_a_whole_number_with_a_zero_fraction_is_that_integer():
    body = validate_body("PaymentRequest", {**DEPOSIT, "amount": 1050.0})
    assert body["amount"] == 1050 and type(body["amount"]) is int
    refund = validate_body("RefundRequest", {"amount": 999_999_999_999.0})
    assert refund["amount"] == 999_999_999_999 and type(refund["amount"]) is int


@pytest.mark.parametrize("amount", [10.5, 0.0, -1.0, 1e13, 0.1])
def test_fractions_and_out_of_range_floats_are_refused(amount: float):
    with pytest.raises(ApiError) as err:
        validate_body("PaymentRequest", {**DEPOSIT, "amount": amount})
    assert err.value.code == "invalid_amount"
    assert err.value.detail == AMOUNT_RULE


def test_launch_currency_must_be_one_the_gateway_knows():
    launch = {"mode": "demo", "currency": "AAA"}
    with pytest.raises(ApiError) as err:
        validate_body("LaunchRequest", launch)
    assert err.value.code == "unsupported_currency"
    assert validate_body("LaunchRequest", {"mode": "demo", "currency": "XXX"})["currency"] == "XXX"


@pytest.mark.parametrize(
    "url",
    ["hTtp://KTK0L[A1D6`%'y", "HTtp://]", "http://host:port/x", "http://", "ftp://x", "http://a b"],
)
def test_a_return_url_that_is_not_an_http_url_is_a_400(url: str):
    for component, body in (
        ("PaymentRequest", {**DEPOSIT, "amount": 100, "return_url": url}),
        ("LaunchRequest", {"mode": "demo", "return_url": url}),
    ):
        with pytest.raises(ApiError) as err:
            validate_body(component, body)
        assert (err.value.code, err.value.detail) == (
            "invalid_request", "return_url must be an http(s) URL"
        )
