"""The one wallet API the casino backend implements, and the gateway's client of it.

Every call is `POST {wallet.backend_url}/<operation>` (balance, debit, credit, rollback),
JSON, signed as payment events are: `X-Gateway-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"{t}.{raw body}">` with the secret named by `wallet.secret_env`
(`gateway.events.delivery.verify_signature` is a reference check). Fields:

- every call: `player_id`, `currency` (ISO 4217; null on Hub88's /user/info, which names
  none), `provider`, `session_token` (as the aggregator sent it), `request_id`;
- `debit` / `credit`: `transaction_id` (`<provider>:<the provider's id>`, stable across
  retries), `amount` (integer minor units), `round_id`, `round_closed`, `game_id` (the
  canonical id, null when the catalog does not know the game), `is_free`,
  `reference_transaction_id` (a credit's: the bet it settles, if any);
- `rollback`: `transaction_id`, `reference_transaction_id` (the debit or credit it
  reverses), `amount` (what that transaction moved, when known).

The backend answers `{"balance": <minor units>, "currency"}`, or `{"error":
"insufficient_funds" | "player_blocked" | "limit_reached" | "invalid_session" |
"unknown_player" | "wrong_currency", "balance"}`. Its side of the contract: idempotent on
`transaction_id` (a call sent again gets the first one's effect, once); a rollback reverses
its transaction if it moved money and otherwise remembers the id, so that a debit with it
arriving later is refused; a credit or rollback is never refused for its session token.
Anything else (a timeout past `wallet.timeout_ms`, a 5xx, an unreadable answer) leaves the
outcome unknown: the aggregator is told to retry, or rolls the bet back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from adapters.wallet import BACKEND_ERRORS, Outcome
from gateway.config.wallet import WalletSettings
from gateway.events.delivery import SIGNATURE_HEADER, sign
from gateway.obs.metrics import Metrics
from gateway.obs.tracing import outgoing_headers

log = logging.getLogger("gateway.wallet")
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class BackendAnswer:
    outcome: Outcome  # ok, one of BACKEND_ERRORS, or unavailable (no usable answer)
    balance: int | None = None
    currency: str | None = None


async def call_backend(
    session: aiohttp.ClientSession,
    settings: WalletSettings,
    metrics: Metrics,
    operation: str,
    payload: dict[str, Any],
) -> BackendAnswer:
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(settings.secret, int(time.time()), body),
        **outgoing_headers(),  # the trace of the callback this call settles
    }
    started = time.perf_counter()
    try:
        async with asyncio.timeout(settings.timeout_ms / 1000):
            async with session.post(
                f"{settings.backend_url}/{operation}", data=body, headers=headers
            ) as response:
                status = response.status
                raw = await response.content.read(MAX_ANSWER_BYTES + 1)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning(
            "wallet backend unreachable",
            extra={"operation": operation, "error": type(exc).__name__},
        )
        return BackendAnswer("unavailable")
    finally:
        metrics.wallet_backend_duration.labels(operation).observe(
            time.perf_counter() - started
        )
    answer = read_answer(status, raw)
    if answer.outcome == "unavailable":
        log.warning("wallet backend gave no usable answer", extra={"operation": operation,
                                                                   "status": status})
    return answer


def read_answer(status: int, raw: bytes) -> BackendAnswer:
    """A backend answer, or `unavailable` for anything outside the contract."""
    if status >= 500 or len(raw) > MAX_ANSWER_BYTES:
        return BackendAnswer("unavailable")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return BackendAnswer("unavailable")
    if not isinstance(data, dict):
        return BackendAnswer("unavailable")
    balance = data.get("balance")
    if isinstance(balance, bool) or not isinstance(balance, int):
        balance = None
    currency = data.get("currency")
    currency = currency if isinstance(currency, str) and len(currency) == 3 else None
    error = data.get("error")
    if error is not None:
        if error in BACKEND_ERRORS:
            return BackendAnswer(error, balance, currency)
        return BackendAnswer("unavailable")
    if 200 <= status < 300 and balance is not None:
        return BackendAnswer("ok", balance, currency)
    return BackendAnswer("unavailable")
