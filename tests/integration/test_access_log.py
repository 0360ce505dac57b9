"""As installed, the gateway writes one JSON access line per request, and none is lost at exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import yaml

from simulators.stack import Stack
from tests.conftest import base_config
from tests.procs import ROOT, free_port


async def test_the_access_log_is_on_by_default_and_written_out_at_exit(
    stack: Stack, tmp_path: Path
):
    config = base_config(stack)
    assert "log_level" not in config  # the default
    config["ledger"] = {"path": str(tmp_path / "ledger.db")}  # as installed: durable
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "gateway.log").open("wb")
    env = {**os.environ, **stack.secrets.env(), "PYTHONPATH": str(ROOT)}
    env.pop("GATEWAY_LOG_LEVEL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(path), "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    card = "4111111111111111"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            for path_ in ("/v1/games/netent:starburst", f"/v1/games/{card}", "/v1/games"):
                async with http.get(base + path_, headers={"X-Request-ID": "req-" + card}):
                    pass
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()
    lines = [json.loads(ln) for ln in (tmp_path / "gateway.log").read_text().splitlines()]
    access = [ln for ln in lines if ln.get("logger") == "gateway.access"]
    games = [(ln["route"], ln["status"], ln["path"]) for ln in access if ln["route"] != "healthz"]
    assert games == [
        ("games.get", 200, "/v1/games/netent:starburst"),
        ("games.get", 404, "/v1/games/[PAN]"),
        ("games.list", 200, "/v1/games"),
    ]
    assert all(ln["request_id"] == "req-[PAN]" and ln["cache"] == "HIT" for ln in access[-1:])
    text = (tmp_path / "gateway.log").read_text()
    assert card not in text
    for secret in stack.secrets.env().values():
        for line in secret.splitlines():
            if len(line) >= 8 and "-----" not in line:
                assert line not in text
