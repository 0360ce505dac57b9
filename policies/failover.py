"""May this failure fail over? The rule that keeps a failover from becoming a double charge.

A payment moves to the next provider only when the failed attempt certainly took no money:
the connection was refused (nothing was sent), the provider was skipped before sending
(breaker open, cooling down after its 429), or the provider answered a definite rejection
its adapter marks safe to retry elsewhere. Anything that may have reached the provider and
is not a definite answer (timeout, reset, 5xx, unreadable 2xx) is retried only on the same
provider with the same idempotency key, and when still unknown the payment is reported as
`processing` with that provider as its owner.
"""

from __future__ import annotations

from enum import Enum


class Step(Enum):
    DONE = "done"
    RETRY_SAME = "retry_same"
    FAILOVER = "failover"
    UNKNOWN = "unknown"  # stop: outcome unknown, the provider owns the payment
    REJECT = "reject"  # stop: definite refusal that another provider must not see


def payment_step(
    *,
    succeeded: bool,
    maybe_delivered: bool,
    failover_safe: bool,
    retry_same: bool,
    retries_left: int,
    owned: bool = False,
) -> Step:
    """The next step after one attempt at one provider.

    `owned`: an earlier attempt at this same provider may already have taken the money.
    From then on the payment belongs to that provider whatever the later attempts say: a
    retry skipped by its breaker, refused by its quota or answered 429 proves nothing about
    the first attempt, so it can end in UNKNOWN but never in FAILOVER or REJECT.
    """
    if succeeded:
        return Step.DONE
    delivered_now = maybe_delivered and not failover_safe
    if retry_same and (delivered_now or owned):
        return Step.RETRY_SAME if retries_left > 0 else Step.UNKNOWN
    if owned:
        return Step.UNKNOWN
    if not maybe_delivered or failover_safe:
        return Step.FAILOVER
    if retry_same:
        return Step.RETRY_SAME if retries_left > 0 else Step.UNKNOWN
    return Step.REJECT


def read_may_fail_over(attempt: int, max_attempts: int = 2) -> bool:
    """Reads move no money: fail over, but try at most `max_attempts` providers in all."""
    return attempt + 1 < max_attempts
