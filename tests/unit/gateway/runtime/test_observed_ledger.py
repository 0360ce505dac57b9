"""The observed ledger: each transaction's outcome is the ledger's health, said once per change,
and the probe keeps asking while the gateway is idle."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from gateway.ledger.database import LedgerUnavailable
from gateway.runtime.observed_ledger import ObservedDatabase, probe_forever


class FlakyDatabase:
    dialect = "sqlite"
    description = "sqlite test"

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.read(fn, *args)

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.calls += 1
        if self.down:
            raise LedgerUnavailable("database is locked")
        return fn(None, *args)

    def run_now(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(None, *args)

    async def close(self) -> None:
        pass

    def close_now(self) -> None:
        pass


async def test_the_ledger_is_up_or_down_as_its_last_transaction_says() -> None:
    inner = FlakyDatabase()
    said: list[bool] = []
    db = ObservedDatabase(inner, said.append)
    assert await db.run(lambda tx, x: x + 1, 1) == 2
    assert await db.read(lambda tx: "v") == "v"
    inner.down = True
    for call in (db.run, db.read, db.run):
        with pytest.raises(LedgerUnavailable):
            await call(lambda tx: None)
    inner.down = False
    await db.read(lambda tx: None)
    assert said == [True, False, True]  # once per change, not once per transaction


async def test_the_probe_reads_the_ledger_until_cancelled() -> None:
    class Ledger:
        def __init__(self) -> None:
            self.asked = 0

        async def status(self) -> dict[str, Any]:
            self.asked += 1
            return {"ok": True}

    ledger = Ledger()
    task = asyncio.create_task(probe_forever(ledger, 0.01))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ledger.asked >= 3
