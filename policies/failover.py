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
    REJECT = "reject"  # stop: a definite refusal that took no money and must not cascade


def payment_step(
    *,
    succeeded: bool,
    maybe_delivered: bool,
    failover_safe: bool,
    retry_same: bool,
    retries_left: int,
    owned: bool = False,
    final: bool = False,
    cascade: bool = False,
) -> Step:
    """The next step after one attempt at one provider.

    An attempt *may have acted* when it may have reached the provider and the answer does
    not prove the provider refused before acting. From then on (`owned` for the attempts
    after it) the payment belongs to that provider whatever later attempts say: a retry
    skipped by its breaker, refused by its quota or answered 429 proves nothing about the
    first attempt. Such a payment is retried on the same provider with the same key, or
    reported unknown (202): it is never failed over and never answered with an error that
    would free its key.

    `final`: a definite refusal that took no money but that no other provider should see
    (a hard decline); the client gets the refusal. `cascade`: this refusal is a soft decline
    and the route cascades soft declines (`decline_step`), so the next provider may try.
    """
    if succeeded:
        return Step.DONE
    may_have_acted = maybe_delivered and not failover_safe
    if may_have_acted or owned:
        return Step.RETRY_SAME if retry_same and retries_left > 0 else Step.UNKNOWN
    if final and not cascade:
        return Step.REJECT
    return Step.FAILOVER


def decline_step(decline: str | None, *, cascade_soft_declines: bool) -> Step:
    """After a provider definitely declined a deposit (no money taken): stop or cascade?

    Only a soft decline (issuer unavailable, a bare "refused": another acquirer may approve
    the same card) moves on, and only where the route asks for it. A hard decline
    (insufficient funds, a stolen card, fraud) and a decline the adapter cannot read stop
    here: asking another acquirer would only repeat the refusal, or worse. Declines that
    arrive after the player acted (3-D Secure, a bank redirect) come by webhook and never
    reach this function: they never cascade silently.
    """
    if decline == "soft" and cascade_soft_declines:
        return Step.FAILOVER
    return Step.DONE


def read_may_fail_over(attempt: int, max_attempts: int = 2) -> bool:
    """Reads move no money: fail over, but try at most `max_attempts` providers in all."""
    return attempt + 1 < max_attempts
