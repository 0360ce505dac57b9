"""Stripe's decline codes read as soft or hard: may another acquirer approve this card?

Soft: Stripe (or the issuer) gave no reason that would hold at another acquirer: a bare
decline, "do not honor" without a reason, the issuer or the processor briefly unavailable.
Hard: the reason belongs to the card or the player and holds everywhere (no funds, a wrong
number or CVC, an expired, lost or stolen card, fraud, a closed account), or asking again
could hurt (a duplicate, a velocity limit, an authentication the player must complete).
A code missing from both tables is treated as hard by the gateway: never cascade on a
reason nobody has read. Codes from Stripe's list of decline codes
(https://docs.stripe.com/declines/codes).
"""

from __future__ import annotations

from adapters.base import Decline

SOFT = frozenset(
    {
        "generic_decline",
        "do_not_honor",
        "issuer_not_available",
        "processing_error",
        "reenter_transaction",
        "try_again_later",
        "call_issuer",
        "approve_with_id",
        "no_action_taken",
    }
)

HARD = frozenset(
    {
        "insufficient_funds",
        "incorrect_cvc",
        "invalid_cvc",
        "incorrect_number",
        "invalid_number",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "expired_card",
        "lost_card",
        "stolen_card",
        "pickup_card",
        "fraudulent",
        "merchant_blacklist",
        "security_violation",
        "restricted_card",
        "invalid_account",
        "card_not_supported",
        "currency_not_supported",
        "card_velocity_exceeded",
        "withdrawal_count_limit_exceeded",
        "duplicate_transaction",
        "new_account_information_available",
        "do_not_try_again",
        "revocation_of_authorization",
        "revocation_of_all_authorizations",
        "stop_payment_order",
        "transaction_not_allowed",
        "service_not_allowed",
        "not_permitted",
        "incorrect_pin",
        "invalid_pin",
        "pin_try_exceeded",
        "offline_pin_required",
        "online_or_offline_pin_required",
        "authentication_required",
        "incorrect_zip",
        "invalid_amount",
        "testmode_decline",
    }
)


def classify(decline_code: str | None) -> Decline | None:
    """"soft", "hard", or None for a code this table does not know."""
    if decline_code in SOFT:
        return "soft"
    if decline_code in HARD:
        return "hard"
    return None
