"""The seam under the ledger: a transaction runner and the one SQL dialect both backends speak.

Every ledger operation is a plain synchronous function of a `Tx` (no I/O but its SQL), run
whole by `Database.run` on the database's own thread(s): SQLite's connection lives on one
thread, PostgreSQL's pooled connections on a small pool of them. The event loop awaits the
result; it never blocks on the database.

SQL is written once with `?` placeholders and types both engines accept (TEXT, BIGINT,
DOUBLE PRECISION). The few differences are named here (`Tx.for_update`) or in the schema.
A transaction commits when its function returns and rolls back when it raises. Any
failure to reach the database or to commit is `LedgerUnavailable`: the caller then sends
no money.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]


class LedgerUnavailable(Exception):
    """The ledger could not be read or written; no money may move on an unknown record."""


class LedgerTooNew(Exception):
    """The database was migrated by a newer version of the gateway than this one."""


class Tx(Protocol):
    """One open transaction."""

    dialect: str  # "sqlite" | "postgres"

    @property
    def for_update(self) -> str:
        """Row-lock suffix of a SELECT that is followed by an UPDATE of the same row."""
        ...

    def one(self, sql: str, *args: Any) -> Row | None: ...

    def all(self, sql: str, *args: Any) -> list[Row]: ...

    def run(self, sql: str, *args: Any) -> int:
        """Execute a statement; the number of rows it changed."""
        ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Database(Protocol):
    dialect: str
    description: str  # for logs and /readyz: never carries a password

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(tx, *args)` as one write transaction."""
        ...

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(tx, *args)` as one read-only transaction."""
        ...

    def run_now(self, fn: Callable[..., T], *args: Any) -> T:
        """The same as `run`, blocking: for the command line (migrations), not the loop."""
        ...

    async def close(self) -> None: ...

    def close_now(self) -> None:
        """Close without a running event loop (the command line)."""
        ...
