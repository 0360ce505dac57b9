"""The PaymentIntent object: building a new one from the create parameters, and moving it to
an outcome (succeeded, declined, canceled, processing, requires_action).
"""

from __future__ import annotations

import time
from typing import Any

from simulators.stripe.params import as_list, parse_amount, parse_currency, parse_metadata
from simulators.stripe.wire import DOCS_URL, StripeApiError, rand

# Payment method types the simulated account has enabled, with the currencies each accepts
# (None: any).
PAYMENT_METHOD_TYPES: dict[str, frozenset[str] | None] = {
    "card": None,
    "link": None,
    "customer_balance": None,
    "sepa_debit": frozenset({"eur"}),
    "ideal": frozenset({"eur"}),
    "bancontact": frozenset({"eur"}),
    "us_bank_account": frozenset({"usd"}),
    "crypto": frozenset({"usd"}),
}

KNOWN_PARAMS = frozenset({
    "amount", "currency", "payment_method_types", "automatic_payment_methods", "description",
    "metadata", "capture_method", "confirm", "return_url", "receipt_email",
})

OUTCOMES = ("succeeded", "payment_failed", "canceled", "processing", "requires_action")
TERMINAL = frozenset({"succeeded", "canceled"})
MUTABLE = frozenset({
    "requires_payment_method", "requires_confirmation", "requires_action", "processing",
})


def new_intent(params: dict[str, Any], version: str) -> dict[str, Any]:
    unknown = sorted(set(params) - KNOWN_PARAMS)
    if unknown:
        raise StripeApiError(
            400, f"Received unknown parameter: {unknown[0]}", code="parameter_unknown",
            param=unknown[0],
        )
    amount = parse_amount(params)
    currency = parse_currency(params)
    metadata = parse_metadata(params)

    confirm = params.get("confirm", "false")
    if confirm not in ("true", "false"):
        raise StripeApiError(400, f"Invalid boolean: {confirm}", param="confirm")
    if confirm == "true":
        raise StripeApiError(
            400,
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            code="payment_intent_unexpected_state", param="payment_method",
        )
    if "return_url" in params:
        raise StripeApiError(
            400, "You can only specify `return_url` when `confirm` is true.",
            param="return_url",
        )

    automatic: dict[str, Any] | None = None
    if "payment_method_types" in params:
        if "automatic_payment_methods" in params:
            raise StripeApiError(
                400,
                "You may only specify one of these parameters: automatic_payment_methods, "
                "payment_method_types.",
                param="payment_method_types",
            )
        types = as_list(params["payment_method_types"], "payment_method_types")
        if not types:
            raise StripeApiError(400, "Invalid array", param="payment_method_types")
        for method in types:
            if method not in PAYMENT_METHOD_TYPES:
                raise StripeApiError(
                    400,
                    f'The payment method type "{method}" is invalid. Please ensure the '
                    "provided type is activated in your dashboard.",
                    code="payment_intent_invalid_parameter", param="payment_method_types",
                )
            allowed = PAYMENT_METHOD_TYPES[method]
            if allowed is not None and currency not in allowed:
                raise StripeApiError(
                    400,
                    f"The currency provided ({currency}) is invalid. Payments with {method} "
                    f"support the following currencies: {', '.join(sorted(allowed))}.",
                    code="payment_intent_invalid_parameter", param="currency",
                )
    else:
        apm = params.get("automatic_payment_methods")
        enabled = isinstance(apm, dict) and apm.get("enabled") == "true"
        if apm is not None and not isinstance(apm, dict):
            raise StripeApiError(400, "Invalid hash", param="automatic_payment_methods")
        if enabled or (apm is None and version >= "2023-08-16"):
            automatic = {"enabled": True, "allow_redirects": "always"}
        types = ["card"]

    capture = params.get("capture_method") or (
        "automatic_async" if version >= "2024-04-10" else "automatic"
    )
    if capture not in ("automatic", "automatic_async", "manual"):
        raise StripeApiError(400, f"Invalid capture_method: {capture}", param="capture_method")
    for name in ("description", "receipt_email"):
        if name in params and not isinstance(params[name], str):
            raise StripeApiError(400, f"Invalid string: {name}", param=name)

    intent_id = f"pi_{rand(24)}"
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": automatic,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture,
        "client_secret": f"{intent_id}_secret_{rand(25)}",
        "confirmation_method": "automatic",
        "created": int(time.time()),
        "currency": currency,
        "customer": None,
        "description": params.get("description"),
        "invoice": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {m: {} for m in types},
        "payment_method_types": types,
        "processing": None,
        "receipt_email": params.get("receipt_email"),
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def decline(intent: dict[str, Any], decline_code: str) -> dict[str, Any]:
    """Marks the intent declined; returns the error object Stripe reports the decline with."""
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": decline_code,
        "doc_url": f"{DOCS_URL}#card-declined",
        "message": "Your card was declined.",
        "payment_method": {"id": f"pm_{rand(24)}", "object": "payment_method", "type": "card"},
    }
    intent.update(
        status="requires_payment_method", last_payment_error=error, payment_method=None,
        next_action=None,
    )
    return error


def apply_outcome(intent: dict[str, Any], outcome: str, decline_code: str) -> str:
    """Moves the intent; returns the type of the event Stripe would send."""
    if outcome == "succeeded":
        intent.update(
            payment_method=f"pm_{rand(24)}", next_action=None, last_payment_error=None
        )
        if intent["capture_method"] == "manual":
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            return "payment_intent.amount_capturable_updated"
        intent.update(
            status="succeeded", amount_received=intent["amount"],
            latest_charge=f"ch_{rand(24)}",
        )
        return "payment_intent.succeeded"
    if outcome == "payment_failed":
        decline(intent, decline_code)
        return "payment_intent.payment_failed"
    if outcome == "canceled":
        intent.update(status="canceled", canceled_at=int(time.time()), next_action=None)
        return "payment_intent.canceled"
    if outcome == "processing":
        intent.update(status="processing", next_action=None)
        return "payment_intent.processing"
    intent.update(
        status="requires_action",
        next_action={
            "type": "redirect_to_url",
            "redirect_to_url": {
                "url": "https://hooks.stripe.com/3d_secure_2/hosted?payment_intent="
                f"{intent['id']}&payment_intent_client_secret={intent['client_secret']}",
                "return_url": None,
            },
        },
    )
    return "payment_intent.requires_action"
