"""Wallet transactions in the ledger: identical retries answered from it, a reused id with
other details refused, rollback tombstones, unknown outcomes. Run on SQLite here and on
PostgreSQL by tests/integration/test_ledger_postgres.py."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from adapters.wallet import WalletCall
from gateway.config.model import LedgerSettings
from gateway.ledger.ledger import Ledger
from gateway.ledger.wallet import Proceed, Refused, Stored
from tests.unit.gateway.ledger.test_ledger import Clock

P = "hub88"


def bet(tx: str = "b1", amount: int = 100, **changes: Any) -> WalletCall:
    call = WalletCall(
        "debit",
        "player-1",
        "EUR",
        "tok",
        "req-1",
        transaction_id=tx,
        amount=amount,
        round_id="r1",
        game_code="g1",
    )
    return dataclasses.replace(call, **changes)


def win(tx: str = "w1", amount: int = 250, ref: str | None = "b1") -> WalletCall:
    return bet(tx, amount, operation="credit", reference_transaction_id=ref)


def rollback(tx: str = "rb1", ref: str = "b1", amount: int | None = None) -> WalletCall:
    return bet(tx, operation="rollback", reference_transaction_id=ref, amount=amount)


async def test_an_identical_retry_gets_the_stored_answer(ledger: Ledger) -> None:
    assert await ledger.wallet_begin(P, bet(), "studio:game") == Proceed(True, 100)
    await ledger.wallet_finish(P, "b1", "done", "ok", 900)
    again = await ledger.wallet_begin(P, bet(request_id="req-2"), "studio:game")
    assert again == Stored("ok", 900, "EUR")


async def test_a_refusal_is_replayed_too(ledger: Ledger) -> None:
    await ledger.wallet_begin(P, bet(), None)
    await ledger.wallet_finish(P, "b1", "refused", "insufficient_funds", 50)
    assert await ledger.wallet_begin(P, bet(), None) == Stored("insufficient_funds", 50, "EUR")


async def test_the_same_id_with_other_details_is_a_duplicate(ledger: Ledger) -> None:
    await ledger.wallet_begin(P, bet(), None)
    await ledger.wallet_finish(P, "b1", "done", "ok", 900)
    for other in (
        bet(amount=101),
        bet(currency="USD"),
        bet(round_id="r2"),
        bet(player_id="player-2"),
        bet(game_code="g2"),
    ):
        assert await ledger.wallet_begin(P, other, None) == Refused("duplicate_transaction")
    # Another provider's transaction with the same id is another transaction.
    assert isinstance(await ledger.wallet_begin("slotegrator", bet(), None), Proceed)


async def test_an_unknown_outcome_is_asked_again(ledger: Ledger) -> None:
    await ledger.wallet_begin(P, bet(), None)
    await ledger.wallet_finish(P, "b1", "unknown", "unavailable", None)
    assert await ledger.wallet_begin(P, bet(), None) == Proceed(True, 100)


async def test_a_rollback_before_its_bet_leaves_a_tombstone(ledger: Ledger) -> None:
    first = await ledger.wallet_begin(P, rollback(), None)
    assert first == Proceed(forward=False, amount=None)
    await ledger.wallet_finish(P, "rb1", "done", "ok", 1000)
    assert await ledger.wallet_begin(P, bet(), None) == Refused("rolled_back")
    assert await ledger.wallet_begin(P, win(), None) == Refused("rolled_back")
    rows = await ledger.wallet_transactions(player_id="player-1")
    assert {(r["transaction_id"], r["state"]) for r in rows} == {
        ("b1", "tombstone"),
        ("rb1", "done"),
    }


async def test_a_rollback_reverses_the_bet_and_refuses_its_retry_and_its_win(
    ledger: Ledger,
) -> None:
    await ledger.wallet_begin(P, bet(), None)
    await ledger.wallet_finish(P, "b1", "done", "ok", 900)
    assert await ledger.wallet_begin(P, rollback(), None) == Proceed(True, 100)
    await ledger.wallet_finish(P, "rb1", "done", "ok", 1000)
    assert await ledger.wallet_begin(P, bet(), None) == Refused("rolled_back")
    assert await ledger.wallet_begin(P, win(), None) == Refused("rolled_back")
    assert await ledger.wallet_begin(P, rollback(), None) == Stored("ok", 1000, "EUR")


async def test_a_bet_whose_answer_never_came_is_rolled_back_at_the_backend(
    ledger: Ledger,
) -> None:
    await ledger.wallet_begin(P, bet(), None)
    await ledger.wallet_finish(P, "b1", "unknown", "unavailable", None)
    assert await ledger.wallet_begin(P, rollback(), None) == Proceed(True, 100)


async def test_a_late_answer_does_not_undo_a_rollback(ledger: Ledger) -> None:
    await ledger.wallet_begin(P, bet(), None)  # in flight ...
    await ledger.wallet_begin(P, rollback(), None)  # ... when its rollback comes
    await ledger.wallet_finish(P, "b1", "done", "ok", 900)
    states = {r["transaction_id"]: r["state"] for r in await ledger.wallet_transactions()}
    assert states == {"b1": "rolled_back", "rb1": "pending"}


async def test_a_rollback_of_a_refused_bet_forwards_nothing(ledger: Ledger) -> None:
    await ledger.wallet_begin(P, bet(), None)
    await ledger.wallet_finish(P, "b1", "refused", "insufficient_funds", 50)
    assert await ledger.wallet_begin(P, rollback(), None) == Proceed(forward=False, amount=100)


async def test_concurrent_identical_bets_record_one_transaction(ledger: Ledger) -> None:
    results = await asyncio.gather(*(ledger.wallet_begin(P, bet(), None) for _ in range(10)))
    assert all(isinstance(r, Proceed) for r in results)
    rows = await ledger.wallet_transactions(provider=P)
    assert len(rows) == 1


async def test_totals_count_what_moved_money(ledger: Ledger, clock: Clock) -> None:
    await ledger.wallet_begin(P, bet("b1", 100), None)
    await ledger.wallet_finish(P, "b1", "done", "ok", 900)
    await ledger.wallet_begin(P, bet("b2", 300, round_id="r2"), None)
    await ledger.wallet_finish(P, "b2", "refused", "insufficient_funds", 900)
    await ledger.wallet_begin(P, win("w1", 250), None)
    await ledger.wallet_finish(P, "w1", "done", "ok", 1150)
    await ledger.wallet_begin(P, rollback("rb9", "never-seen"), None)
    await ledger.wallet_finish(P, "rb9", "done", "ok", 1150)
    start = clock.now - 10
    totals = await ledger.wallet_totals(start, clock.now + 10)
    assert totals == [(P, "EUR", "credit", 1, 250), (P, "EUR", "debit", 1, 100)]


async def test_settled_transactions_are_pruned_and_unknown_ones_kept(
    ledger: Ledger, clock: Clock
) -> None:
    await ledger.wallet_begin(P, bet("b1"), None)
    await ledger.wallet_finish(P, "b1", "done", "ok", 900)
    await ledger.wallet_begin(P, bet("b2", round_id="r2"), None)
    await ledger.wallet_finish(P, "b2", "unknown", "unavailable", None)
    clock.now += ledger.settings.retention_days * 86400 + 1
    pruned = await ledger.prune()
    assert pruned.wallet_transactions == 1
    assert [r["transaction_id"] for r in await ledger.wallet_transactions()] == ["b2"]


async def test_closing_waits_for_a_write_not_waited_for(tmp_path: Path) -> None:
    ledger_settings = LedgerSettings(backend="sqlite", path=str(tmp_path / "ledger.db"))
    led = Ledger(ledger_settings)
    await led.start()
    assert await led.wallet_begin(P, bet(), "studio:game") == Proceed(True, 100)
    led.write_soon(led.wallet_finish(P, "b1", "done", "ok", 900))
    await led.close()  # the write lands before the database closes
    reopened = Ledger(ledger_settings)
    await reopened.start()
    try:
        again = await reopened.wallet_begin(P, bet(request_id="req-2"), "studio:game")
        assert again == Stored("ok", 900, "EUR")
    finally:
        await reopened.close()
