"""Row Q's PostgreSQL: a throwaway database on the local server, created for the row and
dropped after it, and the server processes that work for it (so their CPU counts as the
row's servers', not as other work on the machine)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from progress import progress

# Loopback only; the server's `postgres` user, trusted on 127.0.0.1 as in the tests.
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 5
# Processes that write or flush for every database's commits.
SHARED_BACKENDS = ("walwriter", "checkpointer", "background writer")


class PostgresUnavailable(Exception):
    """No server to create the database on: the row is marked not available."""


@dataclass
class ThrowawayDatabase:
    name: str
    url: str  # for the gateway (its ledger's url_env)

    def server_pids(self) -> list[int]:
        """The local server processes working for this database now: its connections'
        backends and the shared WAL and checkpoint writers. Empty when the server is not a
        process of this machine (another container) or cannot be asked."""
        try:
            with _admin() as conn:
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s OR backend_type = ANY(%s)",
                    (self.name, list(SHARED_BACKENDS)),
                ).fetchall()
        except PostgresUnavailable:
            return []
        return [pid for (pid,) in rows if _is_local_postgres(int(pid))]


def _admin() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise PostgresUnavailable("psycopg is not installed") from exc
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise PostgresUnavailable(f"no PostgreSQL at {ADMIN_URL}: {exc}".strip()) from exc


def _is_local_postgres(pid: int) -> bool:
    # A pid from the server's own namespace may name an unrelated process here.
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"postgres")
    except OSError:
        return False


@contextlib.contextmanager
def throwaway_database() -> Iterator[ThrowawayDatabase]:
    """Create an empty database; drop it (closing whatever still uses it) on the way out.
    Raises PostgresUnavailable, before anything is created, when there is no server or it
    will not create one."""
    name = f"bench_{secrets.token_hex(8)}"
    with _admin() as conn:
        import psycopg  # installed: _admin connected with it

        try:
            conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as exc:
            raise PostgresUnavailable(f"cannot create a database: {exc}".strip()) from exc
    try:
        yield ThrowawayDatabase(name, f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    finally:
        try:
            with _admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except (PostgresUnavailable, psycopg.Error) as exc:
            # Said, not raised: it must not hide why the row ended.
            progress(f"could not drop the database {name}: {exc}")
