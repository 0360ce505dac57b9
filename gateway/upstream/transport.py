"""The only code that talks to providers over the network.

`send` takes an adapter's `UpstreamRequest`, applies the provider's timeout and returns the
`UpstreamResponse`, or raises `TransportError` saying whether the request may have reached
the provider. That distinction is what the double-charge rule is built on: a refused
connection certainly did not; a timeout or a reset after sending may have. Every call
carries the trace context of the request it is made for (`gateway.obs.tracing`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import aiohttp

from adapters.base import UpstreamRequest, UpstreamResponse
from gateway.obs.tracing import outgoing_headers

TransportKind = Literal["refused", "timeout", "reset", "error"]


class TransportError(Exception):
    def __init__(self, kind: TransportKind, message: str, *, maybe_delivered: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.maybe_delivered = maybe_delivered


def make_session(per_host: int = 100) -> aiohttp.ClientSession:
    # A per-host cap, not a global one: a hanging provider may hold its own connections but
    # can never starve the pool every other provider's calls need.
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=per_host,
        keepalive_timeout=30,
        ttl_dns_cache=300,
        enable_cleanup_closed=False,
    )
    # No default timeout: each call passes its provider's. Cookies would leak between players.
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        raise_for_status=False,
    )


@lru_cache(maxsize=64)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    # One object per provider timeout instead of one per call: it is immutable.
    return aiohttp.ClientTimeout(total=seconds, connect=seconds)


async def send(
    session: aiohttp.ClientSession,
    base_url: str,
    request: UpstreamRequest,
    timeout_s: float,
    max_body_bytes: int = 32 * 1024 * 1024,
) -> UpstreamResponse:
    timeout = _timeout(timeout_s)
    headers = request.headers
    trace = outgoing_headers()
    if trace:
        headers = {**headers, **trace}
    try:
        async with session.request(
            request.method,
            base_url + request.path,
            headers=headers,
            data=request.body or None,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            # read(n) returns what has arrived so far: gather chunks to the end, under a cap.
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > max_body_bytes:
                    raise TransportError("error", "provider answer too large", maybe_delivered=True)
                chunks.append(chunk)
            return UpstreamResponse(response.status, response.headers, b"".join(chunks))
    except aiohttp.ClientConnectorError as exc:
        # Refused, unreachable, DNS failure: nothing was sent.
        raise TransportError(
            "refused", f"cannot connect: {exc.os_error}", maybe_delivered=False
        ) from None
    except aiohttp.ConnectionTimeoutError:
        raise TransportError("timeout", "connect timed out", maybe_delivered=False) from None
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise TransportError(
            "timeout", f"no answer within {timeout_s:g}s", maybe_delivered=True
        ) from None
    except (
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientOSError,
        aiohttp.ClientPayloadError,
    ) as exc:
        raise TransportError(
            "reset", f"connection lost: {type(exc).__name__}", maybe_delivered=True
        ) from None
    except aiohttp.ClientError as exc:
        raise TransportError(
            "error", f"client error: {type(exc).__name__}", maybe_delivered=True
        ) from None
