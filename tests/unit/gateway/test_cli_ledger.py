"""`casino-gateway ledger migrate` and the ledger checks of `casino-gateway run`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.ledger import schema

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def stripe_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TEST_STRIPE_KEY", "sk_test_cli")


def write_config(tmp_path: Path, ledger: dict[str, object]) -> Path:
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
        "ledger": ledger,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_migrate_creates_the_schema_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    db = tmp_path / "state" / "ledger.db"
    config = write_config(tmp_path, {"backend": "sqlite", "path": str(db)})
    assert main(["ledger", "migrate", "--config", str(config)]) == 0
    first = capsys.readouterr()
    assert f"applied migrations {[n for n, _, _ in schema.MIGRATIONS]}" in first.err
    assert first.out == f"ledger schema is at version {schema.LATEST}\n"
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"idempotency_claims", "payments", "provider_events", "ledger_meta"} <= tables
    assert main(["ledger", "migrate", "--config", str(config)]) == 0
    second = capsys.readouterr()
    assert second.err == ""  # nothing left to apply


def test_migrate_refuses_a_newer_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    db = tmp_path / "ledger.db"
    config = write_config(tmp_path, {"backend": "sqlite", "path": str(db)})
    assert main(["ledger", "migrate", "--config", str(config)]) == 0
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE ledger_meta SET value = ? WHERE name = 'schema_version'",
            (str(schema.LATEST + 1),),
        )
    capsys.readouterr()
    assert main(["ledger", "migrate", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ledger error: the ledger's schema is version")
    assert "newer than this gateway's" in err


def test_run_refuses_a_newer_database_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    db = tmp_path / "ledger.db"
    config = write_config(tmp_path, {"backend": "sqlite", "path": str(db)})
    assert main(["ledger", "migrate", "--config", str(config)]) == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE ledger_meta SET value = '99' WHERE name = 'schema_version'")
    # A process of its own: `run` configures the process's logging for good.
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(config), "--port", "0"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("ledger error: ") and "Traceback" not in done.stderr


def test_check_names_the_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = write_config(tmp_path, {"backend": "memory"})
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "ledger: memory (payments forgotten at restart; tests only)" in out
