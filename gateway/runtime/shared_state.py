"""Breaker and drain state agreed across replicas over Redis pub/sub.

Breakers stay in memory in each process (a synchronous Redis breaker store would block the
event loop); what is shared is each state change. A replica that opens a breaker publishes it
and records it in a hash; the others force the same state within one round trip. Pub/sub
loses what is sent while a subscriber is disconnected, so every (re)subscribe re-reads the
hashes in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway
    from gateway.state.redis_store import RedisLink

log = logging.getLogger("gateway.shared")
RECONNECT_S = 0.25


class SharedState:
    def __init__(self, gw: Gateway, link: RedisLink) -> None:
        self.gw = gw
        self.link = link
        self.origin = uuid.uuid4().hex
        self.channel = link.key("state")
        self.breakers_key = link.key("breakers")
        self.drains_key = link.key("drains")
        self._applying = False
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.connected = asyncio.Event()

    def on_message(self, kind: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Messages of type `kind` from other replicas go to `handler` (the catalog sync)."""
        self._handlers[kind] = handler

    def publish(self, message: dict[str, Any]) -> None:
        """Tell the other replicas, best effort: they also find out on their own schedule."""
        payload = orjson.dumps({**message, "origin": self.origin, "at": time.time()})

        async def send() -> None:
            with contextlib.suppress(Exception):  # degraded: nobody to tell
                await self.link.call(lambda: self.link.client.publish(self.channel, payload))

        task = asyncio.create_task(send())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ---- outgoing

    @property
    def applying_remote(self) -> bool:
        return self._applying

    def publish_breaker(self, provider: str, kind: str, state: str) -> None:
        if self._applying or state == "half_open":
            return  # a change we were told about, or a local trial: nothing new to say
        self._send(
            self.breakers_key,
            f"{provider}|{kind}",
            {"type": "breaker", "provider": provider, "kind": kind, "state": state},
        )

    async def publish_drain(self, provider: str, drained: bool, actor: str | None) -> None:
        """Awaited, unlike breaker news: an operator must hear if the others did not."""
        if self._applying:
            return
        message = {"type": "drain", "provider": provider, "drained": drained, "by": actor}
        payload = orjson.dumps({**message, "origin": self.origin, "at": time.time()})

        async def write() -> None:
            async with self.link.client.pipeline(transaction=False) as pipe:
                pipe.hset(self.drains_key, provider, payload)
                pipe.publish(self.channel, payload)
                await pipe.execute()

        await self.link.call(write)

    def _send(self, hash_key: str, field: str, message: dict[str, Any]) -> None:
        payload = orjson.dumps({**message, "origin": self.origin, "at": time.time()})

        async def send() -> None:
            async def write() -> None:
                async with self.link.client.pipeline(transaction=False) as pipe:
                    pipe.hset(hash_key, field, payload)
                    pipe.expire(hash_key, 7 * 24 * 3600)
                    pipe.publish(self.channel, payload)
                    await pipe.execute()

            with contextlib.suppress(Exception):  # degraded: local state still applies
                await self.link.call(write)

        task = asyncio.create_task(send())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ---- incoming

    @contextlib.contextmanager
    def _remote(self) -> Iterator[None]:
        self._applying = True
        try:
            yield
        finally:
            self._applying = False

    def apply(self, message: dict[str, Any], *, resync: bool = False) -> None:
        if message.get("origin") == self.origin:
            return
        handler = self._handlers.get(str(message.get("type")))
        if handler is not None:
            handler(message)
            return
        state = self.gw.registry.get(str(message.get("provider")))
        if state is None:
            return
        with self._remote():
            if message.get("type") == "breaker":
                breaker = state.breaker(str(message["kind"]))
                age = time.time() - float(message.get("at", 0))
                if message["state"] == "open":
                    # An old "open" from a replica that died before closing must not linger.
                    if not resync or age < state.config.breaker.recovery_timeout_s:
                        breaker.force_open()
                elif message["state"] == "closed" and breaker.state != "closed":
                    breaker.force_close()
            elif message.get("type") == "drain":
                state.drained = bool(message["drained"])
                state.drained_by = message.get("by")
                self.gw.metrics.provider_drained.labels(state.name).set(int(state.drained))

    async def resync(self) -> None:
        client = self.link.client
        breakers = await client.hgetall(self.breakers_key)
        drains = await client.hgetall(self.drains_key)
        for raw in [*breakers.values(), *drains.values()]:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.apply(orjson.loads(raw), resync=True)

    async def run(self) -> None:
        while True:
            pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self.resync()
                self.connected.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        with contextlib.suppress(ValueError, KeyError, TypeError):
                            self.apply(orjson.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                self.connected.clear()
                # Requests that never touch Redis (catalog reads, payments) would not notice
                # the outage; the channel does, and /readyz and the metric then say so.
                self.link.mark_degraded(exc)
                log.debug("state channel lost; resubscribing", extra={"error": str(exc)})
                await asyncio.sleep(RECONNECT_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="shared-state")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
