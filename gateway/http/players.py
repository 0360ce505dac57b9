"""The player a request speaks for, from its player token (`player_tokens` in the config).

Player routes are the ones that touch one player's money or session: creating and reading
payments and their refunds, launching games, the event stream. The token comes as
`Authorization: Bearer ...`; on the event stream also as `?access_token=` (browsers'
EventSource sends no headers), which the access log never records (it logs the path without
its query).
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.problems import ApiError
from policies.player_access import PlayerTokenSettings, TokenRejected, may_act_for, verify

log = logging.getLogger("gateway.auth")

PLAYER_ROUTES = frozenset(
    {
        "payments.create",
        "payments.get",
        "refunds.create",
        "refunds.get",
        "games.launch",
        "events.stream",
    }
)
QUERY_TOKEN_ROUTES = frozenset({"events.stream"})


def _token(request: web.Request, route: str) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if route in QUERY_TOKEN_ROUTES:
        return request.query.get("access_token") or None
    return None


def player_for(
    request: web.Request, route: str, settings: PlayerTokenSettings | None
) -> str | None:
    """The token's player; None when the route is not a player route or tokens are optional
    and none was sent. A bad, expired or missing-but-required token is 401."""
    if settings is None or route not in PLAYER_ROUTES:
        return None
    token = _token(request, route)
    if token is None:
        if settings.required:
            raise ApiError("unauthorized", "send the player's token as Authorization: Bearer")
        return None
    try:
        return verify(token, settings)
    except TokenRejected as exc:
        log.info("player token refused", extra={"route": route, "reason": str(exc)})
        raise ApiError("unauthorized", "the player token is not valid (or has expired)") from None


def require_player(token_player: str | None, named_player: str | None) -> None:
    """A request scoped to one player may only act for that player (403 otherwise)."""
    if not may_act_for(token_player, named_player):
        raise ApiError("forbidden", "the player token is for another player")
