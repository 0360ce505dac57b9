"""`POST /_sim/rounds`: an aggregator simulator playing one round against the operator's wallet.

The simulator sends the real, signed wallet callbacks its provider sends (a bet, then a win,
which is 0 for a lost round) to the wallet URL, for a session launched through it, and
answers with every call it made and what came back. Fault controls play what aggregators do
when things go wrong:

- `retry`: the bet is sent twice, the second time as a retry of the first;
- `timeout_then_rollback`: the bet, then its rollback (as after a bet that timed out);
- `rollback_before_bet`: the rollback arrives first, then the bet it names;
- `duplicate_other_amount`: the bet, then another bet with its id and twice the amount.

`"bet": null` plays a win alone, as a free spin or a promotion pays out.

Each provider module supplies a `Callbacks` (how its calls look and are signed).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web

FAULTS = ("retry", "timeout_then_rollback", "rollback_before_bet", "duplicate_other_amount")
CALLBACK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Session:
    player_id: str
    token: str
    currency: str
    game_code: str


@dataclass(frozen=True)
class Sent:
    """One callback as sent: retried as it was (or re-signed, as the provider does)."""

    action: str
    payload: dict[str, Any]


class Callbacks(Protocol):
    def bet(self, s: Session, tx: str, round_id: str, amount: Any) -> Sent: ...

    def win(
        self, s: Session, tx: str, round_id: str, amount: Any, bet_tx: str | None
    ) -> Sent: ...

    def rollback(self, s: Session, tx: str, round_id: str, bet_tx: str, amount: Any) -> Sent: ...

    def other_amount(self, amount: Any) -> Any: ...

    def ok(self, answer: Any) -> bool: ...

    async def send(self, http: aiohttp.ClientSession, url: str, sent: Sent) -> tuple[int, Any]: ...


def new_id() -> str:
    return secrets.token_hex(12)


async def play(
    cb: Callbacks,
    http: aiohttp.ClientSession,
    url: str,
    s: Session,
    bet: Any,
    win: Any,
    fault: str | None,
) -> list[dict[str, Any]]:
    round_id, bet_tx = new_id(), new_id()
    steps: list[dict[str, Any]] = []

    async def go(sent: Sent) -> Any:
        status, answer = await cb.send(http, url, sent)
        steps.append(
            {"action": sent.action, "request": sent.payload, "status": status, "answer": answer}
        )
        return answer

    if bet is None:  # a win with no bet: a free spin or a promotion
        await go(cb.win(s, new_id(), round_id, win, None))
        return steps
    placed = cb.bet(s, bet_tx, round_id, bet)
    if fault == "rollback_before_bet":
        await go(cb.rollback(s, new_id(), round_id, bet_tx, bet))
        await go(placed)
        return steps
    answer = await go(placed)
    if fault == "retry":
        answer = await go(placed)
    elif fault == "duplicate_other_amount":
        await go(cb.bet(s, bet_tx, round_id, cb.other_amount(bet)))
        return steps
    elif fault == "timeout_then_rollback":
        await go(cb.rollback(s, new_id(), round_id, bet_tx, bet))
        return steps
    if cb.ok(answer):
        await go(cb.win(s, new_id(), round_id, win, bet_tx))
    return steps


SessionLookup = Callable[[web.Application, dict[str, Any]], Session | None]


def install(
    app: web.Application,
    callbacks: Callable[[web.Application], Callbacks],
    session_of: SessionLookup,
    wallet_url: str | None,
    default_bet: Any,
) -> None:
    """Add `POST /_sim/rounds`: `{session fields, "bet", "win", "fault", "wallet_url"}`."""

    async def rounds(request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(data, dict):
            return web.json_response({"error": "the body is not an object"}, status=400)
        fault = data.get("fault")
        if fault is not None and fault not in FAULTS:
            return web.json_response({"error": f"fault must be one of {FAULTS}"}, status=400)
        url = data.get("wallet_url") or wallet_url
        if not url:
            return web.json_response({"error": "no wallet_url"}, status=400)
        session = session_of(request.app, data)
        if session is None:
            return web.json_response({"error": "no session launched with that token"}, status=404)
        timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            steps = await play(
                callbacks(request.app),
                http,
                url,
                session,
                data.get("bet", default_bet),
                data.get("win", 0),
                fault,
            )
        return web.json_response({"player_id": session.player_id, "calls": steps})

    app.router.add_post("/_sim/rounds", rounds)
