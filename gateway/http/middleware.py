"""The one middleware: request id, trace context, authentication, inbound limits, problem+json,
metrics, log.

Everything a request goes through before and after its handler, in one wrapper: aiohttp
wraps the handler once per middleware on every request.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.http import cors
from gateway.http.client_ip import client_ip
from gateway.http.context import CTX, GATEWAY, json_response
from gateway.http.players import player_for
from gateway.obs.logs import access_log
from gateway.problems import ApiError
from policies.ratelimit import Decision

log = logging.getLogger("gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROBLEM = "application/problem+json"
_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
UNAUTHENTICATED = frozenset({"healthz", "readyz", "openapi", "metrics", "cors.preflight"})


# A random per-process prefix and a counter: unique across processes and restarts without a
# random-number syscall on every request.
_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    # The "g" keeps digit runs short of 13: the log filter would take them for card numbers.
    return f"{_ID_PREFIX}g{next(_ID_COUNTER):010x}"


def _request_id(request: web.Request) -> tuple[str, bool]:
    """The request id, and whether the client chose it (only then may it need masking)."""
    given = request.headers.get("X-Request-ID", "")
    if 0 < len(given) <= 128 and all(c in _REQUEST_ID_OK for c in given):
        return given, True
    return new_request_id(), False


def _client_ip(request: web.Request, proxies: tuple[Any, ...]) -> str | None:
    if not proxies:  # the common case: no header to read
        return request.remote
    return client_ip(request.remote, request.headers.getall("X-Forwarded-For", ()), proxies)


def _allowed(allow: str) -> str:
    """aiohttp's Allow minus OPTIONS: OPTIONS is answered only as a CORS preflight."""
    methods = [m.strip() for m in allow.split(",") if m.strip() and m.strip() != "OPTIONS"]
    return ", ".join(methods)


def problem_response(err: ApiError, request_id: str) -> web.Response:
    headers = {**err.headers, "X-Request-ID": request_id}
    return json_response(
        err.problem(request_id), status=err.status, headers=headers, content_type=PROBLEM
    )


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, trace context, problem+json for every error, metrics and one log line per
    request."""
    started = time.perf_counter()
    gw = request.app[GATEWAY]
    request_id, chosen = _request_id(request)
    # A CORS preflight's route is named after its resource ("payments.create"): label it apart.
    route = "cors.preflight" if cors.is_preflight(request) else request.match_info.route.name
    route = route or "other"
    trace = gw.tracing.begin(request.headers, request.method, route)
    ctx = request[CTX] = {
        "runtime": gw.runtime,
        "request_id": request_id,
        "request_id_chosen": chosen,
        "client_id": "anonymous",
        "route": route,
        "provider": None,
        "cache": None,
        "failover": False,
        "player_id": None,  # the player the request's player token proves, if any
        "roles": frozenset(),  # the roles of the request's client key
        "client_ip": _client_ip(request, gw.runtime.config.trusted_proxies),
        "trace_id": trace.trace_id,
    }
    status = None
    try:
        try:
            response = await apply_policies(request, handler)
        except ApiError as err:
            response = problem_response(err, request_id)
            if err.status == 408:
                response.force_close()  # the rest of the body would never arrive in time
        except web.HTTPException as exc:
            code = {
                404: "not_found",
                405: "method_not_allowed",
                413: "payload_too_large",
                415: "unsupported_media_type",
            }.get(exc.status, "invalid_request")
            allow = {"Allow": _allowed(exc.headers["Allow"])} if "Allow" in exc.headers else {}
            response = problem_response(
                ApiError(code, exc.reason or code, status=exc.status, headers=allow), request_id
            )
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id, "route": route})
            response = problem_response(
                ApiError("internal_error", "the gateway failed"), request_id
            )
        status = response.status
    finally:
        # Even when cancelled: the next request on this connection runs in the same task.
        gw.tracing.end(trace, status)
    response.headers["X-Request-ID"] = request_id
    elapsed = time.perf_counter() - started
    if route not in ("metrics",):
        gw.metrics.request_done(route, response.status, ctx["client_id"], elapsed)
    access_log(request, response.status, elapsed, ctx)
    return response


async def apply_policies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate the client, then apply the client's and the route's inbound limits.

    Called by `context_middleware` rather than being a middleware of its own: aiohttp wraps
    the handler once per middleware on every request.
    """
    ctx = request[CTX]
    route = ctx["route"]
    # Admin routes check roles themselves; providers sign webhooks and wallet callbacks
    # instead of sending keys.
    if (
        route in UNAUTHENTICATED
        or route.startswith(("admin", "webhooks", "wallet"))
        or route == "other"
    ):
        return await handler(request)
    gw = request.app[GATEWAY]
    rt = ctx["runtime"]
    client = None
    if rt.clients:
        client = rt.client_for_key(request.headers.get("X-API-Key"))
        if client is None:
            raise ApiError("unauthorized", "send a valid X-API-Key header")
        ctx["client_id"] = client.id
        ctx["roles"] = client.roles
    ctx["player_id"] = player_for(request, route, rt.config.player_tokens)
    decisions: list[Decision] = []
    route_conf = rt.config.routes.get(route)
    if client is not None and client.rate_limit:
        decision = await gw.hit_limit(client.rate_limit, "client", client.id)
        if decision is not None:
            decisions.append(decision)
    if route_conf is not None and route_conf.rate_limit is not None:
        limit = route_conf.rate_limit
        who = {
            "client": ctx["client_id"] if client else (ctx["client_ip"] or "-"),
            "ip": ctx["client_ip"] or "-",
            "route": "all",
        }[limit.per]
        decision = await gw.hit_limit(limit.limit, "route", route, limit.per, who)
        if decision is not None:
            decisions.append(decision)
    headers = decisions[-1].headers() if decisions else {}
    refused = next((d for d in decisions if not d.allowed), None)
    if refused is not None:
        scope = (
            "client"
            if decisions and refused is decisions[0] and client and client.rate_limit
            else "route"
        )
        gw.metrics.rate_limited.labels(route, scope).inc()
        raise ApiError(
            "rate_limited",
            "too many requests; retry after the given seconds",
            headers={**headers, **refused.headers()},
            extra={"retry_after_s": refused.retry_after_s},
        )
    try:
        response = await handler(request)
    except ApiError as err:
        # Every answer of a limited route says where the client stands, errors included.
        err.headers = {**headers, **err.headers}
        raise
    response.headers.update(headers)
    return response
