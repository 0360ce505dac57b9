"""Refunds in the ledger: the sum check under the payment's lock, idempotency by key, fences,
and migrations applied with gaps. Run on SQLite here and on PostgreSQL by
tests/integration/test_ledger_postgres.py."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from gateway.config.model import LedgerSettings
from gateway.ledger import schema
from gateway.ledger.ledger import Ledger
from gateway.ledger.refunds import (
    LostRefund,
    RefundAsk,
    RefundConflict,
    RefundRefused,
    RefundReplay,
    Reserved,
)
from tests.unit.gateway.ledger.test_ledger import Clock, _stored, record


def ask(key: str, amount: int | None, **changes: Any) -> RefundAsk:
    fields: dict[str, Any] = {
        "refund_id": "rf_" + uuid.uuid4().hex[:16],
        "payment_id": "pay_1",
        "client_id": "web",
        "idem_key": key,
        "fingerprint": f"fp-{key}-{amount}",
        "amount": amount,
        "currency": None,
        "reason": None,
        "token": uuid.uuid4().hex,
    }
    fields.update(changes)
    return RefundAsk(**fields)


async def succeeded_payment(ledger: Ledger, **changes: Any) -> None:
    await _stored(ledger, record(status="succeeded", next_action=None, **changes))


async def test_partial_then_full_then_nothing_left(ledger: Ledger) -> None:
    await succeeded_payment(ledger)
    first = await ledger.reserve_refund(ask("r1", 1000))
    assert isinstance(first, Reserved)
    assert (first.refund.amount, first.refund.status, first.refund.state) == (
        1000, "pending", "sending"
    )
    assert first.refund.provider == "stripe"
    rest = await ledger.reserve_refund(ask("r2", None))
    assert isinstance(rest, Reserved) and rest.refund.amount == 1500
    third = await ledger.reserve_refund(ask("r3", 1))
    assert isinstance(third, RefundRefused) and third.code == "refund_exceeds_amount"
    none_left = await ledger.reserve_refund(ask("r4", None))
    assert isinstance(none_left, RefundRefused) and none_left.code == "refund_exceeds_amount"


async def test_over_the_amount_is_refused_at_once(ledger: Ledger) -> None:
    await succeeded_payment(ledger)
    over = await ledger.reserve_refund(ask("r1", 2501))
    assert isinstance(over, RefundRefused) and over.code == "refund_exceeds_amount"
    assert isinstance(await ledger.reserve_refund(ask("r2", 2500)), Reserved)


@pytest.mark.parametrize(
    ("payment", "refund", "code"),
    [
        ({"status": "processing"}, {}, "payment_not_refundable"),
        ({"status": "refunded"}, {}, "refund_exceeds_amount"),
        ({"status": "canceled"}, {}, "payment_not_refundable"),
        ({"type": "withdrawal", "status": "succeeded"}, {}, "payment_not_refundable"),
        ({"status": "succeeded"}, {"currency": "USD"}, "refund_currency_mismatch"),
        ({"status": "succeeded"}, {"payment_id": "pay_nope"}, "not_found"),
    ],
)
async def test_refusals(
    ledger: Ledger, payment: dict[str, Any], refund: dict[str, Any], code: str
) -> None:
    await _stored(ledger, record(next_action=None, **payment))
    refused = await ledger.reserve_refund(ask("r1", 100, **refund))
    assert isinstance(refused, RefundRefused) and refused.code == code


async def test_one_key_one_refund(ledger: Ledger, clock: Clock) -> None:
    await succeeded_payment(ledger)
    first = await ledger.reserve_refund(ask("r1", 700))
    assert isinstance(first, Reserved)
    # While its request holds it, the same key waits; another body is a conflict.
    busy = await ledger.reserve_refund(ask("r1", 700))
    assert busy == RefundConflict("in_progress")
    other = await ledger.reserve_refund(ask("r1", 800))
    assert other == RefundConflict("different_body")
    done = await ledger.refund_answer(
        first.refund.refund_id,
        first.refund.token,
        lambda r: r.replace(state="sent", status="succeeded", provider_reference="re_1"),
    )
    assert (done.status, done.state, done.provider_reference) == ("succeeded", "sent", "re_1")
    replay = await ledger.reserve_refund(ask("r1", 700))
    assert isinstance(replay, RefundReplay) and replay.refund == done
    assert await ledger.refund(done.refund_id) == done


async def test_a_stopped_request_is_resumed_after_its_lease_and_fenced_out(
    ledger: Ledger, clock: Clock
) -> None:
    await succeeded_payment(ledger)
    first = await ledger.reserve_refund(ask("r1", 700))
    assert isinstance(first, Reserved)
    clock.now += ledger.settings.claim_lease_s + 1
    again = await ledger.reserve_refund(ask("r1", 700))
    assert isinstance(again, Reserved) and again.resumed
    assert again.refund.refund_id == first.refund.refund_id
    # The first request's token no longer holds it.
    with pytest.raises(LostRefund):
        await ledger.refund_answer(first.refund.refund_id, first.refund.token, lambda r: r)
    with pytest.raises(LostRefund):
        await ledger.release_refund(first.refund.refund_id, first.refund.token)
    await ledger.release_refund(again.refund.refund_id, again.refund.token)


async def test_a_released_refund_frees_its_amount_and_its_key(ledger: Ledger) -> None:
    await succeeded_payment(ledger)
    held = await ledger.reserve_refund(ask("r1", 2500))
    assert isinstance(held, Reserved)
    await ledger.release_refund(held.refund.refund_id, held.refund.token)
    assert await ledger.refund(held.refund.refund_id) is None
    assert isinstance(await ledger.reserve_refund(ask("r1", 2500)), Reserved)


async def test_failed_refunds_do_not_count(ledger: Ledger) -> None:
    await succeeded_payment(ledger)
    held = await ledger.reserve_refund(ask("r1", 2500))
    assert isinstance(held, Reserved)
    await ledger.refund_answer(
        held.refund.refund_id, held.refund.token, lambda r: r.replace(state="sent", status="failed")
    )
    assert isinstance(await ledger.reserve_refund(ask("r2", 2500)), Reserved)


async def test_concurrent_refunds_never_exceed_the_payment(
    ledger: Ledger, ledger_settings: LedgerSettings, clock: Clock
) -> None:
    await succeeded_payment(ledger)
    # Two ledgers on one database where it can be shared: two connections racing.
    other = ledger if ledger_settings.backend == "memory" else Ledger(ledger_settings, clock=clock)
    if other is not ledger:
        await other.start()
    try:
        results = await asyncio.gather(
            *((ledger if i % 2 else other).reserve_refund(ask(f"c{i}", 300)) for i in range(20))
        )
    finally:
        if other is not ledger:
            await other.close()
    reserved = [r for r in results if isinstance(r, Reserved)]
    refused = [r for r in results if isinstance(r, RefundRefused)]
    assert len(reserved) == 8  # 8 x 300 = 2400 of 2500
    assert len(refused) == 12 and {r.code for r in refused} == {"refund_exceeds_amount"}


async def test_a_missing_migration_below_the_latest_is_applied(ledger: Ledger) -> None:
    # A database migrated by code that knew 1, 3 and 4 only (2 was numbered apart) gets 2.
    def without_2(tx: Any) -> None:
        tx.run("DROP TABLE wallet_transactions")
        tx.run("UPDATE ledger_meta SET value = '1,3,4' WHERE name = 'applied_migrations'")

    await ledger.db.run(without_2)
    assert await ledger.db.run(schema.migrate) == [2]
    assert await ledger.db.run(schema.migrate) == []
    assert await ledger.db.run(schema.applied_migrations) == {1, 2, 3, 4}
    count = await ledger.db.run(lambda tx: tx.one("SELECT COUNT(*) FROM wallet_transactions"))
    assert count == (0,)


async def test_a_database_migrated_before_the_list_was_kept_gets_what_it_lacks(
    ledger: Ledger,
) -> None:
    def back_to_version_1(tx: Any) -> None:
        tx.run("DELETE FROM ledger_meta WHERE name = 'applied_migrations'")
        tx.run("UPDATE ledger_meta SET value = '1' WHERE name = 'schema_version'")
        tx.run("DROP TABLE refunds")
        tx.run("DROP TABLE wallet_transactions")
        tx.run("DROP TABLE event_outbox")
        tx.run("DROP TABLE event_sequence")

    await ledger.db.run(back_to_version_1)
    assert await ledger.db.run(schema.migrate) == [2, 3, 4]
    assert await ledger.db.run(schema.current_version) == 4


async def test_a_migration_this_code_does_not_know_is_refused(ledger: Ledger) -> None:
    await ledger.db.run(
        lambda tx: tx.run(
            "UPDATE ledger_meta SET value = '1,2,3,8,9' WHERE name = 'applied_migrations'"
        )
    )
    status = await ledger.status()
    assert status["ok"] is False and "migration(s) 8, 9" in status["error"]


async def test_settled_refunds_are_pruned_with_their_payments_and_pending_ones_kept(
    ledger: Ledger, clock: Clock
) -> None:
    await succeeded_payment(ledger)
    done = await ledger.reserve_refund(ask("r1", 1000))
    waiting = await ledger.reserve_refund(ask("r2", 1000))
    assert isinstance(done, Reserved) and isinstance(waiting, Reserved)
    await ledger.refund_answer(
        done.refund.refund_id, done.refund.token,
        lambda r: r.replace(state="sent", status="succeeded"),
    )
    await ledger.refund_answer(
        waiting.refund.refund_id, waiting.refund.token, lambda r: r.replace(state="sent")
    )
    clock.now += ledger.settings.retention_days * 86400 + 1
    pruned = await ledger.prune()
    assert pruned.refunds == 1
    assert await ledger.refund(done.refund.refund_id) is None
    assert await ledger.refund(waiting.refund.refund_id) is not None
