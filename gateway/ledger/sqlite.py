"""The SQLite ledger: one file shared by every process of one host (or memory, for tests).

WAL lets readers run beside the one writer; every write transaction starts with
`BEGIN IMMEDIATE`, so it takes the write lock before it reads and waits for another
process's writer (up to `busy_timeout_ms`) instead of failing on a stale snapshot
(a deferred transaction that reads and then writes fails at once under contention).
`synchronous=FULL` by default: a commit survives a power loss, not only a crash.

The connection lives on one thread of its own; each transaction runs there whole.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.ledger.database import LedgerUnavailable, Row

log = logging.getLogger("gateway.ledger")
T = TypeVar("T")
MEMORY = ":memory:"


class _SqliteTx:
    dialect = "sqlite"
    for_update = ""  # BEGIN IMMEDIATE already holds the database's write lock

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def one(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[Row]:
        return list(self._conn.execute(sql, args).fetchall())

    def run(self, sql: str, *args: Any) -> int:
        return self._conn.execute(sql, args).rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(
        self, path: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 5000
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.description = "sqlite (memory)" if path == MEMORY else f"sqlite {path}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Explicit transactions only (isolation_level=None): the implicit BEGIN of the
        # default mode skips SELECTs, which loses updates made between a read and a write.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
        )
        if self.path != MEMORY:
            conn.execute("PRAGMA journal_mode=WAL")
        # Per connection, not stored in the file: set on every new one.
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn
        return conn

    def _transaction(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except (sqlite3.Error, OSError) as exc:
            raise LedgerUnavailable(f"sqlite ledger: {exc}") from exc
        try:
            result = fn(_SqliteTx(conn), *args)
            conn.execute("COMMIT")
            return result
        except BaseException as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("sqlite ledger: rollback failed")
            if isinstance(exc, sqlite3.Error):
                raise LedgerUnavailable(f"sqlite ledger: {exc}") from exc
            raise

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, True, fn, args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, False, fn, args)

    def run_now(self, fn: Callable[..., T], *args: Any) -> T:
        return self._executor.submit(self._transaction, True, fn, args).result()

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    def close_now(self) -> None:
        self._executor.submit(self._close).result()
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
