"""Simulated Slotegrator GIS merchant API: the game list and game launch.

Speaks the provider's API as documented: `GET /games` (paginated with `page` and `per-page`,
answering `items`, `_meta`, `_links` and the `X-Pagination-*` headers), `POST /games/init`
and `POST /games/init-demo` (form fields). Every call must carry `X-Merchant-Id`,
`X-Timestamp`, `X-Nonce` and `X-Sign`; the sign is checked here from the documentation
alone, so a signing bug in the adapter shows up as a 403. Errors are
`{"name", "message", "status"}`.

Beyond the faults every simulator has, `app[LAUNCHES]` keeps the form of every accepted
launch, in order, so tests can see exactly what reached the provider.

With `wallet_url` (the merchant's wallet callback URL), `POST /_sim/rounds`
(`simulators.rounds`): `{"session_id", "bet", "win", "fault"}` plays a round for the session
launched with that id, amounts as decimal strings, with the form-encoded, signed callbacks
Slotegrator sends (`action` bet, win, rollback).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web

from simulators import faults, rounds
from simulators.catalog import SimGame, slotegrator_games

DEFAULT_PORT = 9102

CDN = "https://cdn.slotegrator.example"
PLAY_URL = "https://games.slotegrator.example/play"
# The framework behind the API bounds `per-page` to this range.
PER_PAGE_LIMITS = (1, 50)
DEVICES = ("desktop", "mobile")
SIGNED_HEADERS = ("X-Merchant-Id", "X-Timestamp", "X-Nonce")
INIT_FIELDS = ("game_uuid", "player_id", "player_name", "currency", "session_id", "device")
DEMO_FIELDS = ("game_uuid", "device")

MERCHANT_ID = web.AppKey("slotegrator_merchant_id", str)
MERCHANT_KEY = web.AppKey("slotegrator_merchant_key", bytes)
PER_PAGE = web.AppKey("slotegrator_per_page", int)
MAX_SKEW = web.AppKey("slotegrator_max_clock_skew_s", int)
GAMES = web.AppKey("slotegrator_games", dict)
LAUNCHES = web.AppKey("slotegrator_launches", list)

# PHP's urlencode leaves only these bytes as they are (and turns a space into "+").
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> web.Response:
    """The provider's error shape; the name is the HTTP reason phrase, as its framework does."""
    try:
        name = HTTPStatus(status).phrase
    except ValueError:
        name = "Internal Server Error"
    return web.json_response({"name": name, "message": message, "status": status}, status=status)


def _error(status: int, name: str, message: str) -> web.Response:
    return web.json_response({"name": name, "message": message, "status": status}, status=status)


def _php_urlencode(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if byte in _UNRESERVED:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def expected_sign(key: bytes, params: Mapping[str, str]) -> str:
    message = "&".join(
        f"{_php_urlencode(name)}={_php_urlencode(params[name])}" for name in sorted(params)
    )
    return hmac.new(key, message.encode("ascii"), hashlib.sha1).hexdigest()


def _verify(request: web.Request, params: Mapping[str, str]) -> None:
    app = request.app
    values = {name: request.headers.get(name) for name in SIGNED_HEADERS}
    sign = request.headers.get("X-Sign")
    if sign is None or any(value is None for value in values.values()):
        raise Rejected(403, "Invalid sign")
    if values["X-Merchant-Id"] != app[MERCHANT_ID]:
        raise Rejected(403, "Invalid merchant")
    try:
        timestamp = int(values["X-Timestamp"] or "")
    except ValueError:
        raise Rejected(403, "Invalid timestamp") from None
    if abs(time.time() - timestamp) > app[MAX_SKEW]:
        raise Rejected(403, "Request expired")
    signed = {**params, **{name: value or "" for name, value in values.items()}}
    if not hmac.compare_digest(sign.lower(), expected_sign(app[MERCHANT_KEY], signed)):
        raise Rejected(403, "Invalid sign")


def _game_item(game: SimGame) -> dict[str, Any]:
    assert game.slotegrator is not None
    uuid, studio = game.slotegrator
    image = f"{CDN}/{uuid}.jpg"
    return {
        "uuid": uuid,
        "name": game.name,
        "image": image,
        "type": game.category,
        "provider": studio,
        "provider_id": sum(studio.encode()) % 1000,
        "technology": "html5",
        "is_mobile": game.mobile,
        "has_lobby": game.category == "live",
        "has_freespins": game.category == "slots",
        "has_tables": game.category in ("live", "table"),
        "label": None,
        "parameters": {
            "rtp": game.rtp,
            "volatility": game.volatility,
            "reels_count": "5" if game.category == "slots" else None,
            "lines_count": "20" if game.category == "slots" else None,
        },
        "images": [
            {"name": f"{uuid}.jpg", "file": f"{uuid}.jpg", "url": image, "type": "default"},
        ],
    }


def _int_param(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


async def list_games(request: web.Request) -> web.Response:
    app = request.app
    query = dict(request.query)
    try:
        _verify(request, query)
    except Rejected as exc:
        return _error(exc.status, "Forbidden", exc.message)
    items: Sequence[dict[str, Any]] = list(app[GAMES].values())
    low, high = PER_PAGE_LIMITS
    per_page = min(max(_int_param(query.get("per-page"), app[PER_PAGE]), low), high)
    page_count = max(1, -(-len(items) // per_page))
    # Out-of-range pages are clamped, as the framework's paginator does by default.
    page = min(max(_int_param(query.get("page"), 1), 1), page_count)
    start = (page - 1) * per_page

    def link(number: int) -> dict[str, str]:
        params = {**query, "page": str(number)}
        if per_page != app[PER_PAGE]:
            params["per-page"] = str(per_page)
        else:
            params.pop("per-page", None)
        return {"href": str(request.url.with_query(params))}

    links = {"self": link(page), "first": link(1), "last": link(page_count)}
    if page > 1:
        links["prev"] = link(page - 1)
    if page < page_count:
        links["next"] = link(page + 1)
    body = {
        "items": items[start : start + per_page],
        "_links": links,
        "_meta": {
            "totalCount": len(items),
            "pageCount": page_count,
            "currentPage": page,
            "perPage": per_page,
        },
    }
    headers = {
        "X-Pagination-Total-Count": str(len(items)),
        "X-Pagination-Page-Count": str(page_count),
        "X-Pagination-Current-Page": str(page),
        "X-Pagination-Per-Page": str(per_page),
    }
    return web.json_response(body, headers=headers)


async def _init(request: web.Request, required: tuple[str, ...], demo: bool) -> web.Response:
    form = {name: value for name, value in (await request.post()).items() if isinstance(value, str)}
    try:
        _verify(request, form)
    except Rejected as exc:
        return _error(exc.status, "Forbidden", exc.message)
    for name in required:
        if not form.get(name):
            label = name.replace("_", " ").title()
            return _error(422, "Unprocessable entity", f"{label} cannot be blank.")
    if form["device"] not in DEVICES:
        return _error(422, "Unprocessable entity", "Device is invalid.")
    uuid = form["game_uuid"]
    if uuid not in request.app[GAMES]:
        return _error(422, "Unprocessable entity", "Game not found")
    request.app[LAUNCHES].append({"path": request.path, **form})
    url = f"{PLAY_URL}/{uuid}?session={secrets.token_hex(12)}"
    return web.json_response({"url": f"{url}&demo=1" if demo else url})


async def init_game(request: web.Request) -> web.Response:
    return await _init(request, INIT_FIELDS, demo=False)


async def init_demo(request: web.Request) -> web.Response:
    return await _init(request, DEMO_FIELDS, demo=True)


@web.middleware
async def provider_errors(request: web.Request, handler: faults.Handler) -> web.StreamResponse:
    # Unknown paths and wrong methods answer in the provider's error shape, not aiohttp's text.
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)


class WalletCallbacks:
    """Slotegrator's wallet callbacks: one URL, form fields, signed with the merchant key."""

    def __init__(self, merchant_id: str, key: bytes) -> None:
        self.merchant_id = merchant_id
        self.key = key

    def _form(
        self, action: str, s: rounds.Session, tx: str, round_id: str, amount: Any
    ) -> dict[str, str]:
        return {
            "action": action,
            "amount": str(amount),
            "currency": s.currency,
            "game_uuid": s.game_code,
            "player_id": s.player_id,
            "transaction_id": tx,
            "session_id": s.token,
            "type": action,
            "round_id": round_id,
            "finished": "0" if action == "bet" else "1",
        }

    def bet(self, s: rounds.Session, tx: str, round_id: str, amount: Any) -> rounds.Sent:
        return rounds.Sent("bet", self._form("bet", s, tx, round_id, amount))

    def win(
        self, s: rounds.Session, tx: str, round_id: str, amount: Any, bet_tx: str | None
    ) -> rounds.Sent:
        form = self._form("win", s, tx, round_id, amount)
        if bet_tx is None:
            form["type"] = "freespin"  # a win with no bet
        else:
            form["bet_transaction_id"] = bet_tx
        return rounds.Sent("win", form)

    def rollback(
        self, s: rounds.Session, tx: str, round_id: str, bet_tx: str, amount: Any
    ) -> rounds.Sent:
        form = self._form("rollback", s, tx, round_id, amount)
        del form["amount"]
        form.update(
            {
                "rollback_transactions[0][action]": "bet",
                "rollback_transactions[0][transaction_id]": bet_tx,
                "rollback_transactions[0][amount]": str(amount),
                "rollback_transactions[0][type]": "bet",
            }
        )
        return rounds.Sent("rollback", form)

    def other_amount(self, amount: Any) -> Any:
        return str(Decimal(str(amount)) * 2)

    def ok(self, answer: Any) -> bool:
        return isinstance(answer, dict) and "balance" in answer and "error_code" not in answer

    async def send(
        self, http: aiohttp.ClientSession, url: str, sent: rounds.Sent
    ) -> tuple[int, Any]:
        # Each delivery, a retry too, is signed afresh: a nonce is never sent twice.
        auth = {
            "X-Merchant-Id": self.merchant_id,
            "X-Timestamp": str(int(time.time())),
            "X-Nonce": secrets.token_hex(16),
        }
        headers = {
            **auth,
            "X-Sign": expected_sign(self.key, {**sent.payload, **auth}),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        body = "&".join(f"{_php_urlencode(k)}={_php_urlencode(v)}" for k, v in sent.payload.items())
        try:
            async with http.post(url, data=body.encode("ascii"), headers=headers) as r:
                return r.status, await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return 0, {"error": type(exc).__name__}


def _session_of(app: web.Application, data: dict[str, Any]) -> rounds.Session | None:
    session_id = data.get("session_id")
    launches: list[dict[str, Any]] = app[LAUNCHES]
    for launch in reversed(launches):
        if session_id and launch.get("session_id") == session_id:
            return rounds.Session(
                launch["player_id"], session_id, launch["currency"], launch["game_uuid"]
            )
    fields = ("session_id", "player_id", "currency", "game_uuid")
    if all(isinstance(data.get(k), str) for k in fields):
        return rounds.Session(
            data["player_id"], data["session_id"], data["currency"], data["game_uuid"]
        )
    return None


def create_app(
    *,
    merchant_id: str = "demo",
    merchant_key: str,
    per_page: int = 8,
    games: Sequence[SimGame] | None = None,
    max_clock_skew_s: int = 300,
    wallet_url: str | None = None,
) -> web.Application:
    if not merchant_key:
        raise ValueError("merchant_key must not be empty")
    if not PER_PAGE_LIMITS[0] <= per_page <= PER_PAGE_LIMITS[1]:
        raise ValueError(f"per_page must be within {PER_PAGE_LIMITS}")
    chosen = slotegrator_games() if games is None else [g for g in games if g.slotegrator]
    app = web.Application(middlewares=[provider_errors])
    app[MERCHANT_ID] = merchant_id
    app[MERCHANT_KEY] = merchant_key.encode("utf-8")
    app[PER_PAGE] = per_page
    app[MAX_SKEW] = max_clock_skew_s
    app[GAMES] = {item["uuid"]: item for item in map(_game_item, chosen)}
    app[LAUNCHES] = []
    faults.install(app, error_response)
    app.router.add_get("/games", list_games)
    app.router.add_post("/games/init", init_game)
    app.router.add_post("/games/init-demo", init_demo)
    rounds.install(
        app,
        lambda a: WalletCallbacks(a[MERCHANT_ID], a[MERCHANT_KEY]),
        _session_of,
        wallet_url,
        "1.00",
    )
    return app
