"""What the payment simulators need to call out (webhooks and notifications to the gateway):
one HTTP session for the app's life, and the sending tasks cancelled when it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import web


class Sender(Protocol):
    session: aiohttp.ClientSession | None
    tasks: Any  # a collection of the asyncio tasks still sending


def outbound_lifecycle(
    key: web.AppKey[Any],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context for `app[key]`, a state with `session` and `tasks`."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        state: Sender = app[key]
        state.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        yield
        tasks = list(state.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await state.session.close()
        state.session = None

    return lifecycle
