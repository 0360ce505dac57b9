"""CORS for browser frontends, driven by the live config so a hot reload changes the policy.

aiohttp-cors freezes the options it is given at setup, but the gateway swaps its whole config
on reload. So its routing and header logic is kept (preflight checks, the response hook that
adds the actual-request headers) and only the lookup of options is replaced: a router adapter
builds them per request from the config of the runtime the request started with
(`request[CTX]["runtime"]`), or from the gateway's current runtime when that is not set.

Behaviour:
- Every method of every route is registered on its resource, and each resource gets the
  library's OPTIONS route. A catch-all (`*`) route would make the library raise, so setup
  refuses one with a clear message instead.
- No `cors` block: no CORS header on any response; OPTIONS gets a 405 problem with `Allow`.
- An OPTIONS that is not a preflight (no `Origin` or no `Access-Control-Request-Method`)
  gets the same 405 rather than the library's bare 403.
- A refused preflight (origin, method or header not allowed) is a 403 problem without any
  `Access-Control-*` header, so the browser blocks the request.
- An actual request from an allowed origin gets `Access-Control-Allow-Origin` (the origin
  itself), `Access-Control-Expose-Headers` and, when configured, `...-Allow-Credentials`;
  error responses too, so frontends can read the problem body. Other origins get none.
- `*` in `allow_origins` allows any origin, never with credentials.
- Preflights carry no API key: the request middlewares use `is_preflight` to let them
  through without authentication or rate limits.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp_cors
from aiohttp import hdrs, web
from aiohttp_cors.urldispatcher_router_adapter import ResourcesUrlDispatcherRouterAdapter

from gateway.config.model import CorsConfig
from gateway.http.context import CTX, GATEWAY
from gateway.problems import ApiError

log = logging.getLogger("gateway.cors")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Policy = Mapping[str, aiohttp_cors.ResourceOptions]

ANY_ORIGIN = "*"
# What a preflight answer depends on besides the URL: caches must key on all of it.
_PREFLIGHT_VARY = (
    hdrs.ORIGIN,
    hdrs.ACCESS_CONTROL_REQUEST_METHOD,
    hdrs.ACCESS_CONTROL_REQUEST_HEADERS,
)


def live_cors(request: web.Request) -> CorsConfig | None:
    """The `cors` block that governs this request (None: CORS is off)."""
    ctx = request.get(CTX)
    runtime = ctx["runtime"] if ctx is not None else request.app[GATEWAY].runtime
    cors: CorsConfig | None = runtime.config.cors
    return cors


def _normalize_origin(origin: str) -> str:
    # Browsers send the serialized origin: lower-case scheme and host, no trailing slash.
    # Config entries written as "https://Casino.example/" must still match it.
    return origin if origin == ANY_ORIGIN else origin.strip().rstrip("/").lower()


def _header_list(values: tuple[str, ...]) -> str | tuple[str, ...]:
    # aiohttp-cors takes the string "*" (not a list holding it) as "any header".
    return "*" if "*" in values else values


@functools.lru_cache(maxsize=8)
def policy(cors: CorsConfig) -> Policy:
    """aiohttp-cors options per origin. Cached per config object: a reload makes a new one."""

    def options(credentials: bool) -> aiohttp_cors.ResourceOptions:
        return aiohttp_cors.ResourceOptions(
            allow_credentials=credentials,
            expose_headers=_header_list(cors.expose_headers),
            allow_headers=_header_list(cors.allow_headers),
            max_age=cors.max_age_s,
            allow_methods=cors.allow_methods,
        )

    named = options(cors.allow_credentials)
    out: dict[str, aiohttp_cors.ResourceOptions] = {
        _normalize_origin(origin): named for origin in cors.allow_origins if origin != ANY_ORIGIN
    }
    if ANY_ORIGIN in cors.allow_origins:
        # Credentials for any origin would let every site act as the logged-in user.
        out[ANY_ORIGIN] = options(False)
    return out


def _resource(request: web.Request) -> web.AbstractResource | None:
    return request.match_info.route.resource


def _method_allowed(cors: CorsConfig, method: str) -> bool:
    # HEAD is what a browser may send in place of GET; it follows GET's setting.
    allowed = cors.allow_methods
    return method in allowed or (method == hdrs.METH_HEAD and hdrs.METH_GET in allowed)


class LiveCorsRouterAdapter(ResourcesUrlDispatcherRouterAdapter):
    """The library's adapter for resource routes, with options read per request."""

    def __init__(self, router: web.UrlDispatcher) -> None:
        super().__init__(router, {})
        # Methods served per resource: preflights for anything else are refused, and the
        # 405 answer to a plain OPTIONS lists them in `Allow`.
        self.methods: dict[web.AbstractResource | None, set[str]] = {}
        self._wrapped: dict[Handler, Handler] = {}

    def set_config_for_routing_entity(self, routing_entity: Any, config: Any) -> None:
        super().set_config_for_routing_entity(routing_entity, config)
        if isinstance(routing_entity, web.ResourceRoute) and routing_entity.resource is not None:
            self.methods.setdefault(routing_entity.resource, set()).add(routing_entity.method)

    def add_preflight_handler(
        self, routing_entity: Any, handler: Handler, webview: bool = False
    ) -> None:
        # `webview` only keeps the abstract signature: class-based views are not used here.
        # One wrapper per library handler: the base class recurses from route to resource
        # and compares handlers, so wrapping again each call would look like a conflict.
        wrapped = self._wrapped.get(handler)
        if wrapped is None:
            wrapped = self._wrapped[handler] = self._guard_preflight(handler)
        super().add_preflight_handler(routing_entity, wrapped)

    def _allow(self, request: web.Request) -> str:
        methods = self.methods.get(_resource(request), set())
        return ", ".join(sorted(methods))

    def _guard_preflight(self, handler: Handler) -> Handler:
        async def preflight(request: web.Request) -> web.StreamResponse:
            cors = live_cors(request)
            is_preflight = (
                hdrs.ORIGIN in request.headers
                and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
            )
            if cors is None or not is_preflight:
                detail = (
                    "CORS is not enabled on this gateway"
                    if cors is None
                    else "OPTIONS is only answered as a CORS preflight "
                    "(with Origin and Access-Control-Request-Method)"
                )
                raise ApiError(
                    "method_not_allowed", detail, headers={hdrs.ALLOW: self._allow(request)}
                )
            try:
                response = await handler(request)
            except web.HTTPForbidden as exc:
                # Keep the library's reason (which origin, method or header) in the problem.
                raise ApiError(
                    "forbidden", exc.text or "CORS preflight refused"
                ) from None
            # The library echoes only the requested method; listing every allowed one lets a
            # browser reuse one cached preflight for GET and POST alike.
            served = self.methods.get(_resource(request), set())
            allowed = [m for m in cors.allow_methods if m in served]
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = ", ".join(allowed)
            return response

        return preflight

    async def get_preflight_request_config(
        self, preflight_request: web.Request, origin: str, requested_method: str
    ) -> Policy:
        """Options for a preflight; KeyError (the library's 403) for a method the route does
        not serve or the policy does not allow."""
        cors = live_cors(preflight_request)
        served = self.methods.get(_resource(preflight_request), set())
        if cors is None or requested_method not in served:
            raise KeyError(requested_method)
        if not _method_allowed(cors, requested_method):
            raise KeyError(requested_method)
        return policy(cors)

    def get_non_preflight_request_config(self, request: web.Request) -> Policy:
        cors = live_cors(request)
        if cors is None or not _method_allowed(cors, request.method):
            return {}
        return policy(cors)


ADAPTER: web.AppKey[LiveCorsRouterAdapter] = web.AppKey("cors_adapter", LiveCorsRouterAdapter)


def _add_vary(response: web.StreamResponse, names: tuple[str, ...]) -> None:
    present = [v.strip().lower() for v in response.headers.get(hdrs.VARY, "").split(",")]
    missing = [n for n in names if n.lower() not in present]
    if missing:
        current = response.headers.get(hdrs.VARY)
        response.headers[hdrs.VARY] = ", ".join([*([current] if current else []), *missing])


def is_preflight(request: web.Request) -> bool:
    """Is this request answered by the CORS OPTIONS route (a preflight, or the 405 for a
    plain OPTIONS)? Such requests carry no API key, so authentication and rate limits
    must let them through; the route's own name is the resource's ("payments.create")."""
    adapter = request.app.get(ADAPTER)
    return (
        adapter is not None
        and request.method == hdrs.METH_OPTIONS
        and request.match_info.route.resource in adapter.methods
    )


def _only_with_origin(hook: Any) -> Any:
    """The library looks up route and config before it checks for an Origin header; most
    requests (server to server, health checks, load tests) have none."""

    async def hook_with_origin(request: web.Request, response: web.StreamResponse) -> None:
        if hdrs.ORIGIN in request.headers:
            await hook(request, response)

    return hook_with_origin


def setup(app: web.Application) -> None:
    """Put every route registered so far under the config's `cors` block, live."""
    adapter = app[ADAPTER] = LiveCorsRouterAdapter(app.router)
    # Creating the library's config registers its response hook (actual-request headers).
    hooks_before = len(app.on_response_prepare)
    cors = aiohttp_cors.CorsConfig(app, router_adapter=adapter)
    for i in range(hooks_before, len(app.on_response_prepare)):
        app.on_response_prepare[i] = _only_with_origin(app.on_response_prepare[i])

    for resource in list(app.router.resources()):
        if not isinstance(resource, web.Resource | web.StaticResource):
            # Sub-applications and the like: the library's adapter cannot serve them.
            log.warning("no CORS for %r: not a plain resource", resource)
            continue
        for route in list(resource):
            if route.method == hdrs.METH_ANY:
                raise ValueError(
                    f"CORS needs each method registered on its own: {resource!r} has a "
                    "catch-all '*' route"
                )
            cors.add(route, {})

    async def vary(request: web.Request, response: web.StreamResponse) -> None:
        # ACAO echoes the origin, so an answer to one origin must not be reused for another.
        route = request.match_info.route
        if route.resource not in adapter.methods or live_cors(request) is None:
            return
        preflight = route.method == hdrs.METH_OPTIONS
        _add_vary(response, _PREFLIGHT_VARY if preflight else (hdrs.ORIGIN,))

    app.on_response_prepare.append(vary)
