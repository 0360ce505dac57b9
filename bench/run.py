"""The gateway's throughput and latency benchmark, in one command.

    python bench/run.py                      # full run, 2 minutes (10 on a busy machine)
    python bench/run.py --smoke              # seconds: checks the harness, not the numbers

One run measures eleven rows (or those `--rows` names) with the same load generator (wrk,
--latency) at the same concurrency, all on 127.0.0.1, against one nginx that answers as
the providers do (fixed JSON from bench/upstream/). The gateway runs as installed: its
config's logging (access log on, to the row's log file) and the default dependencies
(uvloop on Linux).

    A  wrk -> nginx upstream                   GET /v1/payment_intents/pi_bench
    B  wrk -> nginx proxy_pass -> upstream     same path (upstream keepalive)
    C  wrk -> bench/proxy.py -> upstream       same path (bare aiohttp reverse proxy)
    D  wrk -> gateway                          GET /v1/games/{id}, from the catalog snapshot
    E  wrk -> gateway -> Stripe adapter -> upstream
                                               GET /v1/payments/{id}, no cache (a payment
                                               created through the gateway first)
    F  wrk -> gateway --workers 2              as D
    G  wrk -> gateway -> Slotegrator adapter -> upstream
                                               POST /v1/games/{id}/launch, route without cache
    H  wrk -> gateway, access log off          as D
    P  wrk -> gateway (SQLite ledger) -> Stripe adapter -> upstream
                                               POST /v1/payments, a new Idempotency-Key each
    Q  as P with a PostgreSQL ledger           (a throwaway database on the local server;
                                               not available when there is none)
    W  wrk -> gateway (SQLite ledger) -> casino wallet (nginx)
                                               POST /wallet/hub88/transaction/bet, Hub88 bets
                                               signed before the run, a new id each

then every ratio against its target (D/C, D/B, E/C, G/C, H/D), P/C, Q/C and W/C without one
(reported), the p99 latency E adds over A at a fixed 500 requests/s (bench/paced.py), and
W's bets/s and the p99 a bet adds over the wallet called directly at 300 bets/s.
Results go to <out>/latest.json, latest.md and a timestamped copy of each. Everything
started is stopped (and row Q's database dropped) before the command returns. A row whose
requests did not all get the answer it measures (G: 200; P, Q: 201; W: RS_OK) is marked
FAILED and the command exits with 1, after writing its results.

The harness is split by what each part holds, in the modules beside this one: settings
(the command line), rows (A to W in order), servers, throwaway_pg, http_checks, wrk (and
post_json.lua, its script for G, P and Q; hub88_bets.lua for W, with the bets signed by
hub88_bets.py), measure, procs, procfs, credentials, machine, report (JSON and Markdown),
paths and progress.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The modules beside this file import one another by plain name. Run as a script, this
# folder is on sys.path already; imported as `bench.run` (python -m bench.run) it is not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import signal
from types import FrameType
from typing import TextIO

from procs import tool_path, workspace
from progress import BenchError, progress
from report import render_markdown, write_results
from rows import Bench
from settings import parse_args

APT_LINE = "apt-get update && apt-get install -y wrk nginx"


class Interrupted(BaseException):
    """SIGTERM: unwinds like Ctrl-C so every `finally` stops what it started."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted()


def missing_tools() -> list[str]:
    return [tool for tool in ("wrk", "nginx") if tool_path(tool) == tool]


def main(argv: list[str] | None = None, stdout: TextIO = sys.stdout) -> int:
    settings = parse_args(argv)
    missing = missing_tools()
    if missing:
        print(
            f"bench: {' and '.join(missing)} not found; install with: {APT_LINE}",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with workspace() as (workdir, procs):
            result = Bench(settings, workdir, procs).run()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as exc:
        print("bench: interrupted; everything started was stopped", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(exc, Interrupted) else signal.SIGINT)
    markdown = render_markdown(result)
    for path in write_results(settings.out, result, markdown):
        progress(f"wrote {path}")
    stdout.write(markdown)
    stdout.flush()
    failed = [row for row in result["rows"] if row["failed"]]
    for row in failed:
        print(f"bench: row {row['row']} {row['note']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
