"""Pruning the ledger: settled records go after `ledger.retention_days`, nothing unsettled does.

A settled idempotency claim goes after 24 hours (the key may then be used again, as at the
providers); a claim whose outcome is unknown stays until it is resolved, as do payments that
have not reached a settled status: pruning them would forget which provider holds them.
Refunds go with the same retention once settled; a pending one stays. Wallet transactions
go after `retention_days` too (Hub88 asks for four months: the default is 120 days), except
one whose backend answer never came.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ledger import wallet
from gateway.ledger.database import Tx
from policies.idempotency import RECORD_TTL_S

SETTLED = ("succeeded", "failed", "canceled", "refunded", "reversed")


@dataclass(frozen=True, slots=True)
class Pruned:
    claims: int
    payments: int
    events: int
    refunds: int = 0
    wallet_transactions: int = 0


def prune(tx: Tx, now: float, retention_s: float) -> Pruned:
    claims = tx.run(
        "DELETE FROM idempotency_claims WHERE state = 'done' AND unknown = 0 AND updated_at < ?",
        now - RECORD_TTL_S,
    )
    cutoff = now - retention_s
    marks = ", ".join("?" for _ in SETTLED)
    old = f"SELECT payment_id FROM payments WHERE status IN ({marks}) AND updated_at < ?"
    tx.run(f"DELETE FROM payment_status_history WHERE payment_id IN ({old})", *SETTLED, cutoff)
    payments = tx.run(
        f"DELETE FROM payments WHERE status IN ({marks}) AND updated_at < ?", *SETTLED, cutoff
    )
    tx.run("DELETE FROM payment_attempts WHERE at < ?", cutoff)
    events = tx.run("DELETE FROM provider_events WHERE received_at < ?", cutoff)
    refunds = tx.run(
        "DELETE FROM refunds WHERE status IN ('succeeded', 'failed', 'canceled') "
        "AND state <> 'sending' AND updated_at < ?",
        cutoff,
    )
    wallet_transactions = wallet.prune(tx, cutoff)
    return Pruned(claims, payments, events, refunds, wallet_transactions)
