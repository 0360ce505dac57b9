"""A paced HTTP client: a fixed request rate, every latency measured.

wrk drives a server as hard as it can; it says how many requests a server can take, not
what one request costs at the load a service really sees. This client sends at a fixed rate
(wrk2's idea; wrk2 is not packaged by Debian) over a few keepalive connections and records
each request's latency, so two targets measured at the same rate can be compared at p99.

Requests follow an absolute schedule (start + i / rate): a late wake-up sends the overdue
requests at once instead of drifting, so the rate is exact over the run. A request's latency
runs from when it is handed to the client session to when its body is read; when every
connection is busy the wait for one is part of it, so a slow server cannot hide behind the
schedule. How late the client itself sent is reported apart (`lag_p99_ms`).

    python bench/paced.py --url http://127.0.0.1:8081/v1/payment_intents/pi_bench \
        --rate 500 --duration 10 --connections 4

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import aiohttp

REQUEST_TIMEOUT_S = 5.0


@dataclass
class Samples:
    latencies_s: list[float] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list)
    non_2xx: int = 0
    errors: int = 0
    first_send: float = math.inf
    last_send: float = -math.inf


@dataclass
class PacedResult:
    url: str
    rate: float
    duration_s: float
    connections: int
    requests: int
    achieved_rate: float
    non_2xx: int
    errors: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    lag_p99_ms: float | None


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (the value below which pct% of the samples fall)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


class Bodies:
    """POST bodies sent in order, each with its own signature header (`--bodies`): row W's
    signed Hub88 bets, one transaction id each. Without a file, requests are GETs."""

    def __init__(self, path: str | None, header: str) -> None:
        self.header = header
        self.lines: list[tuple[str, bytes]] = []
        if path:
            with open(path) as lines:
                for line in lines:
                    signature, _, body = line.rstrip("\n").partition("\t")
                    self.lines.append((signature, body.encode()))
        self.next = 0

    def take(self) -> tuple[str, bytes] | None:
        if not self.lines:
            return None
        if self.next >= len(self.lines):
            raise SystemExit("paced.py: the bodies ran out; sending one again would be a replay")
        line = self.lines[self.next]
        self.next += 1
        return line


async def _one(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    samples: Samples | None,
    bodies: Bodies | None = None,
) -> None:
    line = bodies.take() if bodies is not None else None
    started = time.perf_counter()
    try:
        if line is None:
            request = session.get(url, headers=headers)
        else:
            assert bodies is not None
            signed = {**headers, "Content-Type": "application/json", bodies.header: line[0]}
            request = session.post(url, data=line[1], headers=signed)
        async with request as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        if samples is not None:
            samples.errors += 1
        return
    if samples is None:
        return
    samples.latencies_s.append(time.perf_counter() - started)
    if not 200 <= status < 300:
        samples.non_2xx += 1


async def _schedule(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    rate: float,
    duration_s: float,
    samples: Samples | None,
    bodies: Bodies | None = None,
) -> None:
    total = round(rate * duration_s)
    interval = 1.0 / rate
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    for i in range(total):
        due = start + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        if samples is not None:
            samples.lags_s.append(max(0.0, now - due))
            samples.first_send = min(samples.first_send, now)
            samples.last_send = now
        task = asyncio.create_task(_one(session, url, headers, samples, bodies))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 1)


async def run(
    url: str,
    *,
    rate: float,
    duration_s: float,
    connections: int,
    headers: dict[str, str] | None = None,
    warmup_s: float = 0.0,
    bodies: Bodies | None = None,
) -> PacedResult:
    headers = headers or {}
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=60)
    async with aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    ) as session:
        # Open every connection before the clock starts: connection set-up is not the
        # per-request cost being measured.
        await asyncio.gather(
            *(_one(session, url, headers, None, bodies) for _ in range(connections))
        )
        if warmup_s > 0:
            await _schedule(session, url, headers, rate, warmup_s, None, bodies)
        samples = Samples()
        await _schedule(session, url, headers, rate, duration_s, samples, bodies)
    sent = len(samples.lags_s)
    span = samples.last_send - samples.first_send
    achieved = (sent - 1) / span if sent > 1 and span > 0 else 0.0
    return PacedResult(
        url=url,
        rate=rate,
        duration_s=duration_s,
        connections=connections,
        requests=sent,
        achieved_rate=round(achieved, 1),
        non_2xx=samples.non_2xx,
        errors=samples.errors,
        p50_ms=_ms(percentile(samples.latencies_s, 50)),
        p90_ms=_ms(percentile(samples.latencies_s, 90)),
        p99_ms=_ms(percentile(samples.latencies_s, 99)),
        max_ms=_ms(max(samples.latencies_s, default=None)),
        lag_p99_ms=_ms(percentile(samples.lags_s, 99)),
    )


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"not a header 'Name: value': {text!r}")
    return name.strip(), value.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds sent, not measured")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("-H", "--header", type=_header, action="append", default=[])
    parser.add_argument(
        "--bodies", help="POST these bodies in order (lines of `signature<TAB>body`)"
    )
    parser.add_argument(
        "--signature-header", default="X-Hub88-Signature", help="where each body's signature goes"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.connections < 1:
        parser.error("--rate, --duration and --connections must be positive")
    result = asyncio.run(
        run(
            args.url,
            rate=args.rate,
            duration_s=args.duration,
            connections=args.connections,
            headers=dict(args.header),
            warmup_s=args.warmup,
            bodies=Bodies(args.bodies, args.signature_header) if args.bodies else None,
        )
    )
    json.dump(asdict(result), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
