"""Serving one process: listen, handle signals (SIGINT/SIGTERM stop, SIGHUP reloads), stop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket

from aiohttp import web

from gateway.config.model import Config, LedgerSettings

log = logging.getLogger("gateway")


class ListenError(Exception):
    """An address that cannot be listened on, said in one line (what the command prints)."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.in_use = error.errno == errno.EADDRINUSE
        self.reason = (
            "the address is already in use" if self.in_use else (error.strerror or str(error))
        )
        super().__init__(f"cannot listen on {self.address}: {self.reason}")


def check_can_listen(host: str, port: int) -> None:
    """Raise ListenError if (host, port) cannot be listened on, before any start-up work
    (a ledger migration, say) is done for nothing."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ListenError(host, port, exc) from None
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as sock:
            # As the server binds: a previous run's connections in TIME_WAIT are no obstacle.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise ListenError(host, port, exc) from None


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
    from gateway.http.protocol import GuardedSite

    app = create_app(config, config_path=config_path, ledger=ledger)
    app[GATEWAY].processes = processes
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=10,
        keepalive_timeout=config.server.keepalive_timeout_s,
        # After answering a request whose body was not read to the end (a 401, a 408), read
        # and drop the rest for this long before closing, so the client sees the answer
        # rather than a reset; short, or a slow client would hold the connection on.
        lingering_time=1.0,
    )
    await runner.setup()
    host = host or config.listen_host
    port = port if port is not None else config.listen_port
    # The gateway's own connection handler: header timeout, connection cap, problem+json
    # for malformed requests (`gateway.http.protocol`).
    site = GuardedSite(
        runner, host, port, reuse_port=reuse_port or None, backlog=1024, settings=config.server
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(host, port, exc) from None
    log.info("listening", extra={"address": site.name, "config_hash": config.hash})
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
