"""The ledger's schema: numbered forward migrations, applied at start and by `ledger migrate`.

`ledger_meta.schema_version` says which migrations a database has. A database newer than
this code (migrated by a later release) is refused: this code could misread its rows.
Migrations take the write lock first (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory
lock), so processes starting together apply each migration once.

Amounts are integer minor units (BIGINT), times are Unix seconds (DOUBLE PRECISION), JSON is
TEXT written by the gateway.
"""

from __future__ import annotations

from gateway.ledger.database import LedgerTooNew, Tx

# Any constant will do; it only has to be the same in every process migrating one database.
_PG_MIGRATION_LOCK = 7_301_911_204

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "idempotency claims, payments, status history, attempts, provider events",
        [
            """CREATE TABLE idempotency_claims (
                client_id TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                state TEXT NOT NULL,
                token TEXT NOT NULL,
                owner TEXT,
                unknown INTEGER NOT NULL DEFAULT 0,
                http_status INTEGER,
                answer TEXT,
                payment_id TEXT,
                since DOUBLE PRECISION NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (client_id, idem_key)
            )""",
            "CREATE INDEX idempotency_claims_updated ON idempotency_claims (updated_at)",
            """CREATE TABLE payments (
                payment_id TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                player_id TEXT NOT NULL,
                type TEXT NOT NULL,
                amount BIGINT NOT NULL,
                currency TEXT NOT NULL,
                provider TEXT NOT NULL,
                provider_reference TEXT,
                reference TEXT NOT NULL,
                status TEXT NOT NULL,
                next_action TEXT,
                attempts TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                version BIGINT NOT NULL
            )""",
            "CREATE INDEX payments_provider_reference ON payments (provider, provider_reference)",
            "CREATE INDEX payments_reference ON payments (provider, reference)",
            "CREATE INDEX payments_player ON payments (player_id, created_at)",
            "CREATE INDEX payments_updated ON payments (updated_at)",
            """CREATE TABLE payment_status_history (
                payment_id TEXT NOT NULL,
                from_status TEXT,
                to_status TEXT NOT NULL,
                source TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX payment_status_history_payment ON payment_status_history (payment_id)",
            """CREATE TABLE payment_attempts (
                client_id TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                provider TEXT NOT NULL,
                outcome TEXT NOT NULL,
                error_code TEXT,
                at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX payment_attempts_claim ON payment_attempts (client_id, idem_key)",
            """CREATE TABLE provider_events (
                provider TEXT NOT NULL,
                provider_event_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                state TEXT NOT NULL,
                payment_id TEXT,
                type TEXT NOT NULL,
                detail TEXT NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (provider, provider_event_id)
            )""",
            "CREATE INDEX provider_events_received ON provider_events (received_at)",
        ],
    ),
]

LATEST = MIGRATIONS[-1][0]


def _ensure_meta(tx: Tx) -> None:
    tx.run("CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


def current_version(tx: Tx) -> int:
    row = tx.one("SELECT value FROM ledger_meta WHERE name = 'schema_version'")
    return int(row[0]) if row else 0


def migrate(tx: Tx, target: int = LATEST) -> list[int]:
    """Apply every migration above the database's version; the versions applied."""
    if tx.dialect == "postgres":
        tx.one("SELECT pg_advisory_xact_lock(?)", _PG_MIGRATION_LOCK)
    _ensure_meta(tx)
    version = current_version(tx)
    if version > LATEST:
        raise LedgerTooNew(
            f"the ledger's schema is version {version}, newer than this gateway's {LATEST}: "
            "run the newer gateway, or restore a backup made for this one"
        )
    applied: list[int] = []
    for number, _title, statements in MIGRATIONS:
        if version < number <= target:
            for statement in statements:
                tx.run(statement)
            applied.append(number)
    if applied:
        tx.run(
            "INSERT INTO ledger_meta (name, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            str(applied[-1]),
        )
    return applied


def check_version(tx: Tx) -> int:
    """The database's version (once migrated); LedgerTooNew when newer than this code."""
    version = current_version(tx)
    if version > LATEST:
        raise LedgerTooNew(
            f"the ledger's schema is version {version}, newer than this gateway's {LATEST}"
        )
    return version
