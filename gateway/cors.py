"""CORS for browser frontends (filled in by the CORS module's implementation)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Apply the config's `cors` block to every route."""
