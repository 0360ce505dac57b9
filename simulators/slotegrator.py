"""Simulated Slotegrator GIS merchant API: the game list and game launch.

Speaks the provider's API as documented: `GET /games` (paginated with `page` and `per-page`,
answering `items`, `_meta`, `_links` and the `X-Pagination-*` headers), `POST /games/init`
and `POST /games/init-demo` (form fields). Every call must carry `X-Merchant-Id`,
`X-Timestamp`, `X-Nonce` and `X-Sign`; the sign is checked here from the documentation
alone, so a signing bug in the adapter shows up as a 403. Errors are
`{"name", "message", "status"}`.

Beyond the faults every simulator has, `app[LAUNCHES]` keeps the form of every accepted
launch, in order, so tests can see exactly what reached the provider.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web

from simulators import faults
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
_UNRESERVED = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
)


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
        "items": items[start:start + per_page],
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


def create_app(
    *,
    merchant_id: str = "demo",
    merchant_key: str,
    per_page: int = 8,
    games: Sequence[SimGame] | None = None,
    max_clock_skew_s: int = 300,
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
    return app
