"""The load generator: running `wrk --latency` against a URL (a plain GET, or the requests a
Lua script makes) and reading what it and the script print."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from progress import BenchError
from settings import Settings

WRK_TIMEOUT = "10s"  # per request; a request slower than this is a socket error in wrk

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True)
class Script:
    """A wrk Lua script for a row whose requests are not one fixed GET. `args` is called for
    every wrk run (warm-up and each attempt): bench/post_json.lua needs a new key prefix
    each time, or its keys would be replays of the last run's."""

    path: Path
    args: Callable[[], list[str]]


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    # Scripted runs only (the script's own count): answers other than the one the row
    # expects, and the first of them ("409 {...}"), to say what went wrong.
    unexpected: int | None = None
    first_unexpected: str = ""


def parse_wrk(text: str) -> WrkResult:
    """Read what `wrk --latency` prints; raises BenchError when a part is missing."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in ", text, re.M)
    percentiles = {
        int(pct): float(value) * _UNIT_MS[unit]
        for pct, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
    }
    if rps is None or total is None or 50 not in percentiles or 99 not in percentiles:
        raise BenchError(f"cannot read wrk's output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    result = WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=round(percentiles[50], 3),
        p99_ms=round(percentiles[99], 3),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sock.groups()) if sock else 0,
    )
    script = re.search(
        r"^bench-script: responses (\d+), unexpected (\d+), non-2xx (\d+), "
        r"first-unexpected (\d+) ?(.*)$",
        text,
        re.M,
    )
    if script is not None:
        result.unexpected = int(script.group(2))
        # wrk counts only statuses above 399; the script counts 1xx and 3xx too.
        result.non_2xx = max(result.non_2xx, int(script.group(3)))
        if result.unexpected:
            result.first_unexpected = f"{script.group(4)} {script.group(5)}".strip()
    return result


def wrk(
    settings: Settings,
    url: str,
    headers: dict[str, str],
    seconds: int,
    script: Script | None = None,
) -> str:
    argv = [
        "wrk",
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
    ]
    if script is not None:
        argv += ["-s", str(script.path)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    if script is not None:
        argv += ["--", *script.args()]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 30, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    if script is not None and "bench-script:" not in done.stdout:
        raise BenchError(f"{script.path.name} printed no counts:\n{done.stdout}{done.stderr}")
    return done.stdout
