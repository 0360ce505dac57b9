"""Fault controls and call counters shared by every simulator.

Each simulator app calls `install(app, error_response)`. Faults are set over HTTP
(`POST /_sim/faults` with a JSON object of `Faults` fields, `DELETE /_sim/faults` to
clear) or in-process through `app[FAULTS]`; `GET /_sim/stats` returns the calls counted
per path and the W3C `traceparent` headers the last calls carried (`DELETE /_sim/stats`
resets both). Control paths are never faulted or counted.

Modes:
- ``ok``      answer normally (after ``latency_ms``)
- ``error``   answer 500 in the provider's own error shape
- ``hang``    never answer; the client's timeout decides
- ``reset``   close the connection without an answer
- ``garbage`` answer 200 with an HTML page instead of JSON
- ``truncated`` answer 200 with JSON cut in half
- ``rate_limited`` answer 429 with ``Retry-After: <retry_after_s>``
- ``deep_json`` answer 200 with JSON nested 100,000 levels deep
- ``huge``    answer 200 with a valid JSON object of 2 MiB
``hold_ms`` keeps a payment create inside the provider after it took its idempotency key,
as a slow acquirer does: the request has arrived (it is counted) and a concurrent request
with the same key is refused as the provider refuses it (Stripe 409 `idempotency_error`,
Adyen 409 `704`).
``error_rate`` (0..1) turns that share of otherwise normal answers into ``error``;
``fail_next`` turns the next N into ``error``. A listening socket that refuses
connections is `SimulatorServer.stop_listening()`.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields

from aiohttp import web

MODES = (
    "ok", "error", "hang", "reset", "garbage", "truncated", "rate_limited", "deep_json", "huge"
)


@dataclass
class Faults:
    mode: str = "ok"
    latency_ms: int = 0
    error_rate: float = 0.0
    fail_next: int = 0
    retry_after_s: int = 1
    hold_ms: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self._random = random.Random(self.seed)

    def replace_with(self, other: Faults) -> None:
        """Change in place: the app's state is frozen once it runs, its objects are not."""
        self.__dict__.update(other.__dict__)

    def pick_mode(self) -> str:
        if self.mode != "ok":
            return self.mode
        if self.fail_next > 0:
            self.fail_next -= 1
            return "error"
        if self.error_rate and self._random.random() < self.error_rate:
            return "error"
        return "ok"


_DEEP = b"[" * 100_000 + b"]" * 100_000
_HUGE = b'{"padding": "' + b"x" * (2 * 1024 * 1024) + b'"}'

FAULTS = web.AppKey("sim_faults", Faults)
STATS: web.AppKey[Counter[str]] = web.AppKey("sim_stats", Counter)
# (path, traceparent) of the last calls that carried one.
TRACES: web.AppKey[deque[tuple[str, str]]] = web.AppKey("sim_traces")

ErrorResponse = Callable[[int, str], web.Response]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, error_response: ErrorResponse) -> None:
    app[FAULTS] = Faults()
    app[STATS] = Counter()
    app[TRACES] = deque(maxlen=1000)

    @web.middleware
    async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        app[STATS][request.path] += 1
        traceparent = request.headers.get("traceparent")
        if traceparent is not None:
            app[TRACES].append((request.path, traceparent))
        faults = app[FAULTS]
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        mode = faults.pick_mode()
        if mode == "ok":
            return await handler(request)
        if mode == "error":
            return error_response(500, "simulated internal error")
        if mode == "rate_limited":
            response = error_response(429, "simulated rate limit")
            response.headers["Retry-After"] = str(faults.retry_after_s)
            return response
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("simulated reset")
        if mode == "garbage":
            return web.Response(
                text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"
            )
        if mode == "deep_json":
            return web.Response(body=_DEEP, content_type="application/json")
        if mode == "huge":
            return web.Response(body=_HUGE, content_type="application/json")
        return web.Response(body=b'{"items": [{"uuid": "abc", "na', content_type="application/json")

    async def set_faults(request: web.Request) -> web.Response:
        data = await request.json()
        known = {f.name for f in fields(Faults)}
        unknown = set(data) - known
        if unknown:
            return web.json_response({"error": f"unknown fields {sorted(unknown)}"}, status=400)
        try:
            app[FAULTS].replace_with(Faults(**data))
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(asdict(app[FAULTS]))

    async def clear_faults(request: web.Request) -> web.Response:
        app[FAULTS].replace_with(Faults())
        return web.json_response(asdict(app[FAULTS]))

    async def get_stats(request: web.Request) -> web.Response:
        stats = app[STATS]
        traces = [{"path": path, "traceparent": value} for path, value in app[TRACES]]
        return web.json_response(
            {"requests": {path: n for path, n in stats.items()}, "traceparents": traces}
        )

    async def reset_stats(request: web.Request) -> web.Response:
        app[STATS].clear()
        app[TRACES].clear()
        return web.json_response({"requests": {}, "traceparents": []})

    app.middlewares.append(faults_middleware)
    app.router.add_post("/_sim/faults", set_faults)
    app.router.add_delete("/_sim/faults", clear_faults)
    app.router.add_get("/_sim/stats", get_stats)
    app.router.add_delete("/_sim/stats", reset_stats)


class SimulatorServer:
    """Runs one simulator app on a loopback port; can stop listening to refuse connections."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        # A short shutdown: a "hang" fault must not hold a test's teardown for a minute.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.2
        )
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> SimulatorServer:
        await self._runner.setup()
        await self.start_listening()
        return self

    async def start_listening(self) -> None:
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            server = self._site._server
            sockets = getattr(server, "sockets", None)
            assert sockets, "site did not start listening"
            self.port = sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        """Close the listening socket: new connections are refused, like a provider that is down."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        # Pooled keep-alive connections would otherwise still reach a "down" provider.
        server = self._runner.server
        if server is not None:
            for handler in list(server.connections):
                handler.force_close()

    async def close(self) -> None:
        await self._runner.cleanup()

    @property
    def faults(self) -> Faults:
        return self.app[FAULTS]

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.app[FAULTS].replace_with(value)

    @property
    def stats(self) -> Counter:
        return self.app[STATS]

    @property
    def traceparents(self) -> list[tuple[str, str]]:
        """(path, traceparent) of the last calls that carried one, oldest first."""
        seen = self.app[TRACES]
        return list(seen)
