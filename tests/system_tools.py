"""Debian tools some tests drive (Chromium, nginx, wrk): found, or installed once, or a failure.

A fresh machine runs the README's test command as root with Debian's package registry at
hand, so a missing tool is installed rather than skipped: a skipped browser test would
look green untested.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache


@cache
def _apt_install(packages: tuple[str, ...]) -> str:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root or no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages])
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return done.stderr[-500:]
    return ""


def require(binary: str, *packages: str, paths: tuple[str, ...] = ()) -> str:
    """The path of `binary`, installing `packages` first if it is missing; else AssertionError."""
    for _ in range(2):
        found = shutil.which(binary) or next((p for p in paths if os.access(p, os.X_OK)), None)
        if found:
            return found
        problem = _apt_install(packages or (binary,))
    raise AssertionError(f"{binary} is missing and could not be installed: {problem}")
