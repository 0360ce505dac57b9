"""Measuring one row: the Row record it fills, wrk's measurement and the paced client's, each
repeated when other work on a shared machine disturbed it, the check that a scripted row got
only the answers it expects, and the servers' peak memory."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paths import BENCH, ROOT
from procfs import CpuWindow, peak_rss_mib
from procs import Proc, project_env
from progress import BenchError, progress
from settings import Settings
from wrk import Script, WrkResult, parse_wrk, wrk

# At most this long is spent waiting for other work to calm down before a repeat.
QUIET_WAIT_S = 20.0


@dataclass
class Row:
    row: str
    label: str
    path: str
    available: bool = True
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    non_2xx: int | None = None
    socket_errors: int | None = None
    peak_rss_mib: float | None = None
    processes: int | None = None
    attempts: int | None = None  # measurements made; the least disturbed one is kept
    server_cpu_cores: float | None = None  # the servers of the row, nginx included
    other_load_cores: float | None = None  # CPU used by anything else on the machine
    # Scripted rows (P, Q): answers other than the expected 201, counted by the wrk script.
    unexpected_status: int | None = None
    # A row whose requests did not all succeed as expected: its numbers measure something
    # else (errors are cheap), so no ratio is drawn from it and the run exits with 1.
    failed: bool = False
    note: str = ""

    def add_note(self, text: str) -> None:
        self.note = f"{self.note} {text}" if self.note else text


class Meter:
    """Measures the rows of a run; nginx runs throughout, so its CPU counts as the servers'
    in every row."""

    def __init__(self, settings: Settings, nginx: Proc) -> None:
        self.settings = settings
        self.nginx = nginx

    def _servers(self, server: Proc | None) -> list[int]:
        return [self.nginx.pid] + ([server.pid] if server is not None else [])

    def _retry(self, name: str, other_cores: float, attempt: int, servers: list[int]) -> bool:
        """Measure again when other work on a shared machine took more than the allowed CPU;
        first give that work a moment to end (bursts such as a test run last seconds)."""
        s = self.settings
        if other_cores <= s.max_other_load or attempt > s.retries:
            return False
        progress(
            f"{name}: other work used {other_cores:.2f} cores (> {s.max_other_load:g}); "
            f"measuring again ({attempt}/{s.retries}) once it is quieter"
        )
        deadline = time.monotonic() + QUIET_WAIT_S
        while time.monotonic() < deadline:
            with CpuWindow(servers) as idle:
                time.sleep(1.0)
            if idle.other_cores <= s.max_other_load:
                break
        return True

    def measure(
        self,
        row: Row,
        url: str,
        headers: dict[str, str] | None = None,
        server: Proc | None = None,
        script: Script | None = None,
        more_servers: Callable[[], list[int]] | None = None,
    ) -> Row:
        """`more_servers`: pids that also serve the row (row Q's PostgreSQL processes), asked
        after the warm-up, when the gateway's connection pool has grown."""
        headers = headers or {}
        s = self.settings
        if s.warmup_s:
            progress(f"{row.row}: warm-up {s.warmup_s}s")
            wrk(s, url, headers, s.warmup_s, script)
        best: tuple[WrkResult, CpuWindow] | None = None
        attempt = 0
        while True:
            attempt += 1
            servers = self._servers(server) + (more_servers() if more_servers else [])
            progress(f"{row.row}: wrk {s.duration_s}s, {s.connections} connections -> {url}")
            with CpuWindow(servers) as cpu:
                output = wrk(s, url, headers, s.duration_s, script)
            result = parse_wrk(output)
            progress(
                f"{row.row}: {result.requests_per_s:,.0f} req/s, p50 {result.p50_ms} ms, "
                f"p99 {result.p99_ms} ms; servers {cpu.server:.2f} cores, other work "
                f"{cpu.other_cores:.2f} cores"
            )
            # The attempt least disturbed by other work is the one kept.
            if best is None or cpu.other_cores < best[1].other_cores:
                best = (result, cpu)
            if not self._retry(row.row, cpu.other_cores, attempt, servers):
                break
        result, cpu = best
        row.attempts = attempt
        row.server_cpu_cores = round(cpu.server, 2)
        row.other_load_cores = cpu.other_cores
        row.requests_per_s = result.requests_per_s
        row.p50_ms = result.p50_ms
        row.p99_ms = result.p99_ms
        row.requests = result.requests
        row.non_2xx = result.non_2xx
        row.socket_errors = result.socket_errors
        row.unexpected_status = result.unexpected
        if result.unexpected or (script is not None and result.socket_errors):
            _fail(row, result)
        elif result.non_2xx or result.socket_errors:
            row.add_note(f"{result.non_2xx} non-2xx, {result.socket_errors} socket errors")
        return row

    def paced(
        self,
        name: str,
        url: str,
        headers: dict[str, str] | None = None,
        server: Proc | None = None,
        rate: float | None = None,
        bodies: Callable[[int], Path] | None = None,
    ) -> dict[str, Any]:
        """`bodies(count)`: a new file of signed POST bodies for each attempt (row W)."""
        s = self.settings
        rate = rate or s.paced_rate
        argv = [
            sys.executable, str(BENCH / "paced.py"), "--url", url,
            "--rate", str(rate), "--duration", str(s.paced_duration_s),
            "--warmup", str(s.paced_warmup_s), "--connections", str(s.paced_connections),
        ]  # fmt: skip
        for key, value in (headers or {}).items():
            argv += ["-H", f"{key}: {value}"]
        best: dict[str, Any] | None = None
        attempt = 0
        while True:
            attempt += 1
            progress(f"paced {name}: {rate:g} req/s for {s.paced_duration_s:g}s -> {url}")
            run_argv = argv
            if bodies is not None:
                count = math.ceil(rate * (s.paced_duration_s + s.paced_warmup_s)) + 64
                run_argv = [*argv, "--bodies", str(bodies(count))]
            with CpuWindow(self._servers(server)) as cpu:
                done = subprocess.run(
                    run_argv,
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    env=project_env(),
                    stdin=subprocess.DEVNULL,
                    timeout=s.paced_duration_s + s.paced_warmup_s + 60,
                )
            if done.returncode != 0:
                raise BenchError(f"bench/paced.py failed ({done.returncode}): {done.stderr}")
            result: dict[str, Any] = json.loads(done.stdout)
            result["other_load_cores"] = cpu.other_cores
            progress(
                f"paced {name}: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; "
                f"other work {cpu.other_cores:.2f} cores"
            )
            if best is None or cpu.other_cores < best["other_load_cores"]:
                best = result
            if not self._retry(f"paced {name}", cpu.other_cores, attempt, self._servers(server)):
                break
        best["attempts"] = attempt
        return best


def _fail(row: Row, result: WrkResult) -> None:
    """Loudly: on stderr now, in the row's note, in the table, and in the exit status."""
    row.failed = True
    row.add_note(
        f"FAILED: {result.unexpected or 0} of {result.requests} answers were not a fresh 201, "
        f"{result.socket_errors} socket errors"
        + (f"; first: {result.first_unexpected[:200]}" if result.first_unexpected else "")
    )
    progress(f"{row.row}: {row.note}")


def record_rss(row: Row, proc: Proc) -> None:
    row.peak_rss_mib, row.processes = peak_rss_mib(proc.pid)
