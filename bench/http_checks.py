"""Plain HTTP from the harness itself: waiting for a server to answer, checking that a row's
URL answers what the row means to measure before any load is sent, and creating the payment
row E reads back."""

from __future__ import annotations

import contextlib
import http.client
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from paths import DEPOSIT_BODY, GAME_ID, INTENT_ID, INTENT_STATUS, PAYMENTS_PATH
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
    return http_request("GET", url, headers, timeout=timeout)


def http_request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: str | None = None,
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


def check_launch(url: str, headers: dict[str, str], body: str) -> None:
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


def _is_fixture_payment(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("provider") == "stripe"
        and body.get("provider_reference") == INTENT_ID
        and body.get("status") == INTENT_STATUS
    )


def create_payment(base: str, headers: dict[str, str]) -> str:
    """POST the deposit under a new Idempotency-Key, as rows P and Q do; the payment's id.
    The answer must be a 201 from Stripe (nginx): a created payment, not a replay."""
    url = base + PAYMENTS_PATH
    key = f"bench-check-{secrets.token_hex(8)}"
    post_headers = {**headers, "Idempotency-Key": key, "Content-Type": "application/json"}
    answer = http_request("POST", url, post_headers, DEPOSIT_BODY)
    expect(answer.status == 201, f"POST {url}: expected 201", answer)
    body = answer.json()
    expect(_is_fixture_payment(body), f"POST {url}: not the Stripe fixture created", answer)
    expect(
        "Idempotent-Replayed" not in answer.headers, f"POST {url}: replayed, not created", answer
    )
    payment_id = body.get("payment_id")
    expect(isinstance(payment_id, str) and bool(payment_id), f"POST {url}: no id", answer)
    return str(payment_id)


def _stripe_reads(base: str) -> float:
    """How many times the gateway has read a payment from Stripe (its /metrics)."""
    answer = http_get(base + "/metrics")
    expect(answer.status == 200, f"GET {base}/metrics", answer)
    total = 0.0
    for line in answer.body.decode().splitlines():
        if (
            line.startswith("gateway_upstream_requests_total{")
            and 'provider="stripe"' in line
            and 'operation="payments.get"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def check_payment(base: str, path: str, headers: dict[str, str]) -> None:
    """Row E's read-back: the payment created through the gateway, still `processing`, and
    read from Stripe (nginx) on each request, not answered from the ledger alone."""
    url = base + path
    before = _stripe_reads(base)
    for _ in range(2):
        answer = http_get(url, headers)
        expect(answer.status == 200, f"GET {url}", answer)
        expect(_is_fixture_payment(answer.json()), f"GET {url}: not the Stripe fixture", answer)
        expect("X-Cache" not in answer.headers, f"GET {url}: payments.get is cached", answer)
    calls = _stripe_reads(base) - before
    expect(calls == 2, f"GET {url}: {calls:g} reads from Stripe for 2 requests", answer)


def check_bet(url: str, bets: Path) -> None:
    """One signed Hub88 bet through the gateway to the casino wallet: RS_OK and a balance."""
    signature, _, body = bets.read_text().splitlines()[0].partition("\t")
    answer = http_request(
        "POST",
        url,
        {"Content-Type": "application/json", "X-Hub88-Signature": signature},
        body,
    )
    data = answer.json() if answer.status == 200 else {}
    expect(
        data.get("status") == "RS_OK" and data.get("balance") == 100_000 * 1000,
        "a signed bet is not RS_OK with the wallet's balance",
        answer,
    )
