"""`run --workers 2`: two processes on one port and one metrics view of both."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from simulators.stack import Stack
from tests.conftest import base_config, merge
from tests.procs import ROOT, GatewayProcess

pytestmark = pytest.mark.redis


def children_of(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _run(stack: Stack, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(path), *args],
        env={**os.environ, **stack.secrets.env(), "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )


def test_a_memory_ledger_is_refused_outside_dev(stack: Stack, tmp_path: Path):
    path = tmp_path / "memory.yaml"
    path.write_text(yaml.safe_dump(base_config(stack)))  # ledger.backend: memory
    done = _run(stack, path)
    assert done.returncode == 1
    assert "ledger.backend memory forgets every payment at restart" in done.stderr
    assert "Traceback" not in done.stderr


def test_workers_with_payments_need_a_shared_ledger(stack: Stack, tmp_path: Path):
    path = tmp_path / "memory.yaml"
    path.write_text(yaml.safe_dump(base_config(stack)))
    done = _run(stack, path, "--dev", "--workers", "2")
    assert done.returncode == 1
    assert "needs a ledger they all share" in done.stderr


async def test_two_workers_share_a_port_and_one_metrics_view(
    stack: Stack, tmp_path: Path, redis_prefix: str
):
    prefix = redis_prefix
    config = merge(
        base_config(stack),
        {
            "routes": {"games.list": {"cache": {"ttl_s": 60}}},
            "storage": {"backend": "redis", "url": "redis://127.0.0.1:6379/0",
                        "key_prefix": prefix, "replicas": 2},
            "ledger": {"backend": "sqlite", "path": str(tmp_path / "ledger.db")},
        },
    )
    proc = await GatewayProcess(config, stack.secrets.env(), tmp_path, workers=2).start()
    try:
        assert proc.proc is not None
        workers = children_of(proc.proc.pid)
        assert len(workers) == 2
        # A new connection per request lets the kernel spread them over both workers.
        for _ in range(40):
            async with aiohttp.ClientSession() as http, http.get(proc.url + "/v1/games") as resp:
                assert resp.status == 200
        totals = set()
        for _ in range(6):
            async with aiohttp.ClientSession() as http, http.get(proc.url + "/metrics") as resp:
                text = await resp.text()
            line = next(
                ln for ln in text.splitlines()
                if ln.startswith("gateway_requests_total{")
                and 'route="games.list"' in ln and 'status="200"' in ln
            )
            totals.add(float(line.rsplit(" ", 1)[1]))
        # Whichever worker answers the scrape, it reports both workers' requests.
        assert totals == {40.0}
    finally:
        proc.stop()
    assert proc.proc.returncode == 0
