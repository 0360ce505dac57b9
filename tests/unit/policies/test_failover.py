"""The double-charge rule as a table: which step follows which attempt."""

import pytest

from policies.failover import Step, decline_step, payment_step, read_may_fail_over


@pytest.mark.parametrize(
    ("attempt", "retries_left", "owned", "step"),
    [
        # (succeeded, maybe_delivered, failover_safe, retry_same)
        ((True, True, False, False), 0, False, Step.DONE),
        ((True, True, False, False), 0, True, Step.DONE),
        # refused connection, breaker open, quota: nothing was sent
        ((False, False, True, False), 1, False, Step.FAILOVER),
        # definite rejection the adapter marks safe (401, 400, 429)
        ((False, True, True, False), 1, False, Step.FAILOVER),
        # timeout or 5xx: same provider, same key; then unknown
        ((False, True, False, True), 1, False, Step.RETRY_SAME),
        ((False, True, False, True), 0, False, Step.UNKNOWN),
        # an answer that does not prove the provider refused before acting (a 4xx not in the
        # provider's error shape, "key in use"): the payment stays there, unknown (202)
        ((False, True, False, False), 1, False, Step.UNKNOWN),
        # After an attempt that may have charged, nothing moves the payment elsewhere:
        ((False, False, True, False), 1, True, Step.UNKNOWN),  # breaker opened meanwhile
        ((False, True, True, False), 1, True, Step.UNKNOWN),  # 429 on the retry
        ((False, True, False, False), 1, True, Step.UNKNOWN),  # "key in use" style refusal
        ((False, False, True, True), 1, True, Step.RETRY_SAME),
        ((False, True, False, True), 0, True, Step.UNKNOWN),
    ],
)
def test_payment_step(attempt, retries_left, owned, step):
    succeeded, maybe_delivered, failover_safe, retry_same = attempt
    assert (
        payment_step(
            succeeded=succeeded,
            maybe_delivered=maybe_delivered,
            failover_safe=failover_safe,
            retry_same=retry_same,
            retries_left=retries_left,
            owned=owned,
        )
        is step
    )


@pytest.mark.parametrize("owned", [False, True])
def test_a_final_refusal_is_answered_not_failed_over(owned: bool):
    # A hard decline took no money and no other provider should see it; after an attempt
    # that may have charged, though, nothing but the owner's outcome counts.
    step = payment_step(
        succeeded=False,
        maybe_delivered=True,
        failover_safe=True,
        retry_same=False,
        retries_left=1,
        owned=owned,
        final=True,
    )
    assert step is (Step.UNKNOWN if owned else Step.REJECT)


@pytest.mark.parametrize("owned", [False, True])
def test_a_soft_decline_refused_as_an_error_cascades_only_when_asked(owned: bool):
    # A soft decline in an error answer (Stripe's card_error without an intent) took no
    # money: with cascading on, the next provider may try; an owned payment still stays.
    step = payment_step(
        succeeded=False,
        maybe_delivered=True,
        failover_safe=True,
        retry_same=False,
        retries_left=1,
        owned=owned,
        final=True,
        cascade=True,
    )
    assert step is (Step.UNKNOWN if owned else Step.FAILOVER)


@pytest.mark.parametrize(
    ("decline", "cascade", "step"),
    [
        ("soft", True, Step.FAILOVER),
        ("soft", False, Step.DONE),
        ("hard", True, Step.DONE),
        ("hard", False, Step.DONE),
        # A reason the adapter cannot read is never taken for a soft one.
        (None, True, Step.DONE),
    ],
)
def test_a_decline_cascades_only_when_soft_and_asked(decline, cascade, step):
    assert decline_step(decline, cascade_soft_declines=cascade) is step


def test_reads_fail_over_once():
    assert read_may_fail_over(0) is True
    assert read_may_fail_over(1) is False
    assert read_may_fail_over(1, max_attempts=3) is True
