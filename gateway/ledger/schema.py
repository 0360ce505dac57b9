"""The ledger's schema: numbered forward migrations, applied at start and by `ledger migrate`.

`ledger_meta.applied_migrations` lists the migrations a database has, and `schema_version`
the highest of them. Every migration of this code a database lacks is applied, in list
order, gaps included: migrations are numbered when they are written, not when they ship,
so a database that has a higher number may still lack a lower one. A database
with a migration this code does not know (migrated by a later release) is refused: this
code could misread its rows.
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
    (
        2,
        "wallet transactions",
        [
            # One row a wallet transaction by the provider's own id (`gateway.ledger.wallet`):
            # its request's fingerprint, amount (minor units), state, and the answer given
            # (outcome and balance). A tombstone row holds the id of a transaction whose
            # rollback came first.
            """CREATE TABLE wallet_transactions (
                provider TEXT NOT NULL,
                transaction_id TEXT NOT NULL,
                operation TEXT NOT NULL,
                state TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                player_id TEXT NOT NULL,
                currency TEXT,
                amount BIGINT,
                round_id TEXT,
                game_id TEXT,
                reference_id TEXT,
                outcome TEXT,
                balance BIGINT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (provider, transaction_id)
            )""",
            "CREATE INDEX wallet_transactions_player "
            "ON wallet_transactions (player_id, created_at)",
            "CREATE INDEX wallet_transactions_round ON wallet_transactions (round_id)",
            "CREATE INDEX wallet_transactions_created ON wallet_transactions (created_at)",
            "CREATE INDEX wallet_transactions_updated ON wallet_transactions (updated_at)",
        ],
    ),
    (
        3,
        "refunds",
        [
            # One row a refund the gateway asked for. `state` is the gateway's own: `sending`
            # while a request holds it (under its fence `token`), `sent` once the provider's
            # answer is recorded, `unknown` when that answer never came. `status` is the
            # refund's, moved forward by answers and webhooks alike.
            """CREATE TABLE refunds (
                refund_id TEXT PRIMARY KEY,
                payment_id TEXT NOT NULL,
                client_id TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                provider TEXT NOT NULL,
                provider_reference TEXT,
                amount BIGINT NOT NULL,
                currency TEXT NOT NULL,
                reason TEXT,
                status TEXT NOT NULL,
                state TEXT NOT NULL,
                token TEXT NOT NULL,
                since DOUBLE PRECISION NOT NULL,
                http_status INTEGER,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                version BIGINT NOT NULL
            )""",
            "CREATE UNIQUE INDEX refunds_key ON refunds (client_id, idem_key)",
            "CREATE INDEX refunds_payment ON refunds (payment_id)",
            "CREATE INDEX refunds_provider_reference ON refunds (provider, provider_reference)",
            "CREATE INDEX refunds_updated ON refunds (updated_at)",
        ],
    ),
    (
        4,
        "event outbox",
        [
            # One row: the last sequence number given to an event, and the newest one
            # pruned (a stream resuming from before it may have missed events).
            """CREATE TABLE event_sequence (
                id INTEGER PRIMARY KEY,
                last_seq BIGINT NOT NULL,
                pruned_through BIGINT NOT NULL
            )""",
            "INSERT INTO event_sequence (id, last_seq, pruned_through) VALUES (1, 0, 0)",
            # `delivery`: pending | delivered | given_up | none (no backend when written).
            # `trace`: the W3C trace headers of the request that caused the event, sent
            # with each delivery.
            """CREATE TABLE event_outbox (
                seq BIGINT PRIMARY KEY,
                event_id TEXT NOT NULL,
                payment_id TEXT NOT NULL,
                player_id TEXT,
                type TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                delivery TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_at DOUBLE PRECISION NOT NULL,
                lease_owner TEXT,
                lease_until DOUBLE PRECISION,
                last_error TEXT,
                delivered_at DOUBLE PRECISION,
                trace TEXT
            )""",
            "CREATE UNIQUE INDEX event_outbox_event ON event_outbox (event_id)",
            "CREATE INDEX event_outbox_delivery ON event_outbox (delivery, payment_id, seq)",
            "CREATE INDEX event_outbox_player ON event_outbox (player_id, seq)",
            "CREATE INDEX event_outbox_created ON event_outbox (created_at)",
        ],
    ),
]

LATEST = max(number for number, _title, _statements in MIGRATIONS)
KNOWN = frozenset(number for number, _title, _statements in MIGRATIONS)


def _ensure_meta(tx: Tx) -> None:
    tx.run("CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


def current_version(tx: Tx) -> int:
    row = tx.one("SELECT value FROM ledger_meta WHERE name = 'schema_version'")
    return int(row[0]) if row else 0


def applied_migrations(tx: Tx) -> set[int]:
    """The migrations the database has. One migrated before they were listed has every
    migration up to its version (they were applied in order then)."""
    row = tx.one("SELECT value FROM ledger_meta WHERE name = 'applied_migrations'")
    if row is not None:
        return {int(n) for n in str(row[0]).split(",") if n.strip()}
    return set(range(1, current_version(tx) + 1))


def _set_meta(tx: Tx, name: str, value: str) -> None:
    tx.run(
        "INSERT INTO ledger_meta (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        name,
        value,
    )


def migrate(tx: Tx, target: int = LATEST) -> list[int]:
    """Apply every migration the database lacks (up to `target`), in list order; the
    numbers applied."""
    if tx.dialect == "postgres":
        tx.one("SELECT pg_advisory_xact_lock(?)", _PG_MIGRATION_LOCK)
    _ensure_meta(tx)
    have = applied_migrations(tx)
    _refuse_unknown(have, current_version(tx))
    applied: list[int] = []
    for number, _title, statements in MIGRATIONS:
        if number not in have and number <= target:
            for statement in statements:
                tx.run(statement)
            applied.append(number)
    if applied:
        have |= set(applied)
        _set_meta(tx, "applied_migrations", ",".join(str(n) for n in sorted(have)))
        _set_meta(tx, "schema_version", str(max(have)))
    return applied


def _refuse_unknown(have: set[int], version: int) -> None:
    unknown = sorted(have - KNOWN)
    if version > LATEST:
        raise LedgerTooNew(
            f"the ledger's schema is version {version}, newer than this gateway's {LATEST}: "
            "run the newer gateway, or restore a backup made for this one"
        )
    if unknown:
        raise LedgerTooNew(
            f"the ledger has migration(s) {', '.join(map(str, unknown))} this gateway does not "
            f"know (its latest is {LATEST}): run the newer gateway, or restore a backup made "
            "for this one"
        )


def check_version(tx: Tx) -> int:
    """The database's version (once migrated); LedgerTooNew when it has a migration this
    code does not know."""
    version = current_version(tx)
    _refuse_unknown(applied_migrations(tx), version)
    return version
