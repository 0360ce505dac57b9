"""`python bench/run.py --smoke` runs end to end and writes a complete result.

It checks the harness (nginx upstream, proxies, gateways, wrk, the paced client, the report),
not the numbers: a one-second row on a busy CI machine says nothing about speed. wrk and
nginx come from Debian (`apt-get install -y wrk nginx`, done by .ci/run); when they are
missing they are installed, or the test fails: it never skips, so a machine without them is
noticed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system_tools import require

ROOT = Path(__file__).resolve().parents[2]
SMOKE_TIMEOUT_S = 60


def _run_smoke(out: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=SMOKE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # SIGTERM first: bench/run.py then stops the servers it started in their own groups.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
        pytest.fail(f"bench/run.py --smoke took over {SMOKE_TIMEOUT_S}s:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.slow
def test_bench_smoke_writes_every_row_and_ratio(tmp_path: Path) -> None:
    require("wrk")
    require("nginx", paths=("/usr/sbin/nginx",))
    done = _run_smoke(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    result = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# casino-gateway benchmark")
    assert len(list(tmp_path.glob("bench-*.json"))) == 1
    assert len(list(tmp_path.glob("bench-*.md"))) == 1
    assert result["mode"] == "smoke"

    rows = {row["row"]: row for row in result["rows"]}
    assert list(rows) == ["A", "B", "C", "D", "E", "F", "G", "H", "P", "Q", "W"]
    for name, row in rows.items():
        assert row["available"], f"row {name}: {row['note']}"
        assert row["requests_per_s"] > 0, name
        assert 0 < row["p50_ms"] <= row["p99_ms"], name
        # A 429 or a 5xx would mean the row measured an error path, not the request.
        assert row["non_2xx"] == 0 and row["socket_errors"] == 0, (name, row["note"])
    for name in ("C", "D", "E", "F", "G", "H", "P", "Q", "W"):
        assert rows[name]["peak_rss_mib"] > 0, name
    assert rows["F"]["processes"] >= 3  # the supervisor and its two workers
    # P, Q: every answer a fresh 201 (bench/post_json.lua); W: every bet RS_OK, each with a
    # transaction id of its own (bench/hub88_bets.lua).
    for name in ("P", "Q", "W"):
        assert rows[name]["unexpected_status"] == 0 and not rows[name]["failed"], name

    ratios = {ratio["ratio"]: ratio for ratio in result["ratios"]}
    assert set(ratios) == {"D/C", "D/B", "E/C", "G/C", "H/D", "P/C", "Q/C", "W/C"}
    assert ratios["H/D"]["target"] == "<= 1.1" and ratios["G/C"]["target"] == ">= 0.8"
    for ratio in ratios.values():
        assert ratio["value"] > 0
        assert ratio["pass"] in ((None,) if ratio["bound"] is None else (True, False))

    added = result["added_p99"]
    assert added["A"]["requests"] > 0 and added["E"]["requests"] > 0
    for name in ("A", "E"):
        assert added[name]["errors"] == 0 and added[name]["non_2xx"] == 0, name
    assert isinstance(added["added_p99_ms"], float)

    wallet = result["wallet"]
    assert wallet["bets_per_s"] > 0 and wallet["bets_pass"] in (True, False)
    for name in ("backend", "W"):
        assert wallet[name]["requests"] > 0, name
        assert wallet[name]["errors"] == 0 and wallet[name]["non_2xx"] == 0, name
    assert isinstance(wallet["added_p99_ms"], float)

    machine = result["machine"]
    assert machine["nproc"] >= 1 and machine["python"] and machine["date"]
