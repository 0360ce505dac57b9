"""Build the aiohttp application: routes, the middleware, and the gateway's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.config.model import Config, LedgerSettings
from gateway.games.sync import CatalogSync
from gateway.http import admin, admin_events, api, cors, events_stream, refunds, webhooks
from gateway.http import wallet as wallet_routes
from gateway.http.context import CATALOG, GATEWAY
from gateway.http.middleware import context_middleware
from gateway.runtime.gateway import Gateway
from gateway.runtime.health_checker import HealthChecker
from gateway.runtime.reload import ConfigWatcher
from gateway.upstream import transport

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("gateway")


async def metrics_handler(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.Response(
        body=gw.metrics.render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


def create_app(
    config: Config,
    *,
    gateway: Gateway | None = None,
    config_path: str | None = None,
    ledger: LedgerSettings | None = None,
    span_exporter: SpanExporter | None = None,
) -> web.Application:
    """The app; `span_exporter` receives the spans instead of OTLP (tests, embedding)."""
    app = web.Application(middlewares=[context_middleware])
    gw = gateway or Gateway(config, ledger=ledger, span_exporter=span_exporter)
    gw.config_path = config_path
    app[GATEWAY] = gw
    app[CATALOG] = CatalogSync(gw)
    api.add_routes(app)
    refunds.add_routes(app)
    app.router.add_get("/metrics", metrics_handler, name="metrics")
    admin.add_routes(app)
    admin_events.add_routes(app)
    webhooks.add_routes(app)
    events_stream.setup(app)
    cors.setup(app)  # it wraps every route registered above
    wallet_routes.add_routes(app)  # after CORS: aggregators call these, never browsers
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    gw = app[GATEWAY]
    gw.session = transport.make_session()
    await gw.start()
    catalog = app[CATALOG]
    catalog.start()  # every aggregator's first fetch begins now, before any request
    checker = HealthChecker(gw)
    checker.start()
    gw.health_checker = checker
    watcher = None
    if gw.config_path:
        watcher = ConfigWatcher(gw, gw.config_path, gw.reload_interval_s)
        watcher.start()
    gw.watcher = watcher
    try:
        yield
    finally:
        if watcher is not None:
            await watcher.stop()
        await checker.stop()
        await catalog.close()
        await gw.close()
        await gw.session.close()
