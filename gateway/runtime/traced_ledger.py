"""The ledger's database with each write transaction as a span of the request that made it.

A wrapper rather than spans inside the ledger: the ledger imports nothing of `gateway.obs`,
and this way every write is covered, whichever ledger function runs it. Outside a request or
with tracing off, a write pays one context-variable read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from gateway.ledger.database import Database
from gateway.obs import tracing

T = TypeVar("T")


def transaction_name(fn: Callable[..., Any]) -> str:
    """`claims.finish` for `gateway.ledger.claims.finish` (or a partial of it)."""
    fn = getattr(fn, "func", fn)
    module = getattr(fn, "__module__", "") or ""
    return f"{module.rpartition('.')[2]}.{getattr(fn, '__qualname__', type(fn).__name__)}"


class TracedDatabase:
    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.description = inner.description

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if tracing.current() is None:
            return await self.inner.run(fn, *args)
        attributes = {"db.system": self.dialect, "ledger.transaction": transaction_name(fn)}
        with tracing.span("ledger write", attributes):
            return await self.inner.run(fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.inner.read(fn, *args)

    def run_now(self, fn: Callable[..., T], *args: Any) -> T:
        return self.inner.run_now(fn, *args)

    async def close(self) -> None:
        await self.inner.close()

    def close_now(self) -> None:
        self.inner.close_now()

    def __getattr__(self, name: str) -> Any:
        # What a backend offers beyond the protocol (tests reach into SQLite's connection).
        return getattr(self.inner, name)
