"""App and request keys shared by the server modules, and the JSON response helper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from gateway.games.sync import CatalogSync
    from gateway.runtime.gateway import Gateway

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
CATALOG: web.AppKey[CatalogSync] = web.AppKey("catalog")
# Per-request dict: runtime, request_id, request_id_chosen, client_id, route, provider, cache,
# failover, player_id, roles, client_ip, trace_id.
CTX: web.RequestKey[dict[str, Any]] = web.RequestKey("gw_ctx", dict)


def json_response(
    data: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type=content_type
    )
