"""Delivery of payment events to the casino backend: signing and a retrying, ordered queue.

What the backend receives, one event per request::

    POST <events.webhook_url>
    Content-Type: application/json
    X-Gateway-Event-Id: evt_...           (the same id on every retry of one event)
    X-Gateway-Signature: t=<unix seconds>,v1=<hex>
    traceparent: 00-<trace id>-<parent id>-<flags>   (W3C; tracestate too when there is one)

    {"event_id", "type", "payment_id", "provider", "provider_reference", "amount",
     "currency", "occurred_at"}

`v1` is the hex HMAC-SHA256, keyed with the secret named by `events.secret_env`, of the
string ``f"{t}.{raw_body}"``. The backend recomputes it over the raw body it read, compares
in constant time, and refuses a `t` more than a few minutes from its own clock (each retry
is signed afresh, so a late retry still carries a current `t`). `verify_signature` below is
a reference implementation.

Guarantees: at least once (a 2xx answer is the only success; a connection error, a timeout
and any other status are retried with exponential backoff), across restarts and replicas:
events wait in the ledger's outbox (`gateway.ledger.outbox`) and `gateway.events.worker`
sends them, so the backend must dedupe on `event_id`. Events of one payment arrive in the
order the gateway applied them: a later event waits until the earlier one is delivered or
given up.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from gateway.config.events import BackendSettings

SIGNATURE_HEADER = "X-Gateway-Signature"
EVENT_ID_HEADER = "X-Gateway-Event-Id"
SIGNATURE_TOLERANCE_S = 300


# ---- signing -------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Gateway-Signature value for `body` sent at `timestamp`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    now: float,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a backend does with X-Gateway-Signature (kept here as the reference)."""
    fields = dict(part.strip().partition("=")[::2] for part in header.split(","))
    timestamp, given = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    expected = sign(secret, int(timestamp), body).partition(",v1=")[2]
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        return False
    return abs(now - int(timestamp)) <= tolerance_s


# ---- the retry policy -------------------------------------------------------------------


def equal_jitter(delay: float) -> float:
    # Half fixed, half random: many payments failing together do not retry in lockstep,
    # and no retry comes sooner than half the nominal delay.
    return delay / 2 + random.random() * delay / 2


# ---- the HTTP sender --------------------------------------------------------------------


class DeliveryFailed(Exception):
    """The backend did not take the event (non-2xx); the worker retries it."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    event_id: str
    payment_id: str
    body: bytes  # the event's JSON, the same bytes on every attempt
    trace: Mapping[str, str] = field(default_factory=dict)  # of the request that caused it


async def post_event(
    session: aiohttp.ClientSession, backend: BackendSettings, item: Outgoing
) -> None:
    """One attempt; raises on anything but a 2xx so the worker retries."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(backend.secret, int(time.time()), item.body),
        EVENT_ID_HEADER: item.event_id,
        **item.trace,  # the trace of the request that caused the event
    }
    timeout = aiohttp.ClientTimeout(total=backend.timeout_s)
    async with session.post(
        backend.webhook_url,
        data=item.body,
        headers=headers,
        timeout=timeout,
        allow_redirects=False,
    ) as response:
        # Read a little so the connection can be reused; the answer's content is not used.
        await response.content.read(4096)
        if not 200 <= response.status < 300:
            raise DeliveryFailed(f"backend answered HTTP {response.status}")
