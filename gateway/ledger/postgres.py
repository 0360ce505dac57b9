"""The PostgreSQL ledger: one database shared by every gateway of every host.

psycopg 3 with its connection pool, each transaction run whole on a thread of a pool as
large as the connection pool, so the event loop never waits on the network to the
database. Transactions are READ COMMITTED; the writes that decide ownership take row locks
(`SELECT ... FOR UPDATE`) or use `INSERT ... ON CONFLICT DO NOTHING`, so of two requests
racing for one key exactly one wins and the other reads the winner's row after it commits.

Pooled connections are checked before use: after a database restart the first query does
not fail on a dead connection. A statement (lock waits included) is bounded by
`statement_timeout`, and getting a connection by the pool timeout: the caller gets
`LedgerUnavailable` instead of a request that hangs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.ledger.database import LedgerUnavailable, Row

log = logging.getLogger("gateway.ledger")
T = TypeVar("T")


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (a literal `%` doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx:
    dialect = "postgres"
    for_update = " FOR UPDATE"

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cur = cursor

    def one(self, sql: str, *args: Any) -> Row | None:
        self._cur.execute(to_pyformat(sql), args)
        row: Row | None = self._cur.fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[Row]:
        self._cur.execute(to_pyformat(sql), args)
        return list(self._cur.fetchall())

    def run(self, sql: str, *args: Any) -> int:
        self._cur.execute(to_pyformat(sql), args)
        return self._cur.rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cur.executemany(to_pyformat(sql), rows)


def describe(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"postgres {host}{port}{parts.path}"


class PostgresDatabase:
    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        timeout_ms: int = 5000,
    ) -> None:
        self.description = describe(url)
        self.timeout_s = timeout_ms / 1000
        self._executor = ThreadPoolExecutor(
            max_workers=pool_size, thread_name_prefix="ledger-pg"
        )
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=self.timeout_s,
            check=ConnectionPool.check_connection,
            kwargs={
                "autocommit": False,
                "connect_timeout": max(1, int(self.timeout_s)),
                # Lock waits count: a row held by a stuck transaction cannot hang requests.
                "options": f"-c statement_timeout={timeout_ms}",
                # Prepared statements break behind a transaction-mode pgbouncer.
                "prepare_threshold": None,
            },
        )
        self._opened = False

    def _open(self) -> None:
        if not self._opened:
            self._pool.open(wait=False)
            self._opened = True

    def _transaction(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            self._open()
            with self._pool.connection(timeout=self.timeout_s) as conn:
                conn.read_only = not write
                with conn.cursor() as cursor:
                    return fn(_PgTx(cursor), *args)
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            if not isinstance(exc, psycopg.OperationalError | PoolTimeout | OSError):
                log.exception("postgres ledger: statement failed")
            raise LedgerUnavailable(f"postgres ledger: {type(exc).__name__}: {exc}") from exc

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, True, fn, args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, False, fn, args)

    def run_now(self, fn: Callable[..., T], *args: Any) -> T:
        return self._transaction(True, fn, args)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.close_now)

    def close_now(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False
        self._executor.shutdown(wait=False)
