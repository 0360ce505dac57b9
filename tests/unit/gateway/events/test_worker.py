"""The delivery worker against a real (in-memory) ledger and a fake backend.

Backoffs are a few milliseconds and the jitter is off, so order, retries and give-ups are
checked exactly and quickly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.config.events import BackendSettings, RetryPolicy
from gateway.config.model import LedgerSettings
from gateway.events.delivery import Outgoing
from gateway.events.worker import DeliveryWorker
from gateway.ledger import outbox
from gateway.ledger.ledger import Ledger
from gateway.ledger.outbox import Announcement
from gateway.obs.metrics import Metrics

BACKEND = BackendSettings("http://127.0.0.1:9/events", "secret", timeout_s=1.0)


class FakeBackend:
    """Fails each event as often as told; records every attempt, and how many overlap."""

    def __init__(self, failures: dict[str, int] | None = None, hold_s: float = 0.0) -> None:
        self.failures = dict(failures or {})
        self.hold_s = hold_s
        self.attempts: list[str] = []
        self.delivered: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, backend: BackendSettings, item: Outgoing) -> None:
        self.attempts.append(item.event_id)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.hold_s)
            if self.failures.get(item.event_id, 0) > 0:
                self.failures[item.event_id] -= 1
                raise ConnectionError(f"backend down for {item.event_id}")
            self.delivered.append(item.event_id)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def ledger() -> AsyncIterator[Ledger]:
    led = Ledger(LedgerSettings(backend="memory"))
    await led.start()
    yield led
    await led.close()


async def run_worker(
    ledger: Ledger, backend: FakeBackend, **policy: Any
) -> tuple[DeliveryWorker, Metrics]:
    retry = RetryPolicy(**{"backoff_initial_s": 0.01, "backoff_max_s": 0.04, **policy})
    metrics = Metrics()
    worker = DeliveryWorker(
        ledger, backend, lambda: (BACKEND, retry), metrics, jitter=lambda d: d, poll_s=0.01
    )
    worker.start()
    return worker, metrics


async def write(ledger: Ledger, *items: tuple[str, str]) -> None:
    events = [Announcement({"event_id": e, "payment_id": p, "type": "payment.x"}, None)
              for e, p in items]
    await ledger.run(outbox.append, events, True, ledger.clock())


def count(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "gateway_event_deliveries_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_each_payment_s_events_arrive_in_order_through_failures(ledger: Ledger):
    backend = FakeBackend({"a1": 3, "b1": 1})
    await write(ledger, ("a1", "pa"), ("b1", "pb"), ("a2", "pa"), ("b2", "pb"), ("a3", "pa"))
    worker, metrics = await run_worker(ledger, backend)
    await worker.join()
    await worker.stop()
    delivered = backend.delivered
    assert [e for e in delivered if e.startswith("a")] == ["a1", "a2", "a3"]
    assert [e for e in delivered if e.startswith("b")] == ["b1", "b2"]
    assert backend.attempts.count("a1") == 4 and backend.attempts.count("a2") == 1
    # b's events were not held up by a's failures.
    assert delivered.index("b2") < delivered.index("a1")
    assert (count(metrics, "delivered"), count(metrics, "failed")) == (5.0, 4.0)


async def test_max_attempts_gives_up_and_lets_the_next_event_go(ledger: Ledger):
    backend = FakeBackend({"a1": 100})
    await write(ledger, ("a1", "pa"), ("a2", "pa"))
    worker, metrics = await run_worker(ledger, backend, max_attempts=3)
    await worker.join()
    await worker.refresh_gauges()
    await worker.stop()
    assert backend.attempts == ["a1", "a1", "a1", "a2"]
    assert backend.delivered == ["a2"]
    assert count(metrics, "given_up") == 1.0
    assert metrics.registry.get_sample_value("gateway_event_deliveries_failing") == 1.0
    assert metrics.registry.get_sample_value("gateway_event_deliveries_pending") == 0.0
    (given_up,) = await ledger.deliveries("failing", 10)
    assert (given_up["event_id"], given_up["status"]) == ("a1", "given_up")
    assert given_up["last_error"] == "ConnectionError: backend down for a1"


async def test_concurrency_bounds_sends_in_flight(ledger: Ledger):
    backend = FakeBackend(hold_s=0.02)
    await write(ledger, *[(f"e{i}", f"p{i}") for i in range(12)])
    worker, _ = await run_worker(ledger, backend, concurrency=3)
    await worker.join()
    await worker.stop()
    assert sorted(backend.delivered) == sorted(f"e{i}" for i in range(12))
    assert backend.most_in_flight == 3


async def test_two_workers_on_one_ledger_never_send_an_event_twice(ledger: Ledger):
    backend = FakeBackend(hold_s=0.01)
    await write(ledger, *[(f"e{i}", f"p{i % 5}") for i in range(30)])
    one, _ = await run_worker(ledger, backend)
    two, _ = await run_worker(ledger, backend)
    await one.join()
    await asyncio.gather(one.stop(), two.stop())
    assert sorted(backend.attempts) == sorted(f"e{i}" for i in range(30))


async def test_a_stopped_worker_gives_its_leases_back(ledger: Ledger):
    backend = FakeBackend(hold_s=10)
    await write(ledger, ("a1", "pa"))
    worker, _ = await run_worker(ledger, backend)
    while not backend.attempts:
        await asyncio.sleep(0.01)
    await worker.stop()
    # Another process takes it at once, not after the lease would have run out.
    assert [i.row.event_id for i in await ledger.lease_deliveries("next", 10, 30)] == ["a1"]


async def test_a_worker_stopped_as_it_is_woken_stops(ledger: Ledger):
    # The cancel lands in the same turn as the wake-up: a wait that returned its result
    # instead of the cancel (asyncio.wait_for on Python 3.11) would keep the worker going.
    worker = DeliveryWorker(
        ledger, FakeBackend(), lambda: (BACKEND, RetryPolicy()), Metrics(), poll_s=5.0
    )
    worker.start()
    await asyncio.sleep(0.05)  # past its first round, waiting to be woken
    worker.wake()
    async with asyncio.timeout(2):  # TimeoutError: the worker went on
        await worker.stop()
