"""GET /v1/events: payment events live to frontends as Server-Sent Events.

Query: `player_id` and/or `payment_id` (at least one; both must match when both are given).
Authenticated like every client route (X-API-Key when `clients` are configured); a player
token streams its own player's events only.

The stream::

    retry: 3000                          reconnect delay for the client, sent first

    id: 42                               the event's sequence number in the ledger's outbox
    data: {"event_id": "evt_...", "type": "payment.succeeded", "payment_id": ..., ...}

    : ping                               a heartbeat comment every `heartbeat_s`

Ids are the outbox's sequence (`gateway.ledger.outbox`): the same on every replica and
across restarts. Resuming: a reconnecting EventSource sends `Last-Event-ID` (or pass
`last_event_id` in the query), on any replica; the stream first replays the matching events
after that id, from this process's buffer when it holds them all, else from the ledger.
When events after that id may be gone (pruned after `events.retention_days`, or an id the
ledger never gave), an ``event: gap`` comes first and the frontend should re-read its
payments with GET /v1/payments/{id}.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from gateway.config.errors import ConfigError
from gateway.config.events import parse_settings
from gateway.events.hub import HUB, EventHub
from gateway.events.stream_log import EventLog, Filter, StreamClosed, Subscriber, entry
from gateway.http.context import CTX, GATEWAY
from gateway.http.players import require_player
from gateway.ledger.database import LedgerUnavailable
from gateway.problems import ApiError
from gateway.upstream import transport

log = logging.getLogger("gateway.events")

_QUERY_KEYS = frozenset({"player_id", "payment_id", "last_event_id", "access_token"})
_ID_VALUE = re.compile(r"^[\x21-\x7e]{1,128}$")
_SEQ = re.compile(r"^[0-9]{1,19}$")
# How often a quiet stream checks that its client is still there: a disconnect is noticed
# within this time even when heartbeats are rare (aiohttp does not cancel the handler).
_LIVENESS_S = 1.0
# Events replayed to one resuming stream from the ledger; past it the stream says `gap`.
REPLAY_LIMIT = 10_000


# ---- the handler ---------------------------------------------------------------------------


def _filter(request: web.Request) -> Filter:
    unknown = set(request.query) - _QUERY_KEYS
    if unknown:
        raise ApiError(
            "invalid_request", f"unknown query parameter(s): {', '.join(sorted(unknown))}"
        )
    values: dict[str, str | None] = {}
    for name in ("player_id", "payment_id"):
        value = request.query.get(name)
        if value is not None and not _ID_VALUE.match(value):
            raise ApiError("invalid_request", f"{name} must be 1-128 printable characters")
        values[name] = value
    token_player = request[CTX]["player_id"]
    if token_player is not None:
        # A player's token streams that player's events only, whatever else is asked.
        require_player(token_player, values["player_id"] or token_player)
        values["player_id"] = token_player
    if not any(values.values()):
        # Without a filter one stream would carry every player's payments.
        raise ApiError("invalid_request", "give player_id or payment_id to filter the events")
    return Filter(**values)


def _last_event_id(request: web.Request) -> int | None:
    # The header is what EventSource sends on reconnect, so it is newer than the query.
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if raw is None or raw == "":
        return None
    if not _SEQ.match(raw.strip()):
        raise ApiError("invalid_request", "Last-Event-ID must be an event id from this stream")
    return int(raw.strip())


async def _subscribe(
    hub: EventHub, flt: Filter, last_id: int | None, owner: str
) -> tuple[Subscriber, bool]:
    """The stream's subscriber, its replay queued; and whether events may have been missed."""
    log = hub.log
    if last_id is None or log.covers(last_id):
        return log.subscribe(flt, owner, after=last_id), False
    try:
        bounds, rows = await hub.gw.ledger.events_after(
            last_id, REPLAY_LIMIT, flt.player_id, flt.payment_id
        )
    except LedgerUnavailable:
        # Live events still flow (from the buffer); what came before cannot be proven.
        return log.subscribe(flt, owner), True
    truncated = len(rows) >= REPLAY_LIMIT
    gap = truncated or last_id < bounds.pruned_through or last_id > bounds.last_seq
    seen = rows[-1].seq if truncated else bounds.last_seq
    backfill = [entry(row) for row in rows]
    return log.subscribe(flt, owner, after=last_id, backfill=backfill, seen=seen), gap


async def stream(request: web.Request, log: EventLog) -> web.StreamResponse:
    flt = _filter(request)
    last_id = _last_event_id(request)
    settings = log.settings
    # Headers go out with prepare(): what the middlewares would add afterwards never
    # reaches the client, so the request id is set here.
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass events through as they come
            "X-Request-ID": request[CTX]["request_id"],
        }
    )
    ctx = request[CTX]
    owner = ctx["client_id"] if ctx["client_id"] != "anonymous" else f"ip:{ctx['client_ip']}"
    subscriber, gap = await _subscribe(request.app[HUB], flt, last_id, owner)
    try:
        await response.prepare(request)
        await response.write(b"retry: %d\n\n" % settings.retry_ms)
        if gap:
            notice = {"last_event_id": str(last_id), "detail": "events may have been missed"}
            await response.write(b"event: gap\ndata: %s\n\n" % orjson.dumps(notice))
        await _pump(request, response, subscriber, settings.heartbeat_s)
    except (ConnectionResetError, StreamClosed):
        pass  # the client left, or the stream was ended (shutdown, too slow)
    finally:
        log.unsubscribe(subscriber)
    return response


async def _pump(
    request: web.Request, response: web.StreamResponse, subscriber: Subscriber, heartbeat_s: float
) -> None:
    next_ping = time.monotonic() + heartbeat_s
    while True:
        wait = max(0.0, min(_LIVENESS_S, next_ping - time.monotonic()))
        entry = await subscriber.next(wait)
        if entry is not None:
            await response.write(entry.frame)
            continue
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        if time.monotonic() >= next_ping:
            await response.write(b": ping\n\n")
            next_ping = time.monotonic() + heartbeat_s


async def stream_handler(request: web.Request) -> web.StreamResponse:
    return await stream(request, request.app[HUB].log)


def setup(app: web.Application) -> None:
    """Register GET /v1/events, and the hub (delivery worker, tailer, retention job)."""
    gw = app[GATEWAY]
    try:
        config = gw.runtime.config
        settings = config.event_settings or parse_settings(config.events, os.environ)
    except ConfigError as exc:
        raise ConfigError(exc.problems, gw.runtime.config.source) from None
    app[HUB] = EventHub(gw, settings)
    app.router.add_get("/v1/events", stream_handler, name="events.stream")
    app.cleanup_ctx.append(_delivery)
    app.on_startup.append(_start)
    app.on_shutdown.append(_end_streams)


async def _delivery(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    # Registered before the gateway's own lifecycle, whose session opens later and closes
    # first: the worker keeps a session of its own for the whole of its life.
    hub.session = transport.make_session(per_host=hub.settings.retry.concurrency * 2)
    try:
        yield
    finally:
        await hub.session.close()
        hub.session = None


async def _start(app: web.Application) -> None:
    # An on_startup hook runs after every cleanup context started: the ledger is migrated.
    app[HUB].start()


async def _end_streams(app: web.Application) -> None:
    # Open streams would otherwise hold the shutdown until its timeout. The hub stops
    # before the ledger closes (on_shutdown runs before the cleanup contexts end).
    app[HUB].log.close_all("shutdown")
    await app[HUB].stop()
