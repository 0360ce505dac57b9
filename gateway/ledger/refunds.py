"""Refunds in the ledger: reserved under the payment's lock, so their sum never exceeds it.

Each function is one transaction (see `gateway.ledger.database`). `reserve` reads the
payment with a row lock (PostgreSQL `FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` already holds
the write lock), sums the refunds that may still take money (`pending` and `succeeded`),
and inserts the new one in the same transaction: of two concurrent refunds that together
exceed the payment, the second sees the first and is refused. A refund row is also its
idempotency record: one row per (client, Idempotency-Key).

The request holding a refund (state `sending`) writes it under its fence token; once the
answer is recorded the row is `sent`, or `unknown` when no answer came. A refund the
provider refused for certain is deleted: it never took money, and its key may be used again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.ledger.database import Tx
from gateway.ledger.payments import PaymentRecord, get_payment, iso

T = TypeVar("T")

# Refund statuses that may take money from the merchant: they count against the payment.
OPEN_OR_DONE = ("pending", "succeeded")


@dataclass(frozen=True, slots=True)
class RefundRecord:
    refund_id: str
    payment_id: str
    client_id: str
    idem_key: str
    fingerprint: str
    provider: str
    provider_reference: str | None
    amount: int
    currency: str
    reason: str | None
    status: str  # pending | succeeded | failed | canceled
    state: str  # sending | sent | unknown
    token: str
    since: float
    http_status: int | None
    created_at: float
    updated_at: float = 0.0
    version: int = 1

    def to_api(self) -> dict[str, Any]:
        return {
            "refund_id": self.refund_id,
            "payment_id": self.payment_id,
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "reason": self.reason,
            "provider": self.provider,
            "provider_reference": self.provider_reference,
            "created_at": iso(self.created_at),
        }

    def replace(self, **changes: Any) -> RefundRecord:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class RefundAsk:
    """A client's refund request, as `reserve` needs it."""

    refund_id: str  # used when the refund is new
    payment_id: str
    client_id: str
    idem_key: str
    fingerprint: str
    amount: int | None  # None: whatever is left to refund
    currency: str | None  # None: the payment's
    reason: str | None
    token: str


@dataclass(frozen=True, slots=True)
class Reserved:
    refund: RefundRecord
    payment: PaymentRecord
    resumed: bool = False  # an earlier request stopped while holding it: its token replaced


@dataclass(frozen=True, slots=True)
class RefundReplay:
    refund: RefundRecord


@dataclass(frozen=True, slots=True)
class RefundConflict:
    reason: str  # different_body | in_progress


@dataclass(frozen=True, slots=True)
class RefundRefused:
    code: str  # not_found | payment_not_refundable | refund_currency_mismatch | ...
    detail: str


class LostRefund(Exception):
    """The refund is held under another token now: this request may record nothing."""


_COLUMNS = (
    "refund_id, payment_id, client_id, idem_key, fingerprint, provider, provider_reference, "
    "amount, currency, reason, status, state, token, since, http_status, created_at, "
    "updated_at, version"
)


def _record(row: Sequence[Any]) -> RefundRecord:
    (rid, pid, client, key, fp, provider, pref, amount, currency, reason, status, state,
     token, since, http_status, created, updated, version) = row
    return RefundRecord(
        refund_id=rid,
        payment_id=pid,
        client_id=client,
        idem_key=key,
        fingerprint=fp,
        provider=provider,
        provider_reference=pref,
        amount=int(amount),
        currency=currency,
        reason=reason,
        status=status,
        state=state,
        token=token,
        since=float(since),
        http_status=http_status,
        created_at=float(created),
        updated_at=float(updated),
        version=int(version),
    )


def get_refund(tx: Tx, refund_id: str, *, lock: bool = False) -> RefundRecord | None:
    row = tx.one(
        f"SELECT {_COLUMNS} FROM refunds WHERE refund_id = ?{tx.for_update if lock else ''}",
        refund_id,
    )
    return _record(row) if row else None


def _by_key(tx: Tx, client_id: str, key: str) -> RefundRecord | None:
    row = tx.one(
        f"SELECT {_COLUMNS} FROM refunds WHERE client_id = ? AND idem_key = ?{tx.for_update}",
        client_id,
        key,
    )
    return _record(row) if row else None


def committed(tx: Tx, payment_id: str, statuses: Sequence[str] = OPEN_OR_DONE) -> int:
    """The sum of the payment's refunds in `statuses`."""
    marks = ", ".join("?" for _ in statuses)
    row = tx.one(
        f"SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = ? "
        f"AND status IN ({marks})",
        payment_id,
        *statuses,
    )
    return int(row[0]) if row else 0


def reserve(
    tx: Tx, ask: RefundAsk, now: float, lease_s: float
) -> Reserved | RefundReplay | RefundConflict | RefundRefused:
    payment = get_payment(tx, ask.payment_id, lock=True)
    existing = _by_key(tx, ask.client_id, ask.idem_key)
    if existing is not None:
        return _again(tx, existing, ask, payment, now, lease_s)
    if payment is None:
        return RefundRefused("not_found", f"no payment '{ask.payment_id}'")
    if payment.type != "deposit":
        return RefundRefused(
            "payment_not_refundable", f"a {payment.type} cannot be refunded; only deposits"
        )
    if payment.status not in ("succeeded", "refunded"):
        return RefundRefused(
            "payment_not_refundable",
            f"the payment is {payment.status}; only a succeeded payment can be refunded",
        )
    if ask.currency is not None and ask.currency != payment.currency:
        return RefundRefused(
            "refund_currency_mismatch",
            f"the payment is in {payment.currency}; a refund of it is too, not {ask.currency}",
        )
    # A payment refunded in full (perhaps outside the gateway) has nothing left.
    taken = committed(tx, payment.payment_id) if payment.status == "succeeded" else payment.amount
    left = payment.amount - taken
    amount = left if ask.amount is None else ask.amount
    if amount <= 0 or amount > left:
        return RefundRefused(
            "refund_exceeds_amount",
            f"{left} of the payment's {payment.amount} ({payment.currency} minor units) is "
            f"left to refund; {amount if ask.amount is not None else 'nothing'} cannot be",
        )
    refund = RefundRecord(
        refund_id=ask.refund_id,
        payment_id=payment.payment_id,
        client_id=ask.client_id,
        idem_key=ask.idem_key,
        fingerprint=ask.fingerprint,
        provider=payment.provider,
        provider_reference=None,
        amount=amount,
        currency=payment.currency,
        reason=ask.reason,
        status="pending",
        state="sending",
        token=ask.token,
        since=now,
        http_status=None,
        created_at=now,
        updated_at=now,
    )
    inserted = tx.run(
        f"INSERT INTO refunds ({_COLUMNS}) VALUES ({', '.join('?' * 18)}) "
        "ON CONFLICT (client_id, idem_key) DO NOTHING",
        *dataclasses.astuple(refund),
    )
    if not inserted:
        # The same key, at the same moment, for a refund of another payment.
        return RefundConflict("different_body")
    return Reserved(refund, payment)


def _again(
    tx: Tx,
    existing: RefundRecord,
    ask: RefundAsk,
    payment: PaymentRecord | None,
    now: float,
    lease_s: float,
) -> Reserved | RefundReplay | RefundConflict:
    if existing.fingerprint != ask.fingerprint or existing.payment_id != ask.payment_id:
        return RefundConflict("different_body")
    if existing.state != "sending":
        return RefundReplay(existing)
    if now - existing.since < lease_s or payment is None:
        return RefundConflict("in_progress")
    # Its request stopped while holding it (its lease ran out): this one carries it on.
    tx.run(
        "UPDATE refunds SET token = ?, since = ?, updated_at = ? WHERE refund_id = ?",
        ask.token,
        now,
        now,
        existing.refund_id,
    )
    return Reserved(existing.replace(token=ask.token, since=now), payment, resumed=True)


def release(tx: Tx, refund_id: str, token: str) -> None:
    """Forget a refund the provider certainly did not act on; LostRefund if not held."""
    if not tx.run(
        "DELETE FROM refunds WHERE refund_id = ? AND token = ? AND state = 'sending'",
        refund_id,
        token,
    ):
        raise LostRefund(refund_id)


RefundChange = Callable[[RefundRecord], RefundRecord]


def record_answer(
    tx: Tx, refund_id: str, token: str, change: RefundChange, now: float
) -> RefundRecord:
    """Record what the provider answered, merged into what the row knows by then (a webhook
    may have come first); LostRefund if this request no longer holds it."""
    current = get_refund(tx, refund_id, lock=True)
    if current is None or current.token != token or current.state != "sending":
        raise LostRefund(refund_id)
    return _write(tx, current, change(current), now)


def update_refund(
    tx: Tx, refund_id: str, change: RefundChange, now: float
) -> tuple[RefundRecord, RefundRecord] | None:
    current = get_refund(tx, refund_id, lock=True)
    if current is None:
        return None
    return current, _write(tx, current, change(current), now)


def _write(tx: Tx, before: RefundRecord, after: RefundRecord, now: float) -> RefundRecord:
    if after == before:
        return before
    after = after.replace(updated_at=now, version=before.version + 1)
    tx.run(
        "UPDATE refunds SET provider_reference = ?, status = ?, state = ?, http_status = ?, "
        "updated_at = ?, version = ? WHERE refund_id = ? AND version = ?",
        after.provider_reference,
        after.status,
        after.state,
        after.http_status,
        now,
        after.version,
        before.refund_id,
        before.version,
    )
    return after


def find_refund(
    tx: Tx, provider: str, provider_reference: str | None, refund_id: str | None
) -> RefundRecord | None:
    """The refund a provider means: by its own id for the refund, else the gateway's."""
    if provider_reference:
        row = tx.one(
            f"SELECT {_COLUMNS} FROM refunds WHERE provider = ? AND provider_reference = ?",
            provider,
            provider_reference,
        )
        if row:
            return _record(row)
    if refund_id:
        found = get_refund(tx, refund_id)
        if found is not None and found.provider == provider:
            return found
    return None


def oldest_pending(tx: Tx, payment_id: str, amount: int | None) -> RefundRecord | None:
    """For a provider that names only the payment and the amount (Trustly): the refund of
    that payment and amount still waiting the longest."""
    sql = f"SELECT {_COLUMNS} FROM refunds WHERE payment_id = ? AND status = 'pending'"
    args: list[Any] = [payment_id]
    if amount is not None:
        sql += " AND amount = ?"
        args.append(amount)
    row = tx.one(sql + " ORDER BY created_at LIMIT 1", *args)
    return _record(row) if row else None
