"""Idempotency records: one claim per key, replays, conflicts, and orphaned claims."""

import asyncio

import pytest

from gateway.state.memory import MemoryStore
from policies.idempotency import (
    Claimed,
    Conflict,
    IdempotencyStore,
    LostClaim,
    Orphaned,
    Replay,
    fingerprint,
)


async def test_claim_then_replay_then_conflict():
    store = IdempotencyStore(MemoryStore(), wait_s=0.1)
    fp = fingerprint("web", {"amount": 1})
    assert isinstance(await store.begin("web", "k", fp), Claimed)
    await store.finish("web", "k", fp, 201, {"payment_id": "p1"})
    replay = await store.begin("web", "k", fp)
    assert isinstance(replay, Replay) and replay.record.body == {"payment_id": "p1"}
    other = await store.begin("web", "k", fingerprint("web", {"amount": 2}))
    assert other == Conflict("different_body")
    # Keys are per client: another client's same key is a new payment.
    assert isinstance(await store.begin("mobile", "k", fp), Claimed)


async def test_concurrent_claims_one_winner_others_wait_for_its_answer():
    store = IdempotencyStore(MemoryStore(), wait_s=2)
    fp = fingerprint("web", {"amount": 1})
    first = await store.begin("web", "k", fp)
    assert isinstance(first, Claimed)
    waiter = asyncio.create_task(store.begin("web", "k", fp))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await store.finish("web", "k", fp, 201, {"payment_id": "p1"})
    assert isinstance(await waiter, Replay)


async def test_in_progress_without_an_answer_is_a_conflict_after_the_wait():
    store = IdempotencyStore(MemoryStore(), wait_s=0.1)
    fp = fingerprint("web", {})
    await store.begin("web", "k", fp)
    assert await store.begin("web", "k", fp) == Conflict("in_progress")


async def test_a_claim_that_reached_a_provider_and_stopped_names_that_provider():
    store = IdempotencyStore(MemoryStore(), lease_s=0.1, wait_s=0.05)
    fp = fingerprint("web", {})
    await store.begin("web", "k", fp)
    await store.stamp_owner("web", "k", fp, "stripe")
    # Within the lease the holder may still answer: wait for it.
    assert await store.begin("web", "k", fp) == Conflict("in_progress")
    await asyncio.sleep(0.15)
    orphaned = await store.begin("web", "k", fp)
    assert isinstance(orphaned, Orphaned) and orphaned.record.owner == "stripe"


async def test_a_claim_that_reached_no_provider_expires_and_frees_the_key():
    store = IdempotencyStore(MemoryStore(), lease_s=0.1, wait_s=0.05)
    fp = fingerprint("web", {})
    await store.begin("web", "k", fp)
    await asyncio.sleep(0.15)
    assert isinstance(await store.begin("web", "k", fp), Claimed)


async def test_a_request_that_lost_its_claim_cannot_write_or_release_it():
    store = IdempotencyStore(MemoryStore(), lease_s=0.05, wait_s=0.01)
    fp = fingerprint("web", {})
    slow = await store.begin("web", "k", fp)
    assert isinstance(slow, Claimed)
    await asyncio.sleep(0.08)  # its lease ran out before it sent anything
    quick = await store.begin("web", "k", fp)
    assert isinstance(quick, Claimed)
    with pytest.raises(LostClaim):
        await store.stamp_owner("web", "k", fp, "stripe", slow)
    with pytest.raises(LostClaim):
        await store.abandon("web", "k", slow)
    with pytest.raises(LostClaim):
        await store.finish("web", "k", fp, 201, {"payment_id": "slow"}, claim=slow)
    await store.stamp_owner("web", "k", fp, "adyen", quick)
    await store.finish("web", "k", fp, 201, {"payment_id": "quick"}, claim=quick)
    replay = await store.begin("web", "k", fp)
    assert isinstance(replay, Replay) and replay.record.body == {"payment_id": "quick"}


async def test_only_one_request_takes_over_an_orphaned_claim():
    store = IdempotencyStore(MemoryStore(), lease_s=0.05, wait_s=0.01)
    fp = fingerprint("web", {})
    first = await store.begin("web", "k", fp)
    assert isinstance(first, Claimed)
    await store.stamp_owner("web", "k", fp, "stripe", first)
    await asyncio.sleep(0.08)
    a = await store.begin("web", "k", fp)
    b = await store.begin("web", "k", fp)
    assert isinstance(a, Orphaned) and isinstance(b, Orphaned)
    won = [await store.take_over("web", "k", a), await store.take_over("web", "k", b)]
    assert isinstance(won[0], Claimed) and won[1] is None
