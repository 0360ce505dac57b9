"""What to do with an Idempotency-Key, given the claim recorded for it: a table of cases."""

import pytest

from policies.idempotency import RECORD_TTL_S, ClaimRecord, Verdict, fingerprint, judge

NOW = 1_000_000.0
LEASE = 60.0
FP = fingerprint("web", {"amount": 1})


def claim(**changes: object) -> ClaimRecord:
    base: dict[str, object] = {
        "state": "in_progress",
        "fingerprint": FP,
        "token": "t1",
        "owner": None,
        "unknown": False,
        "since": NOW - 1,
        "updated_at": NOW - 1,
    }
    base.update(changes)
    return ClaimRecord(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("existing", "verdict"),
    [
        (None, Verdict.CLAIM),
        # Another body under the same key, whatever the claim's state.
        (claim(fingerprint="other"), Verdict.CONFLICT),
        (claim(state="done", fingerprint="other", http_status=201), Verdict.CONFLICT),
        (claim(state="done", http_status=201), Verdict.REPLAY),
        (claim(state="done", unknown=True, owner="stripe", http_status=202), Verdict.REPLAY),
        # A holder within its lease is waited for, with or without an owner.
        (claim(), Verdict.WAIT),
        (claim(owner="stripe", since=NOW - LEASE), Verdict.WAIT),
        # A holder past its lease: it named a provider (only that one may be asked) or not.
        (claim(owner="stripe", since=NOW - LEASE - 1), Verdict.TAKE_OVER_ORPHAN),
        (claim(since=NOW - LEASE - 1), Verdict.TAKE_OVER_FRESH),
        # A settled key expires after a day; an unknown outcome never does.
        (claim(state="done", http_status=201, updated_at=NOW - RECORD_TTL_S - 1), Verdict.CLAIM),
        (
            claim(
                state="done",
                fingerprint="other",
                http_status=201,
                updated_at=NOW - RECORD_TTL_S - 1,
            ),
            Verdict.CLAIM,
        ),
        (
            claim(
                state="done",
                unknown=True,
                owner="stripe",
                http_status=202,
                updated_at=NOW - 10 * RECORD_TTL_S,
            ),
            Verdict.REPLAY,
        ),
    ],
)
def test_judge(existing: ClaimRecord | None, verdict: Verdict) -> None:
    assert judge(existing, FP, NOW, lease_s=LEASE) is verdict


def test_fingerprints_are_per_client_and_ignore_key_order() -> None:
    assert fingerprint("web", {"a": 1, "b": 2}) == fingerprint("web", {"b": 2, "a": 1})
    assert fingerprint("web", {"a": 1}) != fingerprint("mobile", {"a": 1})
    assert fingerprint("web", {"a": 1}) != fingerprint("web", {"a": 2})
