"""A bare aiohttp reverse proxy: row C of the benchmark.

It is the floor for any aiohttp gateway: one `ClientSession` with keepalive to the upstream,
no policies, no parsing, no logging. Whatever the gateway costs above this row is the cost
of its features. It serves the same way the gateway does (access log off, uvloop when it is
installed, same listen backlog) so the two rows differ only in what the handler does.

    python bench/proxy.py --upstream http://127.0.0.1:8081 --port 8082
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

# RFC 9110 section 7.6.1: these describe one connection, never the message, so they are
# not forwarded; `Host` is set by the client session for the upstream.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Recomputed by aiohttp for the body actually sent.
_DROP_REQUEST = HOP_BY_HOP | {"host", "content-length"}
_DROP_RESPONSE = HOP_BY_HOP | {"content-length"}

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


def forwardable(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: frozenset[str]
) -> CIMultiDict[str]:
    """The headers minus hop-by-hop ones, including those the Connection header names."""
    named = {
        token.strip().lower()
        for value in headers.getall("Connection", [])
        for token in value.split(",")
    }
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in headers.items():
        lowered = key.lower()
        if lowered not in drop and lowered not in named:
            out.add(key, value)
    return out


async def proxy(request: web.Request) -> web.Response:
    session = request.app[SESSION]
    # encoded=True: forward the path and query byte for byte, without re-quoting.
    url = URL(request.app[UPSTREAM] + request.raw_path, encoded=True)
    body = await request.read() if request.body_exists else None
    async with session.request(
        request.method,
        url,
        headers=forwardable(request.headers, _DROP_REQUEST),
        data=body,
        allow_redirects=False,
    ) as upstream:
        payload = await upstream.read()
        headers = forwardable(upstream.headers, _DROP_RESPONSE)
        return web.Response(status=upstream.status, body=payload, headers=headers)


def create_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=30)
        # DummyCookieJar: a proxy must not keep one client's cookies for the next.
        # auto_decompress off: the body is passed on exactly as the upstream encoded it.
        async with aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=10),
        ) as session:
            app[SESSION] = session
            yield

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8081")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The same event loop choice as `casino-gateway run`, so the rows compare like for like.
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(
        create_app(args.upstream),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        backlog=1024,
    )


if __name__ == "__main__":
    main()
