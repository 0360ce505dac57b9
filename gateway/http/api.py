"""Handlers of the unified API: parse and validate input, call a flow, render output.

Handlers are thin: decisions live in `gateway/games/`, `gateway/payments/` and `policies/`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from gateway.games.catalog import find_game, read_catalog, require_some_catalog
from gateway.games.launch import launch
from gateway.games.merge import GameFilter
from gateway.http.body import read_body
from gateway.http.context import CATALOG, CTX, GATEWAY, json_response
from gateway.http.players import require_player
from gateway.http.validation import openapi_document, validate_body
from gateway.payments.create import create
from gateway.payments.read import get
from gateway.problems import ApiError
from policies.shared_cache import JsonCodec

JSON_CODEC = JsonCodec()

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
_DIGITS = re.compile(r"[0-9]{1,9}")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_FILTERS = ("provider", "studio", "category", "platform", "q")
_QUERY_KEYS = frozenset((*_FILTERS, "country", "page", "page_size"))
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_PLATFORMS = frozenset({"desktop", "mobile"})


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # str.isdigit() also accepts "²" and 5000-digit numbers that int() refuses.
    if not _DIGITS.fullmatch(raw) or not lo <= int(raw) <= hi:
        raise ApiError("invalid_request", f"{name} must be an integer from {lo} to {hi}")
    return int(raw)


async def read_json(request: web.Request) -> Any:
    """The JSON body, within the configured size, or the matching problem."""
    config = request[CTX]["runtime"].config
    limit = config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError("payload_too_large", f"the body is over {limit} bytes")
    if request.content_type != "application/json":
        raise ApiError("unsupported_media_type", "send the body as application/json")
    raw = await read_body(request, limit, config.server.body_timeout_s)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError("invalid_request", "the body is not valid JSON") from None


def _set_cache_header(request: web.Request, status: str | None) -> dict[str, str]:
    if status is None:
        return {}
    ctx = request[CTX]
    ctx["cache"] = status
    request.app[GATEWAY].metrics.cache_result(ctx["route"], status)
    return {"X-Cache": status}


def _country(request: web.Request) -> str | None:
    raw = request.query.get("country")
    if raw is None:
        return None
    if not _COUNTRY.fullmatch(raw):
        raise ApiError("invalid_request", "country must be an ISO 3166-1 alpha-2 code, e.g. DE")
    return raw.upper()


async def list_games(request: web.Request) -> web.Response:
    rt = request[CTX]["runtime"]
    unknown = set(request.query) - _QUERY_KEYS
    if unknown:
        raise ApiError(
            "invalid_request", f"unknown query parameter(s): {', '.join(sorted(unknown))}"
        )
    page = _int_param(request, "page", 1, 1, 1_000_000)
    page_size = _int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    platform = request.query.get("platform")
    if platform is not None and platform not in _PLATFORMS:
        raise ApiError("invalid_request", "platform must be desktop or mobile")
    flt = GameFilter(
        **{k: request.query.get(k) or None for k in _FILTERS}, country=_country(request)
    )
    snapshot, status = await read_catalog(request.app[CATALOG], rt, "games.list")
    require_some_catalog(snapshot)
    body = snapshot.page_body(flt, page, page_size)
    headers = _set_cache_header(request, status)
    return web.Response(body=body, content_type="application/json", headers=headers)


async def get_game(request: web.Request) -> web.Response:
    rt = request[CTX]["runtime"]
    game_id = request.match_info["game_id"]
    snapshot, status = await read_catalog(request.app[CATALOG], rt, "games.get")
    body = snapshot.game_body(game_id)
    if body is None:
        find_game(snapshot, game_id)  # raises the right problem
        raise ApiError("not_found", f"no game '{game_id}'")
    headers = _set_cache_header(request, status)
    return web.Response(body=body, content_type="application/json", headers=headers)


async def launch_game(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    rt = request[CTX]["runtime"]
    body = validate_body("LaunchRequest", await read_json(request))
    token_player = request[CTX]["player_id"]
    if token_player is not None and (body.get("player_id") or body["mode"] == "real"):
        require_player(token_player, body.get("player_id"))
    game_id = request.match_info["game_id"]
    sync = request.app[CATALOG]
    result, provider, failed_over = await launch(
        gw, sync, rt, game_id, body, request[CTX]["client_ip"]
    )
    request[CTX]["provider"] = provider
    request[CTX]["failover"] = failed_over
    return json_response({"launch_url": result.url, "provider": provider, "game_id": game_id})


def idempotency_key(request: web.Request) -> str:
    """The request's Idempotency-Key: required, 1-255 printable ASCII characters."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        raise ApiError("idempotency_key_required", "send an Idempotency-Key header")
    if not IDEMPOTENCY_KEY.match(key):
        raise ApiError("invalid_request", "Idempotency-Key must be 1-255 printable characters")
    return key


async def create_payment(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    key = idempotency_key(request)
    body = validate_body("PaymentRequest", await read_json(request))
    require_player(ctx["player_id"], body["player_id"])
    status, payment, replayed = await create(
        gw, ctx["runtime"], ctx["client_id"], key, body
    )
    ctx["provider"] = payment["provider"]
    ctx["failover"] = len({a["provider"] for a in payment["attempts"]}) > 1
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return json_response(payment, status=status, headers=headers)


async def get_payment(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    rt = ctx["runtime"]
    payment_id = request.match_info["payment_id"]
    route = rt.config.routes.get("payments.get")
    if route is not None and route.cache is not None and route.cache.ttl_s > 0:

        async def fetch() -> tuple[dict[str, Any], int]:
            payment, player = await get(gw, rt, payment_id)
            return {"payment": payment, "player_id": player}, 1024

        lookup = await gw.cache.get_or_fetch(
            f"payment:{payment_id}", route.cache, fetch, JSON_CODEC
        )
        payment, player = lookup.value["payment"], lookup.value["player_id"]
        headers = _set_cache_header(request, lookup.status)
    else:
        (payment, player), headers = await get(gw, rt, payment_id), {}
    token_player = ctx["player_id"]
    if token_player is not None and player is None:
        raise ApiError(
            "unavailable",
            "the payment's owner cannot be checked while the ledger is unreachable",
            headers={"Retry-After": "1"},
        )
    if token_player is not None and player != token_player:
        # Another player's payment does not exist for this one: 404, as for a bad id.
        raise ApiError("not_found", f"no payment '{payment_id}'")
    ctx["provider"] = payment["provider"]
    return json_response(payment, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    rt = gw.runtime
    routes: dict[str, Any] = {}
    ready = True
    for op in rt.config.routes:
        selection = gw.selection(rt, op)
        routes[op] = {
            "usable": list(selection.candidates),
            "skipped": {name: why for name, why in selection.skipped},
        }
        ready = ready and bool(selection.candidates)
    ledger = await gw.ledger.status()
    if any(op.startswith("payments.") for op in rt.config.routes):
        ready = ready and ledger["ok"]  # no payment can be taken without it
    body = {
        "status": "ready" if ready else "not_ready",
        "config_hash": rt.config.hash,
        "routes": routes,
        "storage": gw.storage_status(),
        "ledger": ledger,
    }
    return json_response(body, status=200 if ready else 503)


OPS_ROLES = frozenset({"viewer", "operator", "admin"})


async def provider_status(request: web.Request) -> web.Response:
    """Each provider's health; its last error and breaker internals for operators only."""
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    rt = ctx["runtime"]
    if not ctx["roles"] & OPS_ROLES:
        return json_response(
            {
                "providers": {
                    name: {"name": name, "kind": state.config.kind, "healthy": state.health.healthy}
                    for name, state in rt.providers.items()
                }
            }
        )
    return json_response(
        {
            "providers": {
                name: {**state.status(), "cooldown_s": round(gw.cooldowns.blocked_for(name), 3)}
                for name, state in rt.providers.items()
            }
        }
    )


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    """Each route is named by its operation: middlewares apply that route's policies."""
    app.router.add_get("/v1/games", list_games, name="games.list")
    app.router.add_get("/v1/games/{game_id}", get_game, name="games.get")
    app.router.add_post("/v1/games/{game_id}/launch", launch_game, name="games.launch")
    app.router.add_post("/v1/payments", create_payment, name="payments.create")
    app.router.add_get("/v1/payments/{payment_id}", get_payment, name="payments.get")
    app.router.add_get("/v1/providers/status", provider_status, name="providers.status")
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/openapi.json", openapi, name="openapi")
