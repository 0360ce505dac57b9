"""Reading a request body whole: within a size limit and within the body timeout.

`read()` returns what has arrived so far, not the whole body, so the body is gathered to its
end; a client that sends it too slowly (`server.body_timeout_s`) gets 408 and the
connection is closed, instead of holding it open.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.problems import ApiError

CHUNK = 64 * 1024


async def read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError("payload_too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await request.content.read(min(CHUNK, limit + 1 - size)):
                size += len(chunk)
                if size > limit:
                    raise ApiError("payload_too_large", f"the body is over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            "request_timeout", f"the body did not arrive within {timeout_s:g} s"
        ) from None
    return b"".join(chunks)
