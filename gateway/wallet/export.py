"""`casino-gateway wallet export --date YYYY-MM-DD`: one day's wallet totals, for reconciliation.

One CSV row per provider and currency, of the transactions recorded that UTC day: the debits
and credits the backend accepted (a reversed one too: its rollback is counted beside it)
and the rollbacks that reversed something, each as a count and an amount in the currency's
minor units. The same day exported twice gives the same file once the day is over.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from typing import TextIO

from gateway.config.errors import ConfigError
from gateway.config.load import load_config
from gateway.config.model import LedgerSettings
from gateway.ledger import schema, wallet
from gateway.ledger.database import LedgerTooNew, LedgerUnavailable, Tx
from gateway.ledger.ledger import open_database

COLUMNS = (
    "date",
    "provider",
    "currency",
    "debits",
    "debit_amount",
    "credits",
    "credit_amount",
    "rollbacks",
    "rollback_amount",
)


def day_bounds(day: dt.date) -> tuple[float, float]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def _totals(tx: Tx, start: float, end: float) -> list[tuple[str, str, str, int, int]]:
    schema.check_version(tx)
    return wallet.totals(tx, start, end)


def export(settings: LedgerSettings, day: dt.date, out: TextIO) -> int:
    """Write the day's CSV to `out`; the number of rows. LedgerUnavailable or LedgerTooNew
    when the ledger cannot be read."""
    db = open_database(settings)
    try:
        totals = db.run_now(_totals, *day_bounds(day))
    finally:
        db.close_now()
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for provider, currency, operation, count, amount in totals:
        row = rows.setdefault((provider, currency), {})
        plural = {"debit": "debits", "credit": "credits", "rollback": "rollbacks"}[operation]
        row[plural] = count
        row[f"{operation}_amount"] = amount
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for (provider, currency), row in sorted(rows.items()):
        writer.writerow(
            [day.isoformat(), provider, currency, *(row.get(c, 0) for c in COLUMNS[3:])]
        )
    return len(rows)


def run_export(config_path: str, day: dt.date) -> int:
    """The command: the CSV on stdout and 0, or why not on stderr and 1."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 1
    try:
        export(config.ledger, day, sys.stdout)
    except (LedgerUnavailable, LedgerTooNew) as exc:
        print(f"ledger error: {exc}", file=sys.stderr)
        return 1
    return 0
