"""What a result says about where it was measured: the machine (cores, CPU, load, Python,
kernel, tool and package versions) and the code (commit, uncommitted changes)."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from paths import ROOT
from procs import tool_path


def _command_version(argv: list[str], pattern: str) -> str | None:
    """The version a tool prints (wrk: "wrk debian/4.1.0-3 [epoll] ...", nginx: "nginx/1.22.1")."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else None


def source_state() -> dict[str, Any]:
    """Which code was measured: the commit, and whether the work tree differed from it."""
    state: dict[str, Any] = {"commit": None, "dirty": None}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        if head.returncode == 0:
            state["commit"] = head.stdout.strip()
            changed = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=10,
            )
            state["dirty"] = bool(changed.stdout.strip())
    return state


def machine_info(now: datetime) -> dict[str, Any]:
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str | None] = {}
    for package in ("aiohttp", "orjson", "uvloop"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:
            versions[package] = None
    return {
        "nproc": len(os.sched_getaffinity(0)),
        # Other work on the machine skews every row: the load at the start says how much.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wrk": _command_version(["wrk", "--version"], r"wrk (?:debian/)?(\S+)"),
        "nginx": _command_version([tool_path("nginx"), "-v"], r"nginx/(\S+)"),
        "packages": versions,
        "source": source_state(),
    }
