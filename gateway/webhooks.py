"""Provider webhooks: POST /v1/webhooks/{provider} (filled in by the webhooks implementation)."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Register the webhook route."""
