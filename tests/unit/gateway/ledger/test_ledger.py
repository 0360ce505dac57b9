"""The ledger's transactions: claims with fence tokens, payments, provider events, pruning.

Run here on SQLite (in memory and in a file); tests/integration/test_ledger_postgres.py runs
the same tests on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config.model import LedgerSettings
from gateway.ledger import schema
from gateway.ledger.database import LedgerTooNew, LedgerUnavailable
from gateway.ledger.ledger import Ledger
from gateway.ledger.payments import PaymentRecord
from gateway.ledger.provider_events import Applied, Duplicate, Orphan
from policies.idempotency import RECORD_TTL_S, Claimed, Conflict, LostClaim, Replay

MakeLedger = Callable[..., Ledger]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite_file"])
def ledger_settings(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerSettings:
    if request.param == "memory":
        return LedgerSettings(backend="memory", claim_lease_s=5)
    return LedgerSettings(
        backend="sqlite", path=str(tmp_path / "db" / "ledger.db"), claim_lease_s=5
    )


@pytest.fixture
async def ledger(ledger_settings: LedgerSettings, clock: Clock) -> AsyncIterator[Ledger]:
    led = Ledger(ledger_settings, clock=clock)
    await led.start()
    yield led
    await led.close()


def record(payment_id: str = "pay_1", **changes: Any) -> PaymentRecord:
    base: dict[str, Any] = {
        "payment_id": payment_id,
        "client_id": "web",
        "idem_key": "k1",
        "player_id": "player-1",
        "type": "deposit",
        "amount": 2500,
        "currency": "EUR",
        "provider": "stripe",
        "provider_reference": "pi_1",
        "reference": "gw_ref1",
        "status": "requires_action",
        "next_action": {"type": "redirect", "url": "https://x.example"},
        "attempts": ({"provider": "stripe", "outcome": "ok", "error_code": None},),
        "created_at": 1_700_000_000.0,
        "updated_at": 1_700_000_000.0,
    }
    base.update(changes)
    return PaymentRecord(**base)


# ---- claims ----------------------------------------------------------------------------


async def test_one_claim_per_key_then_conflicts(ledger: Ledger) -> None:
    held = await ledger.claim("web", "k1", "fp1")
    assert isinstance(held, Claimed) and held.owner is None
    assert await ledger.claim("web", "k1", "fp1") == Conflict("in_progress")
    assert await ledger.claim("web", "k1", "fp2") == Conflict("different_body")
    # Keys are per client.
    assert isinstance(await ledger.claim("mobile", "k1", "fp1"), Claimed)


async def test_finish_records_answer_and_payment_in_one_go(ledger: Ledger) -> None:
    held = await ledger.claim("web", "k1", "fp1")
    assert isinstance(held, Claimed)
    await ledger.stamp_owner(held, "stripe")
    payment = record()
    await ledger.finish(held, 201, payment.to_api(), payment)
    replay = await ledger.claim("web", "k1", "fp1")
    assert isinstance(replay, Replay)
    assert (replay.record.http_status, replay.record.answer) == (201, payment.to_api())
    assert replay.record.payment_id == "pay_1"
    stored = await ledger.payment("pay_1")
    assert stored is not None and stored.to_api() == payment.to_api()
    assert await ledger.status_history("pay_1") == [(None, "requires_action", "create")]


async def test_a_stale_token_can_neither_stamp_nor_finish(ledger: Ledger, clock: Clock) -> None:
    first = await ledger.claim("web", "k1", "fp1")
    assert isinstance(first, Claimed)
    clock.now += 6  # past the 5 s lease, with no provider named: nothing was sent
    second = await ledger.claim("web", "k1", "fp1")
    assert isinstance(second, Claimed) and second.owner is None
    assert second.token != first.token
    with pytest.raises(LostClaim):
        await ledger.stamp_owner(first, "stripe")
    with pytest.raises(LostClaim):
        await ledger.finish(first, 201, {}, None)
    with pytest.raises(LostClaim):
        await ledger.abandon(first, [])
    await ledger.stamp_owner(second, "adyen")


async def test_an_orphaned_claim_is_taken_over_with_its_owner(
    ledger: Ledger, clock: Clock
) -> None:
    first = await ledger.claim("web", "k1", "fp1")
    assert isinstance(first, Claimed)
    await ledger.stamp_owner(first, "stripe")
    clock.now += 4
    assert await ledger.claim("web", "k1", "fp1") == Conflict("in_progress")  # within lease
    clock.now += 2
    taken = await ledger.claim("web", "k1", "fp1")
    assert isinstance(taken, Claimed) and taken.owner == "stripe"
    # Only one request takes an orphan over.
    assert await ledger.claim("web", "k1", "fp1") == Conflict("in_progress")
    with pytest.raises(LostClaim):
        await ledger.finish(first, 201, {}, None)


async def test_a_claim_can_name_its_first_provider_in_the_same_write(
    ledger: Ledger, clock: Clock
) -> None:
    held = await ledger.claim("web", "k1", "fp1", "stripe")
    assert isinstance(held, Claimed) and (held.stamped, held.owner) == ("stripe", None)
    clock.now += 6  # the holder stopped: whoever comes next may only ask Stripe
    taken = await ledger.claim("web", "k1", "fp1", "adyen")
    assert isinstance(taken, Claimed) and (taken.owner, taken.stamped) == ("stripe", None)


async def test_abandon_frees_the_key_and_keeps_the_attempts(ledger: Ledger) -> None:
    held = await ledger.claim("web", "k1", "fp1")
    assert isinstance(held, Claimed)
    await ledger.abandon(held, [{"provider": "stripe", "outcome": "rejected", "error_code": "x"}])
    assert isinstance(await ledger.claim("web", "k1", "fp2"), Claimed)
    rows = await ledger.db.read(
        lambda tx: tx.all("SELECT provider, outcome FROM payment_attempts")
    )
    assert [tuple(r) for r in rows] == [("stripe", "rejected")]


async def test_unknown_outcome_never_expires_but_a_settled_key_does(
    ledger: Ledger, clock: Clock
) -> None:
    unknown = await ledger.claim("web", "k-unknown", "fp1")
    settled = await ledger.claim("web", "k-settled", "fp1")
    assert isinstance(unknown, Claimed) and isinstance(settled, Claimed)
    await ledger.finish(unknown, 202, {"status": "processing"}, None, owner="stripe", unknown=True)
    await ledger.finish(settled, 201, {"status": "succeeded"}, None)
    clock.now += RECORD_TTL_S + 1
    await ledger.prune()
    again = await ledger.claim("web", "k-unknown", "fp1")
    assert isinstance(again, Replay) and again.record.owner == "stripe"
    assert isinstance(await ledger.claim("web", "k-settled", "fp1"), Claimed)


async def test_settle_unknown_once(ledger: Ledger) -> None:
    held = await ledger.claim("web", "k1", "fp1")
    assert isinstance(held, Claimed)
    await ledger.finish(held, 202, {"status": "processing"}, None, owner="stripe", unknown=True)
    assert await ledger.settle_unknown("web", "k1", {"status": "succeeded"}) is True
    assert await ledger.settle_unknown("web", "k1", {"status": "failed"}) is False
    replay = await ledger.claim("web", "k1", "fp1")
    assert isinstance(replay, Replay)
    assert (replay.record.http_status, replay.record.answer) == (201, {"status": "succeeded"})


async def test_concurrent_claims_have_one_winner(ledger: Ledger) -> None:
    outcomes = await asyncio.gather(*(ledger.claim("web", "race", "fp1") for _ in range(20)))
    assert sum(isinstance(o, Claimed) for o in outcomes) == 1
    assert sum(o == Conflict("in_progress") for o in outcomes) == 19


# ---- payments ------------------------------------------------------------------------------


async def _stored(ledger: Ledger, payment: PaymentRecord) -> None:
    held = await ledger.claim(payment.client_id, payment.idem_key, "fp")
    assert isinstance(held, Claimed)
    await ledger.finish(held, 201, payment.to_api(), payment)


async def test_update_is_compare_and_set_under_lock(ledger: Ledger, clock: Clock) -> None:
    await _stored(ledger, record())
    clock.now += 1
    changed = await ledger.update_payment(
        "pay_1", lambda p: (p.replace(status="succeeded", next_action=None), "note"), source="t"
    )
    assert changed is not None
    before, after, note = changed
    assert (before.status, after.status, after.version, note) == (
        "requires_action",
        "succeeded",
        2,
        "note",
    )
    # An update that changes nothing writes nothing.
    same = await ledger.update_payment("pay_1", lambda p: (p, None), source="t")
    assert same is not None and same[1].version == 2
    assert await ledger.update_payment("pay_missing", lambda p: (p, None), source="t") is None
    assert [h[:2] for h in await ledger.status_history("pay_1")] == [
        (None, "requires_action"),
        ("requires_action", "succeeded"),
    ]


async def test_concurrent_updates_each_see_the_last_one(ledger: Ledger) -> None:
    await _stored(ledger, record(attempts=()))

    def add_attempt(p: PaymentRecord) -> tuple[PaymentRecord, None]:
        n = len(p.attempts)
        return p.replace(attempts=(*p.attempts, {"n": n})), None

    await asyncio.gather(
        *(ledger.update_payment("pay_1", add_attempt, source="t") for _ in range(10))
    )
    stored = await ledger.payment("pay_1")
    assert stored is not None
    assert [a["n"] for a in stored.attempts] == list(range(10))
    assert stored.version == 11


# ---- provider events -------------------------------------------------------------------


def _succeed(p: PaymentRecord) -> tuple[PaymentRecord, bool]:
    return p.replace(status="succeeded", next_action=None), True


async def test_provider_event_applied_once(ledger: Ledger) -> None:
    await _stored(ledger, record())
    refs = ("pi_1", "gw_ref1")
    first = await ledger.apply_provider_event(
        "stripe", "evt_1", "evt_g1", "payment.succeeded", refs, {}, _succeed
    )
    assert isinstance(first, Applied) and first.after.status == "succeeded" and first.note
    again = await ledger.apply_provider_event(
        "stripe", "evt_1", "evt_g1", "payment.succeeded", refs, {}, _succeed
    )
    assert isinstance(again, Duplicate)
    # Found by the gateway reference the provider echoes, when its own is not known.
    by_ref = await ledger.apply_provider_event(
        "stripe", "evt_2", "evt_g2", "payment.succeeded", (None, "gw_ref1"), {}, _succeed
    )
    assert isinstance(by_ref, Applied) and by_ref.after.payment_id == "pay_1"


async def test_orphan_event_is_kept_and_applied_once_the_payment_exists(ledger: Ledger) -> None:
    refs = ("pi_1", None)
    orphan = await ledger.apply_provider_event(
        "stripe", "evt_1", "evt_g1", "payment.succeeded", refs, {"amount": 2500}, _succeed
    )
    assert isinstance(orphan, Orphan)
    assert [(o["event_id"], o["detail"]) for o in await ledger.orphan_events()] == [
        ("evt_g1", {"amount": 2500})
    ]
    await _stored(ledger, record())
    applied = await ledger.apply_provider_event(
        "stripe", "evt_1", "evt_g1", "payment.succeeded", refs, {}, _succeed
    )
    assert isinstance(applied, Applied)
    assert await ledger.orphan_events() == []


# ---- retention, schema, failure -------------------------------------------------------


async def test_prune_keeps_what_has_not_settled(ledger: Ledger, clock: Clock) -> None:
    await _stored(ledger, record("pay_old", idem_key="k1", status="succeeded"))
    await _stored(ledger, record("pay_open", idem_key="k2", status="processing"))
    clock.now += 121 * 86400
    pruned = await ledger.prune()
    assert pruned.payments == 1
    assert await ledger.payment("pay_old") is None
    assert await ledger.payment("pay_open") is not None


async def test_migrations_are_idempotent_and_a_newer_database_is_refused(ledger: Ledger) -> None:
    assert await ledger.db.run(schema.migrate) == []
    await ledger.db.run(
        lambda tx: tx.run(
            "UPDATE ledger_meta SET value = ? WHERE name = 'schema_version'",
            str(schema.LATEST + 1),
        )
    )
    with pytest.raises(LedgerTooNew):
        await ledger.db.run(schema.migrate)
    status = await ledger.status()
    assert status["ok"] is False and "newer than this gateway" in status["error"]


async def test_an_unreachable_file_is_ledger_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    led = Ledger(LedgerSettings(backend="sqlite", path=str(blocker / "ledger.db")))
    with pytest.raises(LedgerUnavailable):
        await led.start()
    await led.close()


def test_sqlite_file_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def write() -> None:
        led = Ledger(LedgerSettings(backend="sqlite", path=str(path)))
        await led.start()
        await _stored(led, record())
        await led.close()

    asyncio.run(write())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = conn.execute("SELECT payment_id, status FROM payments").fetchall()
    assert rows == [("pay_1", "requires_action")]
