"""The event delivery queue, its signing and settings, and the stream's replay buffer.

The queue runs against a fake sender and a fake sleep, so ordering, backoff and bounds are
checked exactly and without waiting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gateway.config.errors import ConfigError
from gateway.config.events import BackendSettings, RetryPolicy, StreamSettings, parse_settings
from gateway.events.delivery import DeliveryQueue, equal_jitter, sign, verify_signature
from gateway.events.stream_log import EventLog, Filter, StreamClosed


class FakeSender:
    """Fails each item as often as told, records every attempt in order."""

    def __init__(self, failures: dict[str, int] | None = None) -> None:
        self.failures = dict(failures or {})
        self.attempts: list[str] = []
        self.delivered: list[str] = []

    async def __call__(self, item: str) -> None:
        self.attempts.append(item)
        await asyncio.sleep(0)
        if self.failures.get(item, 0) > 0:
            self.failures[item] -= 1
            raise ConnectionError(f"backend down for {item}")
        self.delivered.append(item)


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def make_queue(
    sender: FakeSender, sleep: FakeSleep | None = None, **policy: Any
) -> tuple[DeliveryQueue[str], dict[str, list[Any]]]:
    seen: dict[str, list[Any]] = {"pending": [], "dropped": [], "given_up": [], "retries": []}
    queue: DeliveryQueue[str] = DeliveryQueue(
        sender,
        RetryPolicy(**policy),
        on_pending=seen["pending"].append,
        on_drop=seen["dropped"].append,
        on_give_up=lambda item, exc: seen["given_up"].append((item, str(exc))),
        on_retry=lambda item, n, exc, delay: seen["retries"].append((item, n, delay)),
        sleep=sleep or FakeSleep(),
        jitter=lambda delay: delay,
    )
    return queue, seen


async def join(queue: DeliveryQueue[str]) -> None:
    await asyncio.wait_for(queue.join(), 2)


# ---- ordering ------------------------------------------------------------------------------


async def test_items_of_one_key_are_delivered_in_order_through_failures():
    sender = FakeSender({"a1": 3})
    queue, _ = make_queue(sender)
    for item in ("a1", "a2", "a3"):
        assert queue.put("pay_a", item)
    await join(queue)
    assert sender.delivered == ["a1", "a2", "a3"]
    # a2 was not tried before a1 got through.
    assert sender.attempts == ["a1", "a1", "a1", "a1", "a2", "a3"]


async def test_a_failing_key_does_not_hold_up_other_keys():
    sender = FakeSender({"a1": 50})
    sleep = FakeSleep()
    queue, _ = make_queue(sender, sleep)
    queue.put("pay_a", "a1")
    queue.put("pay_a", "a2")
    queue.put("pay_b", "b1")
    queue.put("pay_b", "b2")
    for _ in range(20):
        await asyncio.sleep(0)
    assert sender.delivered[:2] == ["b1", "b2"]
    assert "a2" not in sender.attempts
    await join(queue)
    assert sender.delivered == ["b1", "b2", "a1", "a2"]


async def test_items_added_while_a_lane_drains_join_its_end():
    sender = FakeSender({"a1": 2})
    queue, _ = make_queue(sender)
    queue.put("k", "a1")
    await asyncio.sleep(0)
    queue.put("k", "a2")
    await asyncio.sleep(0)
    queue.put("k", "a3")
    await join(queue)
    assert sender.delivered == ["a1", "a2", "a3"]


# ---- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(backoff_initial_s=0.1, backoff_max_s=1.0)
    assert [policy.delay(n) for n in range(1, 8)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    )
    assert policy.delay(10_000) == 1.0  # no overflow on very long outages


async def test_retries_wait_the_backoff_between_tries():
    sender = FakeSender({"a1": 6})
    sleep = FakeSleep()
    queue, seen = make_queue(sender, sleep, backoff_initial_s=0.1, backoff_max_s=1.0)
    queue.put("k", "a1")
    await join(queue)
    assert sleep.delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert [(item, n) for item, n, _ in seen["retries"]] == [("a1", n) for n in range(1, 7)]
    assert sender.delivered == ["a1"]


def test_jitter_stays_between_half_and_the_full_delay():
    values = [equal_jitter(2.0) for _ in range(200)]
    assert all(1.0 <= v <= 2.0 for v in values)
    assert len(set(values)) > 1


async def test_max_attempts_gives_up_and_lets_the_next_item_go():
    sender = FakeSender({"a1": 100})
    queue, seen = make_queue(sender, max_attempts=3)
    queue.put("k", "a1")
    queue.put("k", "a2")
    await join(queue)
    assert sender.attempts == ["a1", "a1", "a1", "a2"]
    assert seen["given_up"] == [("a1", "backend down for a1")]
    assert sender.delivered == ["a2"]


# ---- bounds and the pending count ----------------------------------------------------------


async def test_a_full_queue_drops_new_items():
    sender = FakeSender({"a1": 1000})
    queue, seen = make_queue(sender, max_queue=2, max_attempts=0)
    assert queue.put("a", "a1")
    assert queue.put("b", "b1")
    assert not queue.put("c", "c1")
    assert not queue.put("a", "a2")
    assert seen["dropped"] == ["c1", "a2"]
    assert queue.pending == 2
    await asyncio.sleep(0.01)
    assert queue.put("c", "c2")  # b1 went through: room again
    await queue.stop()


async def test_pending_counts_every_item_until_delivered():
    sender = FakeSender({"a1": 1})
    queue, seen = make_queue(sender)
    queue.put("a", "a1")
    queue.put("a", "a2")
    queue.put("b", "b1")
    assert queue.pending == 3
    await join(queue)
    assert queue.pending == 0
    assert seen["pending"][:3] == [1, 2, 3]
    assert seen["pending"][-1] == 0
    assert max(seen["pending"]) == 3


async def test_concurrency_bounds_requests_in_flight():
    in_flight = 0
    peak = 0

    async def slow_sender(item: str) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1

    queue: DeliveryQueue[str] = DeliveryQueue(slow_sender, RetryPolicy(concurrency=2))
    for i in range(6):
        queue.put(f"k{i}", f"item{i}")
    await join(queue)
    assert peak == 2


async def test_stop_cancels_lanes_and_refuses_new_items():
    sender = FakeSender({"a1": 1000})
    queue, seen = make_queue(sender)
    queue.put("a", "a1")
    await asyncio.sleep(0)
    await queue.stop()
    assert queue.pending == 0
    assert seen["pending"][-1] == 0
    assert not queue.put("a", "a2")


async def test_configure_changes_the_bound_live():
    sender = FakeSender({"a1": 1000})
    queue, _ = make_queue(sender, max_queue=1)
    queue.put("a", "a1")
    assert not queue.put("b", "b1")
    queue.configure(RetryPolicy(max_queue=5))
    assert queue.put("b", "b1")
    await queue.stop()


# ---- signing -------------------------------------------------------------------------------


def test_signature_verifies_and_binds_body_secret_and_time():
    body = b'{"event_id":"evt_1"}'
    now = int(time.time())
    header = sign("s3cret", now, body)
    assert header.startswith(f"t={now},v1=")
    assert verify_signature("s3cret", header, body, now)
    assert not verify_signature("s3cret", header, body + b" ", now)
    assert not verify_signature("other", header, body, now)
    assert not verify_signature("s3cret", header, body, now + 301)
    assert not verify_signature("s3cret", "v1=" + header.partition("v1=")[2], body, now)
    assert not verify_signature("s3cret", "", body, now)


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", 1700000000, body) == f"t=1700000000,v1={expected}"


# ---- settings ------------------------------------------------------------------------------


def test_defaults_without_an_events_block():
    settings = parse_settings({}, {})
    assert settings.backend is None
    assert settings.retry == RetryPolicy()
    assert settings.stream == StreamSettings()


def test_backend_settings_read_the_secret_from_the_environment():
    settings = parse_settings(
        {"webhook_url": "https://backend.example/ev", "secret_env": "EV", "timeout_ms": 2500},
        {"EV": "the-secret-value"},
    )
    assert settings.backend == BackendSettings(
        "https://backend.example/ev", "the-secret-value", 2.5
    )
    assert "the-secret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "env", "problem"),
    [
        ({"webhook_url": "https://b.example/e"}, {}, "events: webhook_url and secret_env go"),
        ({"secret_env": "EV"}, {"EV": "x"}, "events: webhook_url and secret_env go"),
        (
            {"webhook_url": "https://b.example/e", "secret_env": "EV"},
            {},
            "events.secret_env: environment variable 'EV' is not set",
        ),
        ({"max_attempts": -1}, {}, "events.max_attempts: must be an integer from 0"),
        ({"max_queue": True}, {}, "events.max_queue: must be an integer"),
        ({"backoff_initial_s": float("nan")}, {}, "events.backoff_initial_s: must be a number"),
        ({"stream": []}, {}, "events.stream: must be a mapping"),
        ({"stream": {"buffer": 5}}, {}, "events.stream.buffer: unknown setting"),
    ],
)
def test_bad_settings_are_named_by_key_path(raw: dict[str, Any], env: dict[str, str], problem: str):
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, env)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


# ---- the stream's buffer -------------------------------------------------------------------


def event(payment_id: str, n: int = 0) -> dict[str, Any]:
    return {"event_id": f"evt_{payment_id}_{n}", "payment_id": payment_id, "type": "payment.x"}


def make_log(**settings: Any) -> EventLog:
    return EventLog(StreamSettings(**settings), first_seq=100)


async def test_sequence_ids_grow_by_one():
    log = make_log()
    assert [log.publish(event("p1", i), "alice") for i in range(3)] == [100, 101, 102]
    assert log.last_seq == 102


async def test_subscribers_get_only_matching_events():
    log = make_log()
    alice, _ = log.subscribe(Filter(player_id="alice"), None)
    one_payment, _ = log.subscribe(Filter(payment_id="p2"), None)
    log.publish(event("p1"), "alice")
    log.publish(event("p2"), "bob")
    log.publish(event("p3"), None)  # no player known: never on a player's stream
    assert [e.payment_id for e in drain(alice)] == ["p1"]
    assert [e.payment_id for e in drain(one_payment)] == ["p2"]


def drain(subscriber: Any) -> list[Any]:
    items = list(subscriber._items)
    subscriber._items.clear()
    return items


async def test_resume_replays_after_the_last_id_then_goes_live():
    log = make_log()
    for i in range(4):
        log.publish(event("p1", i), "alice")
    log.publish(event("p9"), "bob")
    subscriber, gap = log.subscribe(Filter(player_id="alice"), 101)
    assert not gap
    log.publish(event("p1", 9), "alice")
    assert [e.seq for e in drain(subscriber)] == [102, 103, 105]


@pytest.mark.parametrize(
    ("last_id", "gap"),
    [(101, False), (103, False), (104, False), (100, True), (105, True), (1, True)],
)
async def test_gap_when_the_buffer_cannot_cover_the_resume(last_id: int, gap: bool):
    log = make_log(buffer_size=3)
    for i in range(5):  # ids 100..104; 100 and 101 fall out of the buffer
        log.publish(event("p1", i), "alice")
    # 101 is fine: everything after it (102..104) is still there. 105 was never issued.
    _, found = log.subscribe(Filter(player_id="alice"), last_id)
    assert found is gap


async def test_a_slow_subscriber_is_cut_off_not_buffered_without_bound():
    log = make_log(subscriber_queue=2)
    subscriber, _ = log.subscribe(Filter(player_id="alice"), None)
    for i in range(3):
        log.publish(event("p1", i), "alice")
    with pytest.raises(StreamClosed, match="too slow"):
        await subscriber.next(0.01)


async def test_next_waits_for_an_event_or_the_timeout():
    log = make_log()
    subscriber, _ = log.subscribe(Filter(player_id="alice"), None)
    assert await subscriber.next(0.01) is None
    waiter = asyncio.create_task(subscriber.next(2))
    await asyncio.sleep(0)
    log.publish(event("p1"), "alice")
    entry = await asyncio.wait_for(waiter, 1)
    assert entry is not None and entry.frame.startswith(b"id: 100\ndata: {")
    log.close_all("shutdown")
    with pytest.raises(StreamClosed):
        await subscriber.next(2)


async def test_too_many_subscribers_is_refused():
    from gateway.problems import ApiError

    log = make_log(max_subscribers=1)
    first, _ = log.subscribe(Filter(player_id="a"), None)
    with pytest.raises(ApiError) as info:
        log.subscribe(Filter(player_id="b"), None)
    assert info.value.status == 503
    log.unsubscribe(first)
    log.subscribe(Filter(player_id="b"), None)
