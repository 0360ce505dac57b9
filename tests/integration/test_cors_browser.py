"""A real headless Chromium makes cross-origin calls to the gateway from two other origins.

Two small page servers on their own loopback ports stand for two frontends; only the first
is in `cors.allow_origins`. Each page fetches the catalog (a simple request) and creates a
payment with JSON and an Idempotency-Key (a preflighted request), then posts what happened
to its own server (same origin, so CORS does not apply to the report itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import MakeGateway
from tests.system_tools import require

STRIPE_CREATE = "/v1/payment_intents"
REPORT_TIMEOUT_S = 20  # the whole test stays under 30 s, Chromium start-up included
DEPOSIT = {
    "type": "deposit",
    "amount": 2500,
    "currency": "EUR",
    "player_id": "player-42",
    "method": {"type": "card"},
    "return_url": "https://casino.example/cashier",
}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>frontend</title></head>
<body><script>
const GATEWAY = %(gateway)s;
async function attempt(name, call) {
  try {
    const resp = await call();
    await resp.text();
    // Only exposed headers are readable cross-origin: X-Request-ID shows the list works.
    return {name, outcome: "ok", status: resp.status,
            request_id: resp.headers.get("X-Request-ID")};
  } catch (err) {
    return {name, outcome: "blocked", error: err.name + ": " + err.message};
  }
}
(async () => {
  const results = [];
  results.push(await attempt("games", () => fetch(GATEWAY + "/v1/games?page_size=1")));
  results.push(await attempt("payment", () => fetch(GATEWAY + "/v1/payments", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Idempotency-Key": %(key)s},
    body: JSON.stringify(%(deposit)s),
  })));
  await fetch("/report", {method: "POST", headers: {"Content-Type": "application/json"},
                          body: JSON.stringify(results)});
})();
</script></body></html>
"""


@dataclass
class Frontend:
    """A page server: serves the page, and resolves `report` when the page posts back."""

    name: str
    gateway_url: str = ""
    report: asyncio.Future[list[dict[str, Any]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    server: TestServer | None = None

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    async def page(self, request: web.Request) -> web.Response:
        html = PAGE % {
            "gateway": json.dumps(self.gateway_url),
            "key": json.dumps(f"browser-{self.name}"),
            "deposit": json.dumps(DEPOSIT),
        }
        return web.Response(text=html, content_type="text/html")

    async def receive(self, request: web.Request) -> web.Response:
        if not self.report.done():
            self.report.set_result(await request.json())
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_post("/report", self.receive)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()


@pytest.fixture
async def frontends() -> AsyncIterator[tuple[Frontend, Frontend]]:
    allowed, other = Frontend("allowed"), Frontend("other")
    for f in (allowed, other):
        await f.start()
    yield allowed, other
    for f in (allowed, other):
        assert f.server is not None
        await f.server.close()


def chromium_binary() -> str:
    # A missing browser is installed, or fails the test: never a silent skip.
    return os.environ.get("CHROMIUM") or require("chromium", "chromium", "chromium-driver")


@dataclass
class Browser:
    proc: asyncio.subprocess.Process
    log_path: Path


@contextlib.asynccontextmanager
async def chromium(url: str) -> AsyncIterator[Browser]:
    """Headless Chromium on `url`, killed (with its helper processes) on exit."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="cors-chromium-") as tmp:
        log_path = Path(tmp) / "chromium.log"
        args = [
            "--headless",
            "--no-sandbox",  # the tests may run as root in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            url,  # headless mode opens one target per process
        ]
        with log_path.open("wb") as log:
            # Own session: Chromium forks helpers (zygote, renderers); killing the group
            # ends all of them and nothing else.
            proc = await asyncio.create_subprocess_exec(
                binary,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            try:
                yield Browser(proc, log_path)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await asyncio.wait_for(proc.wait(), 5)


async def reports(browsers: list[Browser], frontends: tuple[Frontend, ...]) -> list[Any]:
    """Every page's report; fails fast if a browser exits first, or after REPORT_TIMEOUT_S."""
    all_reports = asyncio.ensure_future(asyncio.gather(*(f.report for f in frontends)))
    exits = [asyncio.ensure_future(b.proc.wait()) for b in browsers]
    try:
        await asyncio.wait(
            [all_reports, *exits], timeout=REPORT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if all_reports.done():
            return all_reports.result()
        logs = "\n".join(f"--- {b.log_path.name}:\n{log_tail(b.log_path)}" for b in browsers)
        exited = [b.proc.returncode for b in browsers if b.proc.returncode is not None]
        why = f"chromium exited ({exited})" if exited else f"no report in {REPORT_TIMEOUT_S} s"
        pytest.fail(f"the pages did not report: {why}\n{logs}")
    finally:
        for task in (all_reports, *exits):
            task.cancel()


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def test_browser_allows_the_listed_origin_and_blocks_the_other(
    make_gateway: MakeGateway, frontends: tuple[Frontend, Frontend]
):
    allowed = frontends[0]
    gw = await make_gateway(
        {
            "cors": {
                "allow_origins": [allowed.origin],
                "allow_headers": ["Content-Type", "Idempotency-Key", "X-API-Key"],
                "allow_methods": ["GET", "POST"],
                "max_age_s": 600,
            }
        }
    )
    gateway_url = gw.url.rstrip("/")
    for f in frontends:
        f.gateway_url = gateway_url

    async with contextlib.AsyncExitStack() as stack:
        browsers = [await stack.enter_async_context(chromium(f.origin + "/")) for f in frontends]
        ok, refused = await reports(browsers, frontends)

    by_name = {r["name"]: r for r in ok}
    assert by_name["games"]["outcome"] == "ok", ok
    assert by_name["games"]["status"] == 200
    assert by_name["games"]["request_id"]  # exposed, so readable by the page
    assert by_name["payment"]["outcome"] == "ok", ok
    assert by_name["payment"]["status"] == 201

    by_name = {r["name"]: r for r in refused}
    for name in ("games", "payment"):
        assert by_name[name]["outcome"] == "blocked", refused
        assert by_name[name]["error"].startswith("TypeError"), refused
    # The refused preflight stopped the POST in the browser: one payment, from the allowed page.
    assert gw.calls("stripe", STRIPE_CREATE) == 1
