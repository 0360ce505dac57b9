"""The HTTP connection handler with the gateway's limits on slow and greedy clients.

aiohttp's handler bounds an idle keep-alive connection (`keepalive_timeout`) but not a
client that sends a request one byte at a time. This one adds:

- a header timeout: from a request's first byte (or the connection's opening) to the end
  of its headers; a client trickling its headers is disconnected when it runs out;
- a cap on open connections: past `max_connections`, a new connection is closed at once;
- malformed request lines and headers answered as problem+json (400) and logged at INFO,
  without a traceback: they are the client's fault, not the gateway's.

The body timeout is applied where a body is read (`gateway.http.body`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.config.model import ServerSettings
from gateway.http.middleware import new_request_id, problem_response
from gateway.problems import ApiError

log = logging.getLogger("gateway.http")


class OpenConnections:
    """How many connections are open now; counted as they open and close (aiohttp's own
    list keeps a closed connection until its task has ended)."""

    def __init__(self) -> None:
        self.count = 0


class GuardedRequestHandler(RequestHandler):
    def __init__(
        self,
        manager: web.Server,
        *,
        settings: ServerSettings,
        open_connections: OpenConnections,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._settings = settings
        self._open = open_connections
        self._counted = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._count_at_arm = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._open.count += 1
        self._counted = True
        if self._open.count > self._settings.max_connections:
            log.warning(
                "connection refused: too many open connections",
                extra={"max_connections": self._settings.max_connections},
            )
            self.force_close()
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._request_count != self._count_at_arm:
            self._disarm()  # the headers are complete
        waiting = self._waiter is not None and not self._waiter.done()
        if self._header_timer is None and waiting and data:
            self._arm()  # the first bytes of the next request on a kept-alive connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        if self._counted:
            self._counted = False
            self._open.count -= 1
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._count_at_arm = self._request_count
        self._header_timer = self._loop.call_later(
            self._settings.header_timeout_s, self._headers_too_slow
        )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._request_count != self._count_at_arm:
            return
        log.info(
            "connection closed: request headers not complete in time",
            extra={"header_timeout_s": self._settings.header_timeout_s},
        )
        self.force_close()
        if self.transport is not None:
            self.transport.close()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        log.info(
            "malformed request refused",
            extra={"status": status, "reason": message or type(exc).__name__},
        )
        problem = ApiError(
            "invalid_request",
            "the request line or headers are malformed",
            status=status if status in (400, 413, 431) else 400,
        )
        response = problem_response(problem, new_request_id())
        response.force_close()  # what follows on this connection cannot be trusted
        return response


class GuardedSite(web.TCPSite):
    """A TCP site whose connections use `GuardedRequestHandler`."""

    __slots__ = ("_settings",)

    def __init__(
        self, runner: web.AppRunner, *args: Any, settings: ServerSettings, **kwargs: Any
    ) -> None:
        super().__init__(runner, *args, **kwargs)
        self._settings = settings

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site, as TCPSite.start does first
        server = self._runner.server
        assert server is not None, "the runner is set up first"
        loop = asyncio.get_running_loop()
        settings = self._settings
        # The arguments aiohttp's own factory passes: the runner's keyword arguments.
        handler_kwargs = dict(server._kwargs)
        open_connections = OpenConnections()

        def factory() -> GuardedRequestHandler:
            return GuardedRequestHandler(
                server,
                loop=loop,
                settings=settings,
                open_connections=open_connections,
                **handler_kwargs,
            )

        self._server = await loop.create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
