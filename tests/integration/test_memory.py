"""Memory stays bounded: a capped cache under a million keys, and a gateway under mixed load.

The soak runs 60 s here; `GATEWAY_SOAK_S=600 python -m pytest tests/integration/test_memory.py`
runs the full ten minutes with the same assertion.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from simulators.stack import Stack
from tests.conftest import base_config, merge
from tests.procs import ROOT, GatewayProcess

pytestmark = pytest.mark.slow

SOAK_S = float(os.environ.get("GATEWAY_SOAK_S", "60"))
WARMUP_S = 10.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_million_distinct_keys_keep_rss_flat_at_the_cap():
    # Its own interpreter: the test process's heap would blur the measurement.
    script = textwrap.dedent(
        """
        import asyncio, sys
        from policies.cache import CacheLimits, CacheSettings
        from policies.cache import ResponseCache

        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

        async def main():
            cache = ResponseCache(CacheLimits(max_entries=20_000, max_bytes=64 * 2**20))
            settings = CacheSettings(ttl_s=600)
            payload = b"x" * 512
            async def fetch():
                return payload + b"", 600
            at_cap = None
            for i in range(1_000_000):
                await cache.get_or_fetch(f"games:q={i}", settings, fetch)
                if i == 200_000:
                    at_cap = rss()
            print(at_cap, rss(), len(cache))
            await cache.close()

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    at_cap, final, entries = map(int, out.stdout.split())
    assert entries == 20_000
    assert final <= at_cap * 1.10, (at_cap, final)


async def test_mixed_load_does_not_grow_rss(stack: Stack, tmp_path: Path):
    config = merge(
        base_config(stack),
        {
            "clients": [{"id": "web", "key_env": "WEB_API_KEY"}],
            # As deployed: payments go to a file, not to the process's memory.
            "ledger": {"backend": "sqlite", "path": str(tmp_path / "ledger.db")},
            "routes": {
                "games.list": {"cache": {"ttl_s": 2, "stale_while_revalidate_s": 5}},
                "games.get": {"cache": {"ttl_s": 2}},
                "games.launch": {"cache": {"ttl_s": 30}},
                "payments.get": {"rate_limit": {"limit": "100000/minute", "per": "client"}},
            },
        },
    )
    proc = await GatewayProcess(config, stack.secrets.env(), tmp_path).start()
    assert proc.proc is not None
    auth = {"X-API-Key": stack.secrets.client_key}
    deposit = {
        "type": "deposit",
        "amount": 700,
        "currency": "EUR",
        "player_id": "p-9",
        "method": {"type": "card"},
        "return_url": "https://casino.example/",
    }
    counts = {"ok": 0, "other": 0}
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            created = await http.post(
                proc.url + "/v1/payments",
                json=deposit,
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            payment_id = (await created.json())["payment_id"]
            requests = [
                ("GET", "/v1/games?page_size=20&q=a", None),
                ("GET", "/v1/games/netent:starburst", None),
                ("GET", "/v1/games/no:such-game", None),
                ("POST", "/v1/games/netent:starburst/launch", {"mode": "demo"}),
                ("GET", f"/v1/payments/{payment_id}", None),
                ("GET", "/v1/games?provider=slotegrator&page=2", None),
            ]
            started = time.monotonic()
            baseline = None

            async def worker(n: int) -> None:
                i = n
                while time.monotonic() - started < SOAK_S:
                    method, path, body = requests[i % len(requests)]
                    i += 1
                    headers = {"X-Request-ID": f"soak-{n}-{i}"}
                    async with http.request(
                        method, proc.url + path, json=body, headers=headers
                    ) as resp:
                        await resp.read()
                        counts["ok" if resp.status < 500 else "other"] += 1
                    if i % 200 == 0:  # a few payments, each a new record
                        async with http.post(
                            proc.url + "/v1/payments",
                            json=deposit,
                            headers={"Idempotency-Key": uuid.uuid4().hex},
                        ) as r:
                            await r.read()

            tasks = [asyncio.create_task(worker(n)) for n in range(6)]
            await asyncio.sleep(WARMUP_S)
            baseline = rss_kib(proc.proc.pid)
            peak = baseline
            while not all(t.done() for t in tasks):
                await asyncio.sleep(1)
                peak = max(peak, rss_kib(proc.proc.pid))
            await asyncio.gather(*tasks)
            final = rss_kib(proc.proc.pid)
    finally:
        proc.stop()
    assert counts["other"] == 0
    assert counts["ok"] > 500
    assert final <= baseline * 1.10, (baseline, peak, final)
