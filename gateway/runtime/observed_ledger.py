"""The ledger's database, observed: each write transaction is a span of the request that made
it, and every transaction's outcome says whether the ledger is up (`gateway_ledger_up`).

A wrapper rather than code inside the ledger: the ledger imports nothing of `gateway.obs`, and
this way every transaction is covered, whichever ledger function runs it. Outside a request
or with tracing off, a write pays one context-variable read for its span.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.ledger.database import Database, LedgerUnavailable
from gateway.obs import tracing

if TYPE_CHECKING:
    from gateway.ledger.ledger import Ledger

T = TypeVar("T")
# An idle gateway still notices a ledger that went away (and came back) within this time.
PROBE_INTERVAL_S = 10.0


def transaction_name(fn: Callable[..., Any]) -> str:
    """`claims.finish` for `gateway.ledger.claims.finish` (or a partial of it)."""
    fn = getattr(fn, "func", fn)
    module = getattr(fn, "__module__", "") or ""
    return f"{module.rpartition('.')[2]}.{getattr(fn, '__qualname__', type(fn).__name__)}"


class ObservedDatabase:
    def __init__(self, inner: Database, on_health: Callable[[bool], None]) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.description = inner.description
        self._on_health = on_health
        self._up: bool | None = None

    def _health(self, up: bool) -> None:
        if up is not self._up:
            self._up = up
            self._on_health(up)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            if tracing.current() is None:
                result = await self.inner.run(fn, *args)
            else:
                attributes = {"db.system": self.dialect, "ledger.transaction": transaction_name(fn)}
                with tracing.span("ledger write", attributes):
                    result = await self.inner.run(fn, *args)
        except LedgerUnavailable:
            self._health(False)
            raise
        self._health(True)
        return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            result = await self.inner.read(fn, *args)
        except LedgerUnavailable:
            self._health(False)
            raise
        self._health(True)
        return result

    def run_now(self, fn: Callable[..., T], *args: Any) -> T:
        return self.inner.run_now(fn, *args)

    async def close(self) -> None:
        await self.inner.close()

    def close_now(self) -> None:
        self.inner.close_now()

    def __getattr__(self, name: str) -> Any:
        # What a backend offers beyond the protocol (tests reach into SQLite's connection).
        return getattr(self.inner, name)


async def probe_forever(ledger: Ledger, interval_s: float = PROBE_INTERVAL_S) -> None:
    """Read the ledger's schema version now and then: its outcome feeds the health above."""
    while True:
        await asyncio.sleep(interval_s)
        await ledger.status()
