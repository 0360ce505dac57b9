"""The Stripe and Adyen adapters' refunds and payouts against their simulators, over real
sockets: what each refuses reads as a refusal that refunded nothing."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from adapters import adyen, stripe
from adapters.base import (
    BankAccount,
    PaymentRequest,
    ProviderError,
    RefundRequest,
    UpstreamRequest,
    UpstreamResponse,
)
from simulators.stack import Stack


async def send(
    http: aiohttp.ClientSession, base: str, request: UpstreamRequest
) -> UpstreamResponse:
    async with http.request(
        request.method, base + request.path, headers=request.headers, data=request.body
    ) as resp:
        return UpstreamResponse(resp.status, dict(resp.headers), await resp.read())


def deposit(**changes: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "type": "deposit", "amount": 2500, "currency": "EUR", "player_id": "p-1",
        "method_type": "card", "return_url": "https://casino.example/r", "metadata": {},
        "reference": "gw_sim_ref", "idempotency_key": "cgw-sim-ref",
    }
    fields.update(changes)
    return PaymentRequest(**fields)


async def test_stripe_refunds_only_a_succeeded_intent_and_no_more_than_it(stack: Stack):
    adapter = stripe.create("stripe", {"secret_key": stack.secrets.stripe_secret_key})
    base = stack.url("stripe")
    async with aiohttp.ClientSession() as http:
        created = adapter.parse_create(await send(http, base, adapter.create_request(deposit())),
                                       deposit())
        refund = RefundRequest(created.provider_reference, 1000, "EUR", "rf_1", "k-1")
        with pytest.raises(ProviderError) as info:
            adapter.parse_refund(await send(http, base, adapter.refund_request(refund)), refund)
        assert (info.value.provider_code, info.value.failover_safe) == (
            "charge_not_refundable", True
        )
        async with http.post(
            f"{base}/_sim/payment_intents/{created.provider_reference}/complete",
            json={"outcome": "succeeded"},
        ) as resp:
            assert resp.status == 200
        made = adapter.parse_refund(await send(http, base, adapter.refund_request(refund)), refund)
        again = adapter.parse_refund(await send(http, base, adapter.refund_request(refund)), refund)
        assert made == again and made.status == "succeeded"  # the same key: one refund
        over = RefundRequest(created.provider_reference, 1501, "EUR", "rf_2", "k-2")
        with pytest.raises(ProviderError) as info:
            adapter.parse_refund(await send(http, base, adapter.refund_request(over)), over)
        assert (info.value.provider_code, info.value.failover_safe) == ("amount_too_large", True)


async def test_adyen_refunds_an_authorised_payment_and_pays_out_by_transfer(stack: Stack):
    adapter = adyen.create("adyen", {
        "api_key": stack.secrets.adyen_api_key, "merchant_account": "DemoCasino",
        "balance_account_id": "BA1",
    })
    base = stack.url("adyen")
    async with aiohttp.ClientSession() as http:
        created = adapter.parse_create(await send(http, base, adapter.create_request(deposit())),
                                       deposit())
        refund = RefundRequest(created.provider_reference, 1000, "EUR", "rf_1", "k-1")
        with pytest.raises(ProviderError) as info:
            adapter.parse_refund(await send(http, base, adapter.refund_request(refund)), refund)
        assert (info.value.provider_code, info.value.failover_safe) == ("167", True)
        async with http.post(f"{base}/_sim/payments/{created.provider_reference}/complete",
                             json={"outcome": "authorised"}) as resp:
            assert resp.status == 200
        made = adapter.parse_refund(await send(http, base, adapter.refund_request(refund)), refund)
        assert made.status == "pending" and made.provider_reference
        over = RefundRequest(created.provider_reference, 1501, "EUR", "rf_2", "k-2")
        with pytest.raises(ProviderError) as info:
            adapter.parse_refund(await send(http, base, adapter.refund_request(over)), over)
        assert (info.value.provider_code, info.value.failover_safe) == ("137", True)

        payout = deposit(
            type="withdrawal", method_type="bank_transfer", return_url=None,
            reference="gw_payout", idempotency_key="cgw-payout",
            bank_account=BankAccount("NL91ABNA0417164300", "A. Player"),
        )
        sent = adapter.parse_create(await send(http, base, adapter.create_request(payout)),
                                    payout)
        assert sent.status == "processing"
        bad = deposit(
            type="withdrawal", method_type="bank_transfer", return_url=None,
            reference="gw_payout_2", idempotency_key="cgw-payout-2",
            bank_account=BankAccount("NL00", "A. Player"),
        )
        request = adapter.create_request(bad)
        with pytest.raises(ProviderError) as info:
            adapter.parse_create(await send(http, base, request), bad)
        assert (info.value.provider_code, info.value.failover_safe) == ("30_112", True)
        assert json.loads(request.body)["counterparty"]["bankAccount"]["accountIdentification"]
