"""Payment events: delivery to the casino backend and the live stream (filled in later)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register GET /v1/events and the delivery worker."""
