"""`casino-gateway demo` end to end: the curl commands it prints work as printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.procs import ROOT, free_port


def demo_config(tmp_path: Path) -> Path:
    """The shipped config on free ports, so the test never collides with a running demo."""
    doc = yaml.safe_load((ROOT / "config" / "providers.yaml").read_text())
    for spec in doc["providers"].values():
        spec["base_url"] = f"http://127.0.0.1:{free_port()}"
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_printed_curl_commands_list_launch_pay_and_read_back(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--config", str(demo_config(tmp_path)),
         "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    stream = None
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        commands = [ln.strip() for ln in lines if ln.strip().startswith("curl ")]
        assert len(commands) == 6, lines
        sse = re.sub(r"\s*&\s*#.*$", "", commands[0])
        stream = subprocess.Popen(
            ["bash", "-c", f"timeout 10 {sse}"], cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        outputs = []
        for command in commands[1:]:
            done = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=20
            )
            assert done.returncode == 0, (command, done.stderr)
            outputs.append(done.stdout)
        listing, game, launch, payment, read_back = outputs
        assert '"total": 34' in listing and '"partial": false' in listing
        assert '"id": "pragmatic-play:sweet-bonanza"' in game
        assert '"launch_url":"https://games.hub88.example/launch/pp_sweet_bonanza' in launch
        assert '"status":"requires_action"' in payment
        assert '"provider":"stripe"' in read_back
        # The simulators confirm the deposit after 5 s by webhook: the stream shows it live.
        streamed, _ = stream.communicate(timeout=20)
        assert '"type":"payment.succeeded"' in streamed
    finally:
        if stream is not None:
            if stream.poll() is None:
                stream.kill()
            stream.wait(5)
            if stream.stdout is not None:
                stream.stdout.close()
        demo.terminate()
        demo.wait(10)
        if demo.stdout is not None:
            demo.stdout.close()
