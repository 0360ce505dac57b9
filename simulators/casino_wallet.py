"""A reference casino wallet: the backend side of the gateway's wallet API, in memory.

`POST /wallet/balance|debit|credit|rollback` as the gateway sends them (its docstring in
`gateway.wallet.backend` is the contract): every call's `X-Gateway-Signature` is checked
(HMAC-SHA256 of "{t}.{body}", 300 s tolerance), and every transaction is idempotent on
`transaction_id`. A rollback reverses what its transaction moved, or, for one it never saw,
remembers the id so that the transaction arriving later moves nothing. Sessions are
checked on balance and debit only: a win or a rollback is never refused for its token.

Controls (not signed; tests and the demo use them):
- `GET /_sim/players/{id}` -> `{"player_id", "currency", "balance"}` (404 unknown);
  `PUT` the same path with `{"currency", "balance"}` creates or sets a player;
- `POST /_sim/sessions/{token}/expire`: that session token is refused from now on;
- `POST /_sim/delay` `{"operation", "delay_ms", "count"}`: the next `count` calls of
  that operation are applied, then answered after `delay_ms` (a backend that acted but
  answered too late);
- `/_sim/faults`, `/_sim/stats` as every simulator (calls counted per path).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulators import faults

DEFAULT_PORT = 9200
TOLERANCE_S = 300


@dataclass
class Player:
    currency: str
    balance: int  # minor units


@dataclass
class Delay:
    operation: str = ""
    delay_ms: int = 0
    count: int = 0


@dataclass
class WalletState:
    secret: bytes
    players: dict[str, Player] = field(default_factory=dict)
    # transaction_id -> (operation, player_id, amount, reversed)
    transactions: dict[str, list[Any]] = field(default_factory=dict)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # transaction_id -> answer
    reversed_unseen: set[str] = field(default_factory=set)
    expired_tokens: set[str] = field(default_factory=set)
    delay: Delay = field(default_factory=Delay)


STATE = web.AppKey("casino_wallet_state", WalletState)


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def signature_ok(secret: bytes, header: str, body: bytes, now: float) -> bool:
    parts = dict(p.strip().partition("=")[::2] for p in header.split(","))
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isascii() or not stamp.isdigit() or abs(now - int(stamp)) > TOLERANCE_S:
        return False
    expected = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


async def wallet_call(request: web.Request) -> web.Response:
    state = request.app[STATE]
    operation = request.match_info["operation"]
    body = await request.read()
    if not signature_ok(
        state.secret, request.headers.get("X-Gateway-Signature", ""), body, time.time()
    ):
        return web.json_response({"message": "bad signature"}, status=401)
    try:
        call = json.loads(body)
    except ValueError:
        return web.json_response({"message": "not JSON"}, status=400)
    handler = OPERATIONS.get(operation)
    if handler is None or not isinstance(call, dict):
        return web.json_response({"message": "unknown operation"}, status=404)
    answer = handler(state, call)
    delay = state.delay
    if delay.count > 0 and delay.operation == operation:
        delay.count -= 1
        await asyncio.sleep(delay.delay_ms / 1000)  # applied already: only the answer is late
    status = 409 if answer.get("error") == "rolled_back" else 200
    return web.json_response(answer, status=status)


def _player(state: WalletState, call: Mapping[str, Any]) -> tuple[Player | None, dict[str, Any]]:
    player = state.players.get(str(call.get("player_id")))
    if player is None:
        return None, {"error": "unknown_player"}
    if call.get("currency") not in (None, player.currency):
        return None, {"error": "wrong_currency", "balance": player.balance}
    return player, {}


def _ok(player: Player) -> dict[str, Any]:
    return {"balance": player.balance, "currency": player.currency}


def balance(state: WalletState, call: Mapping[str, Any]) -> dict[str, Any]:
    player, error = _player(state, call)
    if player is None:
        return error
    if call.get("session_token") in state.expired_tokens:
        return {"error": "invalid_session", "balance": player.balance}
    return _ok(player)


def debit(state: WalletState, call: Mapping[str, Any]) -> dict[str, Any]:
    tx = str(call.get("transaction_id"))
    if tx in state.answers:
        return state.answers[tx]
    player, error = _player(state, call)
    if player is None:
        return error
    if tx in state.reversed_unseen:
        return {"error": "rolled_back", "balance": player.balance}
    if call.get("session_token") in state.expired_tokens:
        return {"error": "invalid_session", "balance": player.balance}
    amount = int(call["amount"])
    if amount > player.balance:
        return {"error": "insufficient_funds", "balance": player.balance}
    player.balance -= amount
    state.transactions[tx] = ["debit", str(call["player_id"]), amount, False]
    answer = state.answers[tx] = _ok(player)
    return answer


def credit(state: WalletState, call: Mapping[str, Any]) -> dict[str, Any]:
    tx = str(call.get("transaction_id"))
    if tx in state.answers:
        return state.answers[tx]
    player, error = _player(state, call)
    if player is None:
        return error
    if tx in state.reversed_unseen:
        return {"error": "rolled_back", "balance": player.balance}
    amount = int(call["amount"])
    player.balance += amount
    state.transactions[tx] = ["credit", str(call["player_id"]), amount, False]
    answer = state.answers[tx] = _ok(player)
    return answer


def rollback(state: WalletState, call: Mapping[str, Any]) -> dict[str, Any]:
    tx = str(call.get("transaction_id"))
    if tx in state.answers:
        return state.answers[tx]
    player, error = _player(state, call)
    if player is None:
        return error
    reference = str(call.get("reference_transaction_id"))
    done = state.transactions.get(reference)
    if done is None:
        state.reversed_unseen.add(reference)
    elif not done[3]:
        operation, _player_id, amount, _ = done
        player.balance += amount if operation == "debit" else -amount
        done[3] = True
    answer = state.answers[tx] = _ok(player)
    return answer


OPERATIONS = {"balance": balance, "debit": debit, "credit": credit, "rollback": rollback}


async def get_player(request: web.Request) -> web.Response:
    player_id = request.match_info["player_id"]
    player = request.app[STATE].players.get(player_id)
    if player is None:
        return web.json_response({"message": "unknown player"}, status=404)
    return web.json_response(
        {"player_id": player_id, "currency": player.currency, "balance": player.balance}
    )


async def put_player(request: web.Request) -> web.Response:
    data = await request.json()
    player_id = request.match_info["player_id"]
    request.app[STATE].players[player_id] = Player(str(data["currency"]), int(data["balance"]))
    return await get_player(request)


async def expire_session(request: web.Request) -> web.Response:
    request.app[STATE].expired_tokens.add(request.match_info["token"])
    return web.json_response({"expired": request.match_info["token"]})


async def set_delay(request: web.Request) -> web.Response:
    data = await request.json()
    request.app[STATE].delay = Delay(
        str(data["operation"]), int(data["delay_ms"]), int(data.get("count", 1))
    )
    return web.json_response(data)


def create_app(
    *, secret: str, players: Mapping[str, tuple[str, int]] | None = None
) -> web.Application:
    """`players`: player id -> (currency, balance in minor units) to start with."""
    app = web.Application()
    app[STATE] = WalletState(
        secret=secret.encode("utf-8"),
        players={pid: Player(cur, bal) for pid, (cur, bal) in (players or {}).items()},
    )
    faults.install(app, error_response)
    app.router.add_post("/wallet/{operation}", wallet_call)
    app.router.add_get("/_sim/players/{player_id}", get_player)
    app.router.add_put("/_sim/players/{player_id}", put_player)
    app.router.add_post("/_sim/sessions/{token}/expire", expire_session)
    app.router.add_post("/_sim/delay", set_delay)
    return app
