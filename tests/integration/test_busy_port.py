"""A port already in use: `run` and `demo` say so in one line and exit 1, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.stack import DemoSecrets
from tests.integration.test_demo import free_ports
from tests.procs import ROOT

SHIPPED = ROOT / "config" / "providers.yaml"


@pytest.fixture
def held() -> Iterator[socket.socket]:
    """Something listening on loopback port P, where P-3..P+1 were free."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_ports(5) + 3))
        sock.listen()
        yield sock


def gateway(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_run_on_a_busy_port_is_one_line_and_exit_1(
    held: socket.socket, tmp_path: Path, demo_secrets: DemoSecrets, workers: str
):
    port = held.getsockname()[1]
    args = ["run", "--config", str(SHIPPED), "--port", str(port), "--workers", workers]
    done = gateway(args, tmp_path, demo_secrets.env())
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"casino-gateway run: cannot listen on 127.0.0.1:{port}: the address is already in "
        "use; stop what uses it (another gateway or demo?) or choose another port with --port\n"
    )
    assert not (tmp_path / "data").exists(), "nothing was started before the check"


def test_demo_on_a_busy_gateway_port_is_one_line_and_exit_1(held: socket.socket, tmp_path: Path):
    port = held.getsockname()[1]
    done = gateway(["demo", "--config", str(SHIPPED), "--port", str(port)], tmp_path, {})
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"casino-gateway demo: cannot listen on 127.0.0.1:{port} for the gateway: the address "
        "is already in use; stop what uses it (another demo?) or move the demo with --port PORT "
        "(the gateway on PORT, the simulators and the casino wallet on the six ports after it)\n"
    )


def test_demo_on_a_busy_simulator_port_names_that_simulator(held: socket.socket, tmp_path: Path):
    port = held.getsockname()[1]
    done = gateway(["demo", "--config", str(SHIPPED), "--port", str(port - 3)], tmp_path, {})
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"casino-gateway demo: cannot listen on 127.0.0.1:{port} for the stripe simulator: the "
        "address is already in use; stop what uses it (another demo?) or move the demo with "
        "--port PORT (the gateway on PORT, the simulators and the casino wallet on the six "
        "ports after it)\n"
    )
