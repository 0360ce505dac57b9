"""The run's settings: the command line, and the smaller defaults of a smoke run."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paths import ROOT

ALL_ROWS = "ABCDEFGHPQW"


@dataclass(frozen=True)
class Settings:
    mode: str  # full | smoke
    duration_s: int
    warmup_s: int
    connections: int
    threads: int
    paced_rate: float
    paced_duration_s: float
    paced_warmup_s: float
    paced_connections: int
    nginx_workers: int
    gateway_workers: int
    max_other_load: float
    retries: int
    out: Path
    wallet_paced_rate: float = 300.0
    rows: frozenset[str] = frozenset("ABCDEFGHPQW")


def parse_args(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Benchmark the gateway against nginx and a bare aiohttp proxy.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run to check the harness")
    parser.add_argument("--duration", type=int, help="seconds measured per row (10; smoke 1)")
    parser.add_argument("--warmup", type=int, help="seconds of unmeasured load first (2; smoke 0)")
    parser.add_argument("--connections", type=int, help="wrk connections (50; smoke 2)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1: a core stays free)")
    parser.add_argument("--paced-rate", type=float, default=500.0, help="requests/s (500)")
    parser.add_argument("--paced-duration", type=float, help="seconds (10; smoke 1)")
    parser.add_argument("--paced-connections", type=int, default=4)
    parser.add_argument(
        "--nginx-workers",
        type=int,
        # nginx's stock `worker_processes auto`: row B is then the best nginx does here.
        default=len(os.sched_getaffinity(0)),
        help="nginx worker processes (default: one per core, as `auto`)",
    )
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=0.25,
        help="cores of other work tolerated during a measurement before it is repeated (0.25)",
    )
    parser.add_argument(
        "--retries", type=int, help="repeats of a disturbed measurement (2; smoke 0)"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results folder")
    parser.add_argument(
        "--wallet-paced-rate",
        type=float,
        default=300.0,
        help="bets/s of row W's paced measurement, and of the backend's alone (300)",
    )
    parser.add_argument(
        "--rows",
        default=ALL_ROWS,
        help=f"the rows to measure, e.g. CW (default {ALL_ROWS}); the others are reported "
        "as not measured, and ratios need both their rows",
    )
    args = parser.parse_args(argv)
    smoke = bool(args.smoke)

    def pick(value: Any, full: Any, small: Any) -> Any:
        return value if value is not None else (small if smoke else full)

    settings = Settings(
        mode="smoke" if smoke else "full",
        duration_s=pick(args.duration, 10, 1),
        warmup_s=pick(args.warmup, 2, 0),
        connections=pick(args.connections, 50, 2),
        threads=args.threads,
        paced_rate=args.paced_rate,
        paced_duration_s=pick(args.paced_duration, 10.0, 1.0),
        paced_warmup_s=0.0 if smoke else 2.0,
        paced_connections=args.paced_connections,
        nginx_workers=args.nginx_workers,
        gateway_workers=2,
        max_other_load=args.max_other_load,
        retries=pick(args.retries, 2, 0),
        out=Path(args.out),
        wallet_paced_rate=args.wallet_paced_rate,
        rows=frozenset(args.rows.upper().replace(",", "")),
    )
    if not settings.rows or not settings.rows <= set(ALL_ROWS):
        parser.error(f"--rows takes letters of {ALL_ROWS}")
    if settings.duration_s < 1 or settings.warmup_s < 0:
        parser.error("--duration must be >= 1 and --warmup >= 0 (whole seconds, as wrk takes)")
    if settings.connections < settings.threads or settings.threads < 1:
        parser.error("wrk needs --threads >= 1 and --connections >= --threads")
    if settings.paced_rate <= 0 or settings.paced_duration_s <= 0:
        parser.error("--paced-rate and --paced-duration must be positive")
    if settings.nginx_workers < 1 or settings.retries < 0 or settings.paced_connections < 1:
        parser.error("--nginx-workers and --paced-connections must be >= 1, --retries >= 0")
    return settings
