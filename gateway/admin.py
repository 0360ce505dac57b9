"""Admin API under /admin/ (filled in by the admin module's implementation)."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Register the /admin/ routes."""
