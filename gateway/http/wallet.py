"""POST /wallet/{provider}[/{path}]: the aggregators' wallet callbacks, answered their way.

No `X-API-Key` (the provider's signature is the authentication) and no CORS: browsers have
no business here. Every answer is the provider's own (Hub88's `RS_*` statuses, Slotegrator's
`error_code`), never a problem+json and never a 500: a callback the gateway cannot settle
gets the provider's retryable error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from aiohttp import web

from adapters.wallet import WalletAdapter, WalletOutcome, WalletRefused, WalletRequest
from gateway.http.body import read_body
from gateway.http.context import CATALOG, CTX, GATEWAY
from gateway.problems import ApiError
from gateway.runtime.gateway import Gateway
from gateway.wallet.service import WalletContext, settle
from policies.ports import StoreUnavailable

log = logging.getLogger("gateway.wallet")

MAX_BODY_BYTES = 64 * 1024
NONCE_PREFIX = "wallet:nonce:"


async def receive(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    ctx = request[CTX]
    rt = ctx["runtime"]
    name = request.match_info["provider"]
    path = "/" + request.match_info["path"] if request.match_info.get("path") else ""
    state = rt.providers.get(name)
    wallet: WalletAdapter | None = (
        getattr(state.adapter, "wallet", None) if state is not None else None
    )
    if wallet is None or bool(path) != wallet.uses_paths:
        raise ApiError("not_found", f"no wallet endpoint for '{name}' at this path")
    ctx["provider"] = name
    outcome: WalletOutcome
    parsed: WalletRequest | None = None
    echo: Mapping[str, str] = {}
    action = path or "?"
    try:
        body = await read_body(request, MAX_BODY_BYTES, rt.config.server.body_timeout_s)
        parsed = wallet.parse(path, request.headers, body, time.time())
        echo, action = parsed.echo, parsed.action
        outcome = await _settle(request, gw, name, wallet, parsed)
    except WalletRefused as refused:
        echo = refused.echo or echo
        outcome = WalletOutcome(refused.outcome)
        if refused.outcome == "invalid_signature":
            gw.metrics.wallet_signature_failures.labels(name).inc()
        log.warning(
            "wallet callback refused",
            extra={
                "provider": name,
                "outcome": refused.outcome,
                "reason": refused.reason,
                "request_id": ctx["request_id"],
            },
        )
    except ApiError as err:
        if err.status == 408:
            raise
        outcome = WalletOutcome("invalid_request")
    except Exception:
        log.exception("wallet callback failed", extra={"provider": name})
        outcome = WalletOutcome("unavailable")
    operations = [c.operation for c in parsed.calls] if parsed else ["unknown"]
    gw.metrics.wallet_done(name, operations[0], outcome.outcome)
    status, content_type, answer = wallet.answer(action, echo, outcome)
    return web.Response(status=status, body=answer, content_type=content_type)


async def _settle(
    request: web.Request, gw: Gateway, name: str, wallet: WalletAdapter, parsed: WalletRequest
) -> WalletOutcome:
    if parsed.nonce is not None:
        fresh = await _fresh_nonce(gw, name, parsed.nonce, 2 * wallet.window_s)
        if fresh is None:
            return WalletOutcome("unavailable")
        if not fresh:
            raise WalletRefused("invalid_signature", "X-Nonce was used before", dict(parsed.echo))
    if request[CTX]["runtime"].config.wallet is None:
        log.error("wallet callback with no wallet backend configured", extra={"provider": name})
        return WalletOutcome("unavailable")
    return await settle(_context(request, gw, name), parsed)


async def _fresh_nonce(gw: Gateway, provider: str, nonce: str, keep_s: float) -> bool | None:
    """True the first time `nonce` is seen (kept past the signature window), False after;
    None when the store that keeps them is unreachable: a replay cannot be told apart
    then, so the callback gets the provider's retryable error."""
    try:
        return await gw.store.set_if_absent(f"{NONCE_PREFIX}{provider}:{nonce}", b"1", keep_s)
    except StoreUnavailable:
        log.error(
            "wallet nonce not checked: the store is unreachable", extra={"provider": provider}
        )
        return None


def _context(request: web.Request, gw: Gateway, name: str) -> WalletContext:
    rt = request[CTX]["runtime"]
    catalog = request.app.get(CATALOG)

    def game_id(code: str | None) -> str | None:
        if code is None or catalog is None:
            return None
        for op in ("games.launch", "games.get", "games.list"):
            snapshot = catalog.view(rt, op) if op in rt.config.routes else None
            if snapshot is not None:
                found: str | None = snapshot.by_offer.get((name, code))
                return found
        return None

    assert rt.config.wallet is not None and gw.session is not None
    return WalletContext(name, rt.config.wallet, gw.ledger, gw.session, gw.metrics, game_id)


def add_routes(app: web.Application) -> None:
    """Register the wallet routes: after CORS is set up, so they are not under it."""
    app.router.add_post("/wallet/{provider}", receive, name="wallet.callback")
    app.router.add_post("/wallet/{provider}/{path:.+}", receive, name="wallet.callback_path")
