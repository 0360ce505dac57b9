"""The forward-only rules of refunds and payouts, as tables."""

from __future__ import annotations

import pytest

from gateway.payments.status import advance_refund, next_status, payout_event


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        ("pending", "succeeded", "succeeded"),
        ("pending", "failed", "failed"),
        ("pending", "canceled", "canceled"),
        # A refund can bounce after it succeeded: the money came back.
        ("succeeded", "failed", "failed"),
        ("succeeded", "pending", "succeeded"),
        ("failed", "succeeded", "failed"),
        ("canceled", "succeeded", "canceled"),
        ("pending", "something_new", "pending"),
    ],
)
def test_a_refund_moves_forward_only(current: str, new: str, expected: str) -> None:
    assert advance_refund(current, new) == expected


@pytest.mark.parametrize(
    ("current", "event_type", "expected"),
    [
        ("processing", "payment.failed", "payment.failed"),
        ("pending", "payment.succeeded", "payment.succeeded"),
        # A payout that fails after it succeeded came back from the bank.
        ("succeeded", "payment.failed", "payment.reversed"),
        ("succeeded", "payment.reversed", "payment.reversed"),
    ],
)
def test_a_payout_failing_after_success_is_reversed(
    current: str, event_type: str, expected: str
) -> None:
    assert payout_event(current, event_type) == expected


def test_a_refunded_payment_is_announced_once() -> None:
    assert next_status("succeeded", "payment.refunded") == ("refunded", True)
    assert next_status("refunded", "payment.refunded") == ("refunded", False)
