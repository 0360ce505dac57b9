"""Wallet transactions in the ledger: every bet, win and rollback, by the provider's id.

A transaction is recorded by (provider, the provider's transaction id) with the fingerprint
of its request, its amount in minor units, its state, and the answer it got:

- `pending` while the backend is asked; `done` once it answered yes, `refused` once it
  answered no (both keep the answer, which an identical retry gets without asking again);
  `unknown` when no answer came (a retry asks the backend again: it is idempotent on the
  transaction id);
- `rolled_back`: a debit or credit a rollback reversed; `tombstone`: the id of a
  transaction the gateway never saw when its rollback came. Either refuses a bet or win
  arriving with that id later, and a win settling that bet.

`begin` runs before the backend call and `finish` after it: one write each, no more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.wallet import WalletCall
from gateway.ledger.database import Tx

_ROW = "WHERE provider = ? AND transaction_id = ?"
_COLUMNS = (
    "provider, transaction_id, operation, state, player_id, currency, amount, round_id, "
    "game_id, reference_id, outcome, balance, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class Proceed:
    """Ask the backend. `forward` False: there is nothing to reverse (a rollback of what
    the gateway never saw, or saw refused): ask for the balance instead."""

    forward: bool = True
    amount: int | None = None  # a rollback's: what its transaction moved


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer given before, for an identical retry."""

    outcome: str
    balance: int | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class Refused:
    outcome: str  # duplicate_transaction | rolled_back


def begin(
    tx: Tx, provider: str, call: WalletCall, game_id: str | None, now: float
) -> Proceed | Stored | Refused:
    """Record `call` before its backend call (or find what was recorded): what to do."""
    assert call.transaction_id is not None
    fingerprint = call.fingerprint()
    row = tx.one(
        f"SELECT state, fingerprint, outcome, balance, currency, amount "
        f"FROM wallet_transactions {_ROW}{tx.for_update}",
        provider,
        call.transaction_id,
    )
    if row is not None:
        state, known_fingerprint, outcome, balance, currency, amount = row
        if state == "tombstone" or (state == "rolled_back" and call.operation != "rollback"):
            return Refused("rolled_back")
        if known_fingerprint != fingerprint:
            return Refused("duplicate_transaction")
        if state in ("done", "refused"):
            return Stored(outcome, balance, currency)
        # pending or unknown: no settled answer yet, so the backend is asked again.
        return Proceed(forward=call.operation != "rollback" or bool(amount), amount=amount)
    amount = call.amount
    forward = True
    if call.operation == "credit" and call.reference_transaction_id:
        ref = _state(tx, provider, call.reference_transaction_id)
        if ref is not None and ref[1] in ("rolled_back", "tombstone"):
            return Refused("rolled_back")
    elif call.operation == "rollback":
        forward, amount = _reverse(tx, provider, call, game_id, now)
    inserted = tx.run(
        "INSERT INTO wallet_transactions (provider, transaction_id, operation, state, "
        "fingerprint, player_id, currency, amount, round_id, game_id, reference_id, "
        "created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (provider, transaction_id) DO NOTHING",
        provider,
        call.transaction_id,
        call.operation,
        fingerprint,
        call.player_id,
        call.currency,
        amount if forward else 0,
        call.round_id,
        game_id,
        call.reference_transaction_id,
        now,
        now,
    )
    if not inserted:
        # A concurrent request recorded it first (PostgreSQL lets both look before either
        # inserts): decide again on its row, now committed.
        return begin(tx, provider, call, game_id, now)
    return Proceed(forward=forward, amount=amount)


def _state(tx: Tx, provider: str, transaction_id: str) -> tuple[str, str, int | None] | None:
    row = tx.one(
        f"SELECT operation, state, amount FROM wallet_transactions {_ROW}{tx.for_update}",
        provider,
        transaction_id,
    )
    return None if row is None else (row[0], row[1], row[2])


def _reverse(
    tx: Tx, provider: str, call: WalletCall, game_id: str | None, now: float
) -> tuple[bool, int | None]:
    """Mark what a rollback reverses (a tombstone when it is unknown): (forward, amount)."""
    assert call.reference_transaction_id is not None
    ref = _state(tx, provider, call.reference_transaction_id)
    if ref is None:
        inserted = tx.run(
            "INSERT INTO wallet_transactions (provider, transaction_id, operation, state, "
            "fingerprint, player_id, currency, amount, round_id, game_id, reference_id, "
            "created_at, updated_at) VALUES (?, ?, 'tombstone', 'tombstone', '', ?, ?, ?, ?, "
            "?, ?, ?, ?) ON CONFLICT (provider, transaction_id) DO NOTHING",
            provider,
            call.reference_transaction_id,
            call.player_id,
            call.currency,
            call.amount,
            call.round_id,
            game_id,
            call.transaction_id,
            now,
            now,
        )
        if not inserted:  # its bet was recorded meanwhile: reverse that
            return _reverse(tx, provider, call, game_id, now)
        return False, call.amount
    _operation, state, amount = ref
    if state in ("done", "pending", "unknown"):
        # Pending or unknown: the backend may have moved the money; it reverses it if so.
        tx.run(
            f"UPDATE wallet_transactions SET state = 'rolled_back', updated_at = ? {_ROW}",
            now,
            provider,
            call.reference_transaction_id,
        )
        return True, amount
    return False, amount  # refused, or reversed already: nothing moved, or nothing left


def finish(
    tx: Tx,
    provider: str,
    transaction_id: str,
    state: str,
    outcome: str,
    balance: int | None,
    now: float,
) -> None:
    """Record the backend's answer: `done`, `refused` or `unknown`. A transaction reversed
    meanwhile stays `rolled_back`."""
    tx.run(
        "UPDATE wallet_transactions SET state = ?, outcome = ?, balance = ?, updated_at = ? "
        f"{_ROW} AND state IN ('pending', 'unknown')",
        state,
        outcome,
        balance,
        now,
        provider,
        transaction_id,
    )


def transactions(
    tx: Tx,
    player_id: str | None,
    round_id: str | None,
    provider: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The newest transactions matching every filter given (for support and disputes)."""
    where, args = [], []
    for column, value in (("player_id", player_id), ("round_id", round_id), ("provider", provider)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    sql = f"SELECT {_COLUMNS} FROM wallet_transactions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = tx.all(sql + " ORDER BY created_at DESC, transaction_id LIMIT ?", *args, limit)
    names = [name.strip() for name in _COLUMNS.split(",")]
    return [dict(zip(names, row, strict=True)) for row in rows]


def totals(tx: Tx, start: float, end: float) -> list[tuple[str, str, str, int, int]]:
    """(provider, currency, operation, count, amount) of what moved money in [start, end):
    debits and credits the backend accepted (reversed ones too: their rollback is counted
    beside them) and rollbacks that reversed something."""
    rows = tx.all(
        "SELECT provider, currency, operation, COUNT(*), COALESCE(SUM(amount), 0) "
        "FROM wallet_transactions WHERE created_at >= ? AND created_at < ? AND ("
        "(operation IN ('debit', 'credit') AND state IN ('done', 'rolled_back')) OR "
        "(operation = 'rollback' AND state = 'done' AND amount > 0)) "
        "GROUP BY provider, currency, operation ORDER BY provider, currency, operation",
        start,
        end,
    )
    return [(r[0], r[1] or "", r[2], int(r[3]), int(r[4])) for r in rows]


def prune(tx: Tx, cutoff: float) -> int:
    """Settled transactions older than `cutoff`; an unsettled one stays."""
    count: int = tx.run(
        "DELETE FROM wallet_transactions WHERE updated_at < ? "
        "AND state NOT IN ('pending', 'unknown')",
        cutoff,
    )
    return count
