"""`casino-gateway wallet export --date`: one UTC day's wallet totals as CSV."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from adapters.wallet import WalletCall
from gateway.cli import main
from gateway.config.model import LedgerSettings
from gateway.ledger.ledger import Ledger
from tests.unit.gateway.ledger.test_ledger import Clock

DAY = dt.date(2026, 11, 30)
NOON = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC).timestamp()


@pytest.fixture(autouse=True)
def stripe_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TEST_STRIPE_KEY", "sk_test_cli")


def write_config(tmp_path: Path, db: Path) -> Path:
    path = tmp_path / "providers.yaml"
    doc = {
        "version": 1,
        "providers": {
            "stripe": {
                "adapter": "stripe",
                "base_url": "http://127.0.0.1:9",
                "credentials": {"secret_key_env": "CLI_TEST_STRIPE_KEY"},
            }
        },
        "routes": {"payments.create": {"providers": ["stripe"]}},
        "ledger": {"backend": "sqlite", "path": str(db)},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def call(
    operation: str, tx: str, amount: int | None, currency: str = "EUR", ref: str | None = None
) -> WalletCall:
    return WalletCall(
        operation,
        "p1",
        currency,
        "tok",
        "r",
        transaction_id=tx,  # type: ignore[arg-type]
        amount=amount,
        round_id=f"round-{tx}",
        reference_transaction_id=ref,
    )


async def record(ledger: Ledger, provider: str, c: WalletCall, state: str = "done") -> None:
    await ledger.wallet_begin(provider, c, None)
    assert c.transaction_id is not None
    await ledger.wallet_finish(provider, c.transaction_id, state, "ok", 0)


async def test_a_days_totals_per_provider_and_currency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.db"
    clock = Clock()
    clock.now = NOON
    ledger = Ledger(LedgerSettings(backend="sqlite", path=str(db)), clock=clock)
    await ledger.start()
    try:
        await record(ledger, "hub88", call("debit", "b1", 100))
        await record(ledger, "hub88", call("debit", "b2", 300))
        await record(ledger, "hub88", call("credit", "w1", 250, ref="b1"))
        await record(ledger, "hub88", call("rollback", "rb2", None, ref="b2"))  # reverses b2
        await record(ledger, "hub88", call("rollback", "rb9", None, ref="unseen"))  # nothing
        await record(ledger, "hub88", call("debit", "b3", 999), state="refused")
        await record(ledger, "slotegrator", call("debit", "s1", 5, currency="JPY"))
        clock.now = NOON + 86400  # the next day: not in the export
        await record(ledger, "hub88", call("debit", "b4", 7))
    finally:
        await ledger.close()
    config = write_config(tmp_path, db)
    assert main(["wallet", "export", "--date", DAY.isoformat(), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "date,provider,currency,debits,debit_amount,credits,credit_amount,rollbacks,"
        "rollback_amount",
        "2026-11-30,hub88,EUR,2,400,1,250,1,300",
        "2026-11-30,slotegrator,JPY,1,5,0,0,0,0",
    ]


def test_a_bad_date_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, tmp_path / "ledger.db")
    with pytest.raises(SystemExit) as exited:
        main(["wallet", "export", "--date", "30/11/2026", "--config", str(config)])
    assert exited.value.code == 2
    assert "not a date (YYYY-MM-DD)" in capsys.readouterr().err


def test_an_unmigrated_ledger_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, tmp_path / "empty.db")
    assert main(["wallet", "export", "--date", DAY.isoformat(), "--config", str(config)]) == 1
    assert capsys.readouterr().err.startswith("ledger error:")
