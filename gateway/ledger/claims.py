"""Idempotency claims in the ledger: claim, stamp the owner, finish, abandon, resolve.

Each function is one transaction (see `gateway.ledger.database`). Every write to a claim in
progress names its fence token in the WHERE clause: a request whose claim was taken over
changes nothing (`LostClaim`). What to do with an existing claim is `policies.idempotency`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gateway.ledger.database import Tx
from gateway.ledger.payments import PaymentRecord, insert_payment
from policies.idempotency import (
    Claimed,
    ClaimRecord,
    Conflict,
    LostClaim,
    Replay,
    Verdict,
    judge,
)

_COLUMNS = (
    "state, fingerprint, token, owner, unknown, since, updated_at, http_status, answer, payment_id"
)
_WHERE = "WHERE client_id = ? AND idem_key = ?"


def _record(row: Sequence[Any]) -> ClaimRecord:
    state, fp, token, owner, unknown, since, updated, status, answer, payment_id = row
    return ClaimRecord(
        state=state,
        fingerprint=fp,
        token=token,
        owner=owner,
        unknown=bool(unknown),
        since=float(since),
        updated_at=float(updated),
        http_status=status,
        answer=orjson.loads(answer) if answer else None,
        payment_id=payment_id,
    )


def read_claim(tx: Tx, client_id: str, key: str) -> ClaimRecord | None:
    row = tx.one(f"SELECT {_COLUMNS} FROM idempotency_claims {_WHERE}", client_id, key)
    return _record(row) if row else None


def claim(
    tx: Tx,
    client_id: str,
    key: str,
    fp: str,
    token: str,
    now: float,
    lease_s: float,
    owner: str | None = None,
) -> Claimed | Replay | Conflict:
    """Claim the key for `token`, or say what the request should do instead.

    `owner`, when given, is recorded with a fresh claim: the provider the request will ask
    first is on record in the same write that claims the key."""
    inserted = tx.run(
        "INSERT INTO idempotency_claims (client_id, idem_key, fingerprint, state, token, owner, "
        "unknown, since, created_at, updated_at) "
        "VALUES (?, ?, ?, 'in_progress', ?, ?, 0, ?, ?, ?) "
        "ON CONFLICT (client_id, idem_key) DO NOTHING",
        client_id,
        key,
        fp,
        token,
        owner,
        now,
        now,
        now,
    )
    if inserted:
        return Claimed(client_id, key, fp, token, stamped=owner)
    row = tx.one(
        f"SELECT {_COLUMNS} FROM idempotency_claims {_WHERE}{tx.for_update}", client_id, key
    )
    existing = _record(row) if row else None
    verdict = judge(existing, fp, now, lease_s=lease_s)
    if verdict is Verdict.CONFLICT:
        return Conflict("different_body")
    if verdict is Verdict.WAIT:
        return Conflict("in_progress")
    if verdict is Verdict.REPLAY:
        assert existing is not None
        return Replay(existing)
    if verdict is Verdict.TAKE_OVER_ORPHAN:
        assert existing is not None
        tx.run(
            f"UPDATE idempotency_claims SET token = ?, since = ?, updated_at = ? {_WHERE}",
            token,
            now,
            now,
            client_id,
            key,
        )
        return Claimed(client_id, key, fp, token, owner=existing.owner)
    # A fresh claim: none existed (it went between the two statements), the old one expired,
    # or its holder stopped before naming any provider.
    tx.run(
        "INSERT INTO idempotency_claims (client_id, idem_key, fingerprint, state, token, owner, "
        "unknown, since, created_at, updated_at) "
        "VALUES (?, ?, ?, 'in_progress', ?, ?, 0, ?, ?, ?) "
        "ON CONFLICT (client_id, idem_key) DO UPDATE SET fingerprint = excluded.fingerprint, "
        "state = 'in_progress', token = excluded.token, owner = excluded.owner, unknown = 0, "
        "http_status = NULL, answer = NULL, payment_id = NULL, since = excluded.since, "
        "created_at = excluded.created_at, updated_at = excluded.updated_at",
        client_id,
        key,
        fp,
        token,
        owner,
        now,
        now,
        now,
    )
    return Claimed(client_id, key, fp, token, stamped=owner)


def stamp_owner(tx: Tx, held: Claimed, provider: str, now: float) -> None:
    """Record that `provider` is about to be asked; LostClaim if the claim is not ours."""
    changed = tx.run(
        f"UPDATE idempotency_claims SET owner = ?, since = ?, updated_at = ? {_WHERE} "
        "AND token = ? AND state = 'in_progress'",
        provider,
        now,
        now,
        held.client_id,
        held.key,
        held.token,
    )
    if not changed:
        raise LostClaim(held.key)


def _attempts(tx: Tx, held: Claimed, attempts: Sequence[dict[str, Any]], now: float) -> None:
    if attempts:
        tx.many(
            "INSERT INTO payment_attempts (client_id, idem_key, provider, outcome, error_code, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (held.client_id, held.key, a["provider"], a["outcome"], a.get("error_code"), now)
                for a in attempts
            ],
        )


def finish(
    tx: Tx,
    held: Claimed,
    http_status: int,
    answer: dict[str, Any],
    payment: PaymentRecord | None,
    *,
    owner: str | None,
    unknown: bool,
    now: float,
) -> None:
    """Settle the claim with its answer and record the payment, in one transaction."""
    changed = tx.run(
        "UPDATE idempotency_claims SET state = 'done', http_status = ?, answer = ?, owner = ?, "
        f"unknown = ?, payment_id = ?, updated_at = ? {_WHERE} AND token = ? "
        "AND state = 'in_progress'",
        http_status,
        orjson.dumps(answer).decode(),
        owner,
        1 if unknown else 0,
        payment.payment_id if payment else None,
        now,
        held.client_id,
        held.key,
        held.token,
    )
    if not changed:
        raise LostClaim(held.key)
    if payment is not None:
        insert_payment(tx, payment, source="create")
        _attempts(tx, held, payment.attempts, now)


def abandon(tx: Tx, held: Claimed, attempts: Sequence[dict[str, Any]], now: float) -> None:
    """Free a key whose request certainly moved no money (every attempt is on record)."""
    changed = tx.run(
        f"DELETE FROM idempotency_claims {_WHERE} AND token = ? AND state = 'in_progress'",
        held.client_id,
        held.key,
        held.token,
    )
    if not changed:
        raise LostClaim(held.key)
    _attempts(tx, held, attempts, now)


def settle_unknown(
    tx: Tx, client_id: str, key: str, answer: dict[str, Any], now: float
) -> bool:
    """A replay learnt the outcome of an unknown claim: store the answer; False if another
    replay did first."""
    changed = tx.run(
        "UPDATE idempotency_claims SET http_status = 201, answer = ?, unknown = 0, "
        f"updated_at = ? {_WHERE} AND state = 'done' AND unknown = 1",
        orjson.dumps(answer).decode(),
        now,
        client_id,
        key,
    )
    return bool(changed)
