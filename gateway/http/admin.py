"""Admin API under /admin/: read the running config and provider states, and act on them.

Keys are the config's `clients`, like frontend keys, but what a key may do here comes from
its roles: `viewer` reads, `operator` also acts (drain, enable, reload, flush), `admin` may do
everything. The policy step (`gateway.http.middleware.apply_policies`) skips routes named
"admin*", so authentication is done here, with the same constant-time key lookup. A gateway
without clients has no admin key, so its admin API refuses every request.

Every action is written to the "gateway.audit" log at info, naming the client behind it;
reads are logged there at debug, and refused attempts at warning.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.config.model import ClientConfig
from gateway.http.context import CATALOG, CTX, GATEWAY, json_response
from gateway.ledger.database import LedgerUnavailable
from gateway.problems import ApiError
from gateway.runtime.gateway import Gateway, Runtime
from gateway.upstream.providers import ProviderState

audit = logging.getLogger("gateway.audit")

# Each role includes the ones below it. `client` (a frontend key) is not on the ladder.
ROLE_LEVELS = {"viewer": 1, "operator": 2, "admin": 3}

# The cache key prefix gateway.http.api gives payments.get answers. Games routes read the
# catalog snapshot, which is refreshed (POST /admin/catalog/refresh), never flushed.
PAYMENT_PREFIX = "payment:"

AdminHandler = Callable[[web.Request, ClientConfig], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---- authentication and audit -----------------------------------------------------------


def _level(client: ClientConfig) -> int:
    return max((ROLE_LEVELS.get(role, 0) for role in client.roles), default=0)


def _authorize(request: web.Request, role: str) -> ClientConfig:
    """The client behind the request's key, if its roles reach `role`; else 401 or 403."""
    ctx = request[CTX]
    client: ClientConfig | None = ctx["runtime"].client_for_key(request.headers.get("X-API-Key"))
    if client is None:
        if not ctx["runtime"].clients:
            # Say why no key can work, or an operator chases a typo that is not there.
            raise ApiError("unauthorized", "no API keys are configured: the admin API is closed")
        raise ApiError("unauthorized", "send a valid X-API-Key header")
    ctx["client_id"] = client.id
    if _level(client) < ROLE_LEVELS[role]:
        audit.warning(
            "%s refused %s %s",
            client.id,
            request.method,
            request.path,
            extra=_audit_fields(request, client, ctx["route"], request.path),
        )
        raise ApiError("forbidden", f"this needs the {role} role, which the key does not have")
    return client


def requires(role: str) -> Callable[[AdminHandler], Handler]:
    """Authorize, call the handler with the client, and keep the answer out of caches."""

    def wrap(handler: AdminHandler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            client = _authorize(request, role)
            response = await handler(request, client)
            # Config and provider states are for the key holder only, and always current.
            response.headers["Cache-Control"] = "no-store"
            return response

        guarded.required_role = role  # type: ignore[attr-defined]  # read by the spec test
        return guarded

    return wrap


def _audit_fields(
    request: web.Request, client: ClientConfig, action: str, target: str, **more: Any
) -> dict[str, Any]:
    return {
        "actor": client.id,
        "action": action,
        "target": target,
        "request_id": request[CTX]["request_id"],
        **more,
    }


def audit_action(
    request: web.Request,
    client: ClientConfig,
    action: str,
    target: str,
    *,
    level: int = logging.INFO,
    **more: Any,
) -> None:
    fields = _audit_fields(request, client, action, target, **more)
    audit.log(level, "%s %s %s", client.id, action, target, extra=fields)


def _state(request: web.Request) -> tuple[Gateway, Runtime]:
    return request.app[GATEWAY], request[CTX]["runtime"]


# ---- config ---------------------------------------------------------------------------


@requires("viewer")
async def get_config(request: web.Request, client: ClientConfig) -> web.Response:
    _, rt = _state(request)
    audit_action(request, client, "config.read", "config", level=logging.DEBUG)
    return json_response(
        {"hash": rt.config.hash, "source": rt.config.source, "config": rt.config.redacted}
    )


@requires("viewer")
async def get_config_status(request: web.Request, client: ClientConfig) -> web.Response:
    gw, rt = _state(request)
    audit_action(request, client, "config.status", "config", level=logging.DEBUG)
    return json_response(
        {
            "hash": rt.config.hash,
            "loaded_at": rt.loaded_at,
            "source": rt.config.source,
            "file": gw.config_path,
            "watching": gw.watcher is not None,
            "file_matches_running": (
                None if gw.watcher is None else gw.watcher.file_hash == rt.config.hash
            ),
            "last_reload": gw.last_reload,
        }
    )


@requires("operator")
async def reload_config(request: web.Request, client: ClientConfig) -> web.Response:
    gw, _ = _state(request)
    if gw.watcher is None:
        raise ApiError(
            "invalid_request",
            "the gateway was started without a config file: there is nothing to reload",
            status=409,
        )
    result = await gw.watcher.reload("admin", actor=client.id)
    audit_action(
        request,
        client,
        "config.reload",
        str(gw.watcher.path),
        result=result.result,
        hash=result.hash,
    )
    if result.result == "failure":
        raise ApiError(
            "invalid_request",
            "the config file was refused; the running config keeps serving",
            status=422,
            extra={"errors": list(result.errors), "hash": result.hash},
        )
    return json_response(result.to_dict())


# ---- providers ------------------------------------------------------------------------


def _provider_status(gw: Gateway, state: ProviderState) -> dict[str, Any]:
    return {
        **state.status(),
        "drained_by": state.drained_by,
        "cooldown_s": round(gw.cooldowns.blocked_for(state.name), 3),
    }


@requires("viewer")
async def list_providers(request: web.Request, client: ClientConfig) -> web.Response:
    gw, rt = _state(request)
    audit_action(request, client, "providers.read", "providers", level=logging.DEBUG)
    return json_response(
        {"providers": {name: _provider_status(gw, s) for name, s in rt.providers.items()}}
    )


async def _share_drain(gw: Gateway, name: str, drained: bool, actor: str) -> None:
    """Tell other replicas, when the gateway has a hook for it (sync or async).

    The actor goes along so that other replicas show who drained the provider too.
    """
    hook = getattr(gw, "on_drain_change", None)
    if hook is None:
        return
    try:
        outcome = hook(name, drained, actor=actor)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception as exc:
        audit.exception("sharing the drain state of %s failed", name)
        # The change stands on this replica: undoing it would act against the operator.
        state = "drained" if drained else "enabled"
        raise ApiError(
            "unavailable",
            f"{name} is {state} on this replica, but sharing the change with the others failed",
        ) from exc


async def _set_drained(request: web.Request, client: ClientConfig, drained: bool) -> web.Response:
    gw, _ = _state(request)
    name = request.match_info["name"]
    # The registry's state, not the request's runtime: a reload that swapped the state
    # object since the request began must not make this change land on a discarded copy.
    state = gw.registry.get(name)
    if state is None:
        raise ApiError("not_found", f"no provider '{name}' in the running config")
    state.drained = drained
    state.drained_by = client.id if drained else None
    gw.metrics.provider_drained.labels(name).set(1 if drained else 0)
    audit_action(request, client, "provider.drain" if drained else "provider.enable", name)
    await _share_drain(gw, name, drained, client.id)
    return json_response(_provider_status(gw, state))


@requires("operator")
async def drain_provider(request: web.Request, client: ClientConfig) -> web.Response:
    return await _set_drained(request, client, True)


@requires("operator")
async def enable_provider(request: web.Request, client: ClientConfig) -> web.Response:
    return await _set_drained(request, client, False)


# ---- cache ----------------------------------------------------------------------------


def _cache_prefixes(rt: Runtime, route: str) -> list[str]:
    conf = rt.config.routes.get(route)
    if conf is None:
        known = ", ".join(sorted(rt.config.routes))
        raise ApiError("not_found", f"no route '{route}' in the running config ({known})")
    if route.startswith("games."):
        raise ApiError(
            "conflict",
            f"route '{route}' reads the catalog snapshot, which is refreshed rather than "
            "flushed: POST /admin/catalog/refresh",
        )
    if route == "payments.get":
        return [PAYMENT_PREFIX]
    raise ApiError("conflict", f"route '{route}' keeps nothing in the cache")


async def _invalidate(gw: Gateway, prefix: str | None) -> int:
    # The in-process cache answers at once; a cache shared across replicas answers
    # asynchronously. Either may back the gateway.
    dropped: Any = gw.cache.invalidate(prefix=prefix)
    if inspect.isawaitable(dropped):
        dropped = await dropped
    return int(dropped)


@requires("operator")
async def flush_cache(request: web.Request, client: ClientConfig) -> web.Response:
    gw, rt = _state(request)
    unknown = set(request.query) - {"route"}
    if unknown:
        raise ApiError(
            "invalid_request", f"unknown query parameter(s): {', '.join(sorted(unknown))}"
        )
    routes = request.query.getall("route", [])
    # Check every route before flushing any, so a bad one leaves the cache as it was.
    prefixes = [p for route in routes for p in _cache_prefixes(rt, route)]
    if routes:
        flushed = 0
        for prefix in dict.fromkeys(prefixes):
            flushed += await _invalidate(gw, prefix)
    else:
        flushed = await _invalidate(gw, None)
    audit_action(request, client, "cache.flush", ",".join(routes) or "*", flushed=flushed)
    return json_response({"flushed": flushed})


# ---- catalog --------------------------------------------------------------------------


@requires("viewer")
async def get_catalog(request: web.Request, client: ClientConfig) -> web.Response:
    audit_action(request, client, "catalog.read", "catalog", level=logging.DEBUG)
    return json_response(request.app[CATALOG].status())


@requires("operator")
async def refresh_catalog(request: web.Request, client: ClientConfig) -> web.Response:
    """Fetch now (or adopt a fetch another replica started since) and answer when done."""
    sync = request.app[CATALOG]
    unknown = set(request.query) - {"provider"}
    if unknown:
        raise ApiError(
            "invalid_request", f"unknown query parameter(s): {', '.join(sorted(unknown))}"
        )
    names = request.query.getall("provider", []) or None
    missing = sorted(set(names or ()) - set(sync.trackers))
    if missing:
        known = ", ".join(sorted(sync.trackers))
        raise ApiError(
            "not_found", f"no catalog for {', '.join(missing)} (catalogs kept: {known})"
        )
    outcomes = await sync.refresh(names)
    audit_action(
        request, client, "catalog.refresh", ",".join(names or ["*"]), outcomes=outcomes
    )
    return json_response({"refreshed": outcomes, **sync.status()})


TRANSACTION_FILTERS = ("player_id", "round_id", "provider")
MAX_TRANSACTIONS = 500


@requires("viewer")
async def list_transactions(request: web.Request, client: ClientConfig) -> web.Response:
    """`GET /admin/wallet/transactions?player_id=&round_id=&provider=&limit=`: the newest
    wallet transactions matching every filter given, for support and disputes."""
    audit_action(request, client, "wallet.transactions.read", "wallet", level=logging.DEBUG)
    unknown = set(request.query) - {*TRANSACTION_FILTERS, "limit"}
    if unknown:
        raise ApiError(
            "invalid_request", f"unknown query parameter(s): {', '.join(sorted(unknown))}"
        )
    filters = {name: request.query.get(name) for name in TRANSACTION_FILTERS}
    if any(v is not None and not 1 <= len(v) <= 256 for v in filters.values()):
        raise ApiError("invalid_request", "a filter must be 1 to 256 characters")
    limit_text = request.query.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_TRANSACTIONS:
        raise ApiError("invalid_request", f"limit must be an integer from 1 to {MAX_TRANSACTIONS}")
    try:
        rows = await request.app[GATEWAY].ledger.wallet_transactions(
            limit=int(limit_text), **filters
        )
    except LedgerUnavailable:
        raise ApiError(
            "unavailable", "the ledger is unreachable; try again", headers={"Retry-After": "5"}
        ) from None
    return json_response({"transactions": rows})


def add_routes(app: web.Application) -> None:
    """Register the /admin/ routes, one method per resource, each named "admin.*"."""
    router = app.router
    router.add_get("/admin/config", get_config, name="admin.config")
    router.add_get("/admin/config/status", get_config_status, name="admin.config.status")
    router.add_post("/admin/reload", reload_config, name="admin.reload")
    router.add_get("/admin/providers", list_providers, name="admin.providers")
    router.add_post("/admin/providers/{name}/drain", drain_provider, name="admin.providers.drain")
    router.add_post(
        "/admin/providers/{name}/enable", enable_provider, name="admin.providers.enable"
    )
    router.add_delete("/admin/cache", flush_cache, name="admin.cache.flush")
    router.add_get("/admin/catalog", get_catalog, name="admin.catalog")
    router.add_post("/admin/catalog/refresh", refresh_catalog, name="admin.catalog.refresh")
    router.add_get(
        "/admin/wallet/transactions", list_transactions, name="admin.wallet.transactions"
    )
