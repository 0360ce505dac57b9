"""Plain HTTP from the harness itself: waiting for a server to answer, and checking that a
row's URL answers what the row means to measure before any load is sent."""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from paths import GAME_ID
from procs import Proc
from progress import BenchError

START_TIMEOUT_S = 30.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> Answer:
    return http_request("GET", url, headers, None, timeout)


def http_request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> Answer:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def wait_until(
    what: str, check: Callable[[], bool], proc: Proc | None, timeout: float = START_TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise BenchError(
                f"{proc.name} exited with {proc.popen.returncode} before {what}:\n"
                + proc.log_tail()
            )
        with contextlib.suppress(OSError, http.client.HTTPException):
            if check():
                return
        time.sleep(0.05)
    tail = f":\n{proc.log_tail()}" if proc is not None else ""
    raise BenchError(f"timed out after {timeout:g}s waiting for {what}{tail}")


def expect(condition: bool, message: str, answer: Answer) -> None:
    if not condition:
        raise BenchError(f"{message}: HTTP {answer.status} {answer.body[:300]!r}")


def check_intent(url: str) -> None:
    answer = http_get(url)
    expect(answer.status == 200, f"GET {url}", answer)
    expect(answer.json().get("id") == "pi_bench", f"GET {url}: not the fixture", answer)


def warm_game(url: str, headers: dict[str, str], attempts: int) -> None:
    """Fill the cache; several fresh connections so each worker of F gets its own."""
    for _ in range(attempts):
        answer = http_get(url, headers)
        expect(answer.status == 200, f"GET {url}", answer)
    answer = http_get(url, headers)
    body = answer.json()
    expect(body.get("id") == GAME_ID, f"GET {url}: not {GAME_ID}", answer)
    expect(len(body.get("offers", [])) == 2, f"GET {url}: expected two offers", answer)
    expect(answer.headers.get("X-Cache") == "HIT", f"GET {url}: catalog not warm", answer)


def check_launch(url: str, headers: dict[str, str], body: bytes) -> None:
    sent = {**headers, "Content-Type": "application/json"}
    answer = http_request("POST", url, sent, body)
    expect(answer.status == 200, f"POST {url}", answer)
    launched = answer.json()
    expect(
        launched.get("provider") == "slotegrator"
        and launched.get("launch_url", "").startswith("https://games.slotegrator.example/"),
        f"POST {url}: not launched through Slotegrator",
        answer,
    )


def check_payment(url: str, headers: dict[str, str]) -> None:
    answer = http_get(url, headers)
    expect(answer.status == 200, f"GET {url}", answer)
    body = answer.json()
    expect(
        body.get("provider") == "stripe"
        and body.get("provider_reference") == "pi_bench"
        and body.get("status") == "succeeded",
        f"GET {url}: not the Stripe fixture read back",
        answer,
    )
    expect("X-Cache" not in answer.headers, f"GET {url}: payments.get is cached", answer)
