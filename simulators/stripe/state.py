"""What one Stripe simulator remembers: intents, saved idempotent answers, events and their
deliveries, its settings, and the background tasks and HTTP session it owns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web


@dataclass
class SavedResponse:
    endpoint: str
    params: tuple[tuple[str, str], ...]
    status: int
    body: bytes
    request_id: str
    version: str


@dataclass
class StripeState:
    secret_key: str
    webhook_url: str | None
    webhook_secret: str | None
    auto_complete_s: float | None
    api_version: str
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, SavedResponse] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)  # keys whose first request still runs
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None


STATE = web.AppKey("stripe_state", StripeState)
