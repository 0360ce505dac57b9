"""How a payment's (and a refund's) status may change: forward only, whatever path writes it.

    pending -> requires_action -> processing -> succeeded | failed
    succeeded -> canceled | refunded | reversed      (news after the money moved)

A late or replayed answer never moves a payment back (`processing` after `succeeded` is
ignored), and `failed` is not final: a Stripe intent whose card was declined can still
succeed with another card. `succeeded` never becomes `failed` (a late failure is news about
some other attempt); what follows a success is a new state of its own, announced as a new
event: a cancellation of the authorisation (`canceled`), a refund (`refunded`), a
chargeback (`reversed`). Those three are final.
"""

from __future__ import annotations

RANK = {
    "pending": 0,
    "requires_action": 1,
    "processing": 2,
    "failed": 3,
    "succeeded": 3,
    "canceled": 4,
    "refunded": 4,
    "reversed": 4,
}
FINAL = frozenset({"canceled", "refunded", "reversed"})
# Reads of the provider need not ask again about these.
SETTLED = frozenset({"succeeded", *FINAL})

STATUS_OF_EVENT = {
    "payment.succeeded": "succeeded",
    "payment.failed": "failed",
    "payment.canceled": "canceled",
    "payment.processing": "processing",
    "payment.requires_action": "requires_action",
    "payment.refunded": "refunded",
    "payment.reversed": "reversed",
}


def advance(current: str, new: str) -> str:
    """The status after `new` is learnt about a payment that is `current`."""
    if current in FINAL or new not in RANK:
        return current
    if current == "succeeded" and new == "failed":
        return current
    return new if RANK[new] >= RANK.get(current, 0) else current


def next_status(current: str, event_type: str) -> tuple[str, bool]:
    """(the payment's status after a provider event, whether the event is announced)."""
    wanted = STATUS_OF_EVENT.get(event_type)
    if wanted is None:
        return current, False
    status = advance(current, wanted)
    if wanted == "refunded" and current == "refunded":
        # Only events make a payment refunded (a webhook, or the gateway's own refunds
        # completing it), and whichever came first announced it.
        return status, False
    # Announced also when the status already was `wanted` (a read-back may have learnt it
    # from the provider first): the backend hears of every outcome from an event.
    return status, status == wanted


def payout_event(current: str, event_type: str) -> str:
    """A payout's provider event as the payment sees it: a payout that fails after it
    succeeded came back from the bank, which is news of its own (`reversed`)."""
    if current == "succeeded" and event_type == "payment.failed":
        return "payment.reversed"
    return event_type


# A refund: pending -> succeeded -> failed (a refund can bounce after it succeeded: the money
# came back), or pending -> failed | canceled. failed and canceled are final.
REFUND_RANK = {"pending": 0, "succeeded": 1, "failed": 2, "canceled": 2}
REFUND_FINAL = frozenset({"failed", "canceled"})
STATUS_OF_REFUND_EVENT = {
    "refund.succeeded": "succeeded",
    "refund.failed": "failed",
    "refund.canceled": "canceled",
}


def advance_refund(current: str, new: str) -> str:
    if current in REFUND_FINAL or new not in REFUND_RANK:
        return current
    return new if REFUND_RANK[new] >= REFUND_RANK.get(current, 0) else current
