"""Serving one process: listen, handle signals (SIGINT/SIGTERM stop, SIGHUP reloads), stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from gateway.config.model import Config, LedgerSettings

log = logging.getLogger("gateway")


def maybe_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    config_path: str | None = None,
    reuse_port: bool = False,
    processes: int = 1,
    ledger: LedgerSettings | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    from gateway.http.app import create_app
    from gateway.http.context import GATEWAY

    app = create_app(config, config_path=config_path, ledger=ledger)
    app[GATEWAY].processes = processes
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    site = web.TCPSite(
        runner,
        host or config.listen_host,
        port if port is not None else config.listen_port,
        reuse_port=reuse_port or None,
        backlog=1024,
    )
    await site.start()
    log.info("listening", extra={"address": site.name, "config_hash": config.hash[:16]})
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    gw = app[GATEWAY]
    pending: set[asyncio.Task[object]] = set()

    def on_sighup() -> None:
        if gw.watcher is not None:
            task = asyncio.ensure_future(gw.watcher.reload("sighup"))
            pending.add(task)
            task.add_done_callback(pending.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()
