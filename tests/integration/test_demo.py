"""`casino-gateway demo` end to end: the curl commands it prints work as printed."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.procs import ROOT

SHIPPED = ROOT / "config" / "providers.yaml"


def free_ports(count: int) -> int:
    """The first of `count` consecutive loopback ports that are free now."""
    for _ in range(100):
        base = random.randrange(20000, 60000)
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports")


def start_demo(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`python -m gateway demo ARGS` on the shipped config; its lines up to "Ctrl-C"."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--config", str(SHIPPED), *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        lines.append(line)
        if "Ctrl-C" in line or not line:
            break
    return demo, lines


def stop_demo(demo: subprocess.Popen[str]) -> None:
    demo.terminate()
    demo.wait(10)
    if demo.stdout is not None:
        demo.stdout.close()


def test_the_printed_curl_commands_list_launch_pay_read_back_and_play_a_round(tmp_path: Path):
    # --port moves every listener: the gateway to it, the simulators to the five after it
    # and the casino wallet to the next, whatever ports the config names (9101-9105 and
    # 9200 here, maybe taken on this machine).
    port = free_ports(7)
    demo, lines = start_demo(tmp_path, "--port", str(port))
    stream = None
    try:
        assert lines[0].startswith(f"casino-gateway demo: gateway on http://127.0.0.1:{port} (")
        assert lines[1] == (
            f"simulators: hub88 http://127.0.0.1:{port + 1}, slotegrator "
            f"http://127.0.0.1:{port + 2}, stripe http://127.0.0.1:{port + 3}, "
            f"adyen http://127.0.0.1:{port + 4}, trustly http://127.0.0.1:{port + 5}\n"
        )
        assert lines[2] == (
            f"casino wallet: http://127.0.0.1:{port + 6}/wallet (the gateway's wallet backend; "
            "player-42 holds EUR 1000.00)\n"
        )
        commands = [ln.strip() for ln in lines if ln.strip().startswith("curl ")]
        assert len(commands) == 10, lines
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
        listing, game, launch, payment, read_back, payout, before, round_, after = outputs
        assert '"total": 34' in listing and '"partial": false' in listing
        assert '"id": "pragmatic-play:sweet-bonanza"' in game
        assert '"launch_url":"https://games.hub88.example/launch/pp_sweet_bonanza' in launch
        assert '"status":"requires_action"' in payment
        assert '"provider":"stripe"' in read_back
        # The payout rule sends the withdrawal to Trustly: the player confirms at its page.
        sent = json.loads(payout)
        assert (sent["status"], sent["provider"]) == ("pending", "trustly"), sent
        assert sent["next_action"]["type"] == "redirect"
        # The round on the launched session: Hub88's signed bet and win reach the gateway,
        # which settles them at the casino wallet: EUR 1.00 bet, EUR 2.50 won.
        assert json.loads(before)["balance"] == 100_000
        calls = json.loads(round_)["calls"]
        assert [(c["action"], c["answer"]["status"]) for c in calls] == [
            ("bet", "RS_OK"), ("win", "RS_OK")
        ]
        assert calls[0]["request"]["token"] == "sess-123"
        assert json.loads(after)["balance"] == 100_150
        # The simulators confirm the deposit after 5 s by webhook, and Trustly the payout by
        # its notifications (to the gateway's moved port): the stream shows both live.
        streamed, _ = stream.communicate(timeout=20)
        assert '"type":"payment.succeeded"' in streamed
        assert '"type":"payout.succeeded"' in streamed
    finally:
        if stream is not None:
            if stream.poll() is None:
                stream.kill()
            stream.wait(5)
            if stream.stdout is not None:
                stream.stdout.close()
        stop_demo(demo)


def test_sim_base_port_puts_the_simulators_apart_from_the_gateway(tmp_path: Path):
    port = free_ports(8)
    sims = port + 2  # not the five ports right after the gateway's
    demo, lines = start_demo(tmp_path, "--port", str(port), "--sim-base-port", str(sims))
    try:
        assert lines[0].startswith(f"casino-gateway demo: gateway on http://127.0.0.1:{port} (")
        assert lines[1] == (
            f"simulators: hub88 http://127.0.0.1:{sims}, slotegrator http://127.0.0.1:{sims + 1}, "
            f"stripe http://127.0.0.1:{sims + 2}, adyen http://127.0.0.1:{sims + 3}, "
            f"trustly http://127.0.0.1:{sims + 4}\n"
        )
        listing = next(ln.strip() for ln in lines if "/v1/games?page_size=5" in ln)
        done = subprocess.run(
            ["bash", "-c", listing], cwd=tmp_path, capture_output=True, text=True, timeout=20
        )
        # Both aggregators answered on their moved ports.
        assert '"total": 34' in done.stdout and '"partial": false' in done.stdout
    finally:
        stop_demo(demo)
