"""`casino-gateway run --workers N`: N serving processes on one port, one metrics view.

Each worker is a fresh interpreter running the single-process server with `SO_REUSEPORT`,
so the kernel spreads connections across them. Metrics go through prometheus-client's
multi-process mode: every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and
any worker's /metrics aggregates them all. The supervisor forwards SIGTERM/SIGINT/SIGHUP and
restarts a worker that dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

log = logging.getLogger("gateway.workers")
RESTART_DELAY_S = 1.0


def prepare_metrics_dir() -> tuple[str, bool]:
    """The multiprocess dir, emptied (stale files from a previous run would add up)."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return str(path), False
    return tempfile.mkdtemp(prefix="casino-gateway-metrics-"), True


def supervise(worker_args: Sequence[str], workers: int) -> int:
    metrics_dir, made_here = prepare_metrics_dir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    command = [
        sys.executable,
        "-m",
        "gateway",
        "run",
        *worker_args,
        "--workers",
        "1",
        "--reuse-port",
        "--processes",
        str(workers),
    ]
    children: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def spawn() -> None:
        child = subprocess.Popen(command, env=env)
        children[child.pid] = child

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for child in list(children.values()):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM if signum == signal.SIGINT else signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    for _ in range(workers):
        spawn()
    print(
        f"casino-gateway: {workers} workers, metrics in {metrics_dir}", file=sys.stderr, flush=True
    )
    code = 0
    try:
        while children:
            for pid, child in list(children.items()):
                status = child.poll()
                if status is None:
                    continue
                del children[pid]
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(pid, metrics_dir)
                if not stopping:
                    print(
                        f"casino-gateway: worker {pid} exited with {status}; restarting",
                        file=sys.stderr,
                        flush=True,
                    )
                    time.sleep(RESTART_DELAY_S)
                    spawn()
                elif status not in (0, -signal.SIGTERM):
                    code = status if status > 0 else 1
            time.sleep(0.1)
    finally:
        for child in children.values():
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        if made_here:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return code
