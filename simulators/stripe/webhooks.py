"""Events and their webhook deliveries: making an event, signing and POSTing it as Stripe
does, and the automatic completion of new intents (``auto_complete_s``).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
from aiohttp import web

from simulators.stripe.intents import MUTABLE, apply_outcome
from simulators.stripe.state import STATE, StripeState
from simulators.stripe.wire import rand


def new_event(state: StripeState, event_type: str, intent: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"evt_{rand(24)}",
        "object": "event",
        "api_version": state.api_version,
        "created": int(time.time()),
        "data": {"object": copy.deepcopy(intent)},
        "livemode": False,
        "pending_webhooks": 1 if state.webhook_url else 0,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    state.events[event["id"]] = event
    state.deliveries[event["id"]] = []
    return event


def sign(secret: str, timestamp: int, body: bytes) -> str:
    payload = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


async def deliver(state: StripeState, event: dict[str, Any]) -> dict[str, Any] | None:
    if state.webhook_url is None or state.webhook_secret is None or state.session is None:
        return None
    body = json.dumps(event, indent=2).encode("utf-8")
    timestamp = int(time.time())
    # Test-mode deliveries also carry a v0 signature made with another secret.
    decoy = sign(f"v0:{state.webhook_secret}", timestamp, body)
    header = f"t={timestamp},v1={sign(state.webhook_secret, timestamp, body)},v0={decoy}"
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": header,
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    result: dict[str, Any]
    try:
        async with state.session.post(state.webhook_url, data=body, headers=headers) as resp:
            await resp.read()
            result = {"status": resp.status, "error": None}
    except (aiohttp.ClientError, TimeoutError) as exc:
        result = {"status": None, "error": f"{type(exc).__name__}: {exc}"}
    state.deliveries[event["id"]].append({"at": timestamp, **result})
    return result


async def _auto_complete(app: web.Application, intent_id: str, delay: float) -> None:
    await asyncio.sleep(delay)
    state = app[STATE]
    intent = state.intents.get(intent_id)
    if intent is None or intent["status"] not in MUTABLE:
        return
    event_type = apply_outcome(intent, "succeeded", "generic_decline")
    await deliver(state, new_event(state, event_type, intent))


def schedule_auto_complete(app: web.Application, intent_id: str) -> None:
    state = app[STATE]
    if state.auto_complete_s is None:
        return
    task = asyncio.create_task(_auto_complete(app, intent_id, state.auto_complete_s))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
