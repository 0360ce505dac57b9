"""The ledger: where money state lives (idempotency claims, payments, provider events).

`Ledger` is what the flows call; each method is one transaction of the database behind it
(SQLite by default, PostgreSQL for several hosts, SQLite in memory for tests). A method that
cannot reach the database raises `LedgerUnavailable`, and the caller then moves no money.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import secrets
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from adapters.wallet import WalletCall
from gateway.config.model import LedgerSettings
from gateway.ledger import (
    claims,
    outbox,
    payments,
    provider_events,
    refunds,
    retention,
    schema,
    wallet,
)
from gateway.ledger.database import Database, LedgerTooNew, LedgerUnavailable, Tx
from gateway.ledger.payments import Change, PaymentRecord
from gateway.ledger.postgres import PostgresDatabase
from gateway.ledger.refunds import (
    RefundAsk,
    RefundChange,
    RefundConflict,
    RefundRecord,
    RefundRefused,
    RefundReplay,
    Reserved,
)
from gateway.ledger.sqlite import MEMORY, SqliteDatabase
from policies.idempotency import Claimed, ClaimRecord, Conflict, Replay

log = logging.getLogger("gateway.ledger")
T = TypeVar("T")
PRUNE_INTERVAL_S = 3600.0


def open_database(settings: LedgerSettings) -> Database:
    if settings.backend == "postgres":
        if not settings.url:
            raise ValueError("ledger.backend postgres needs ledger.url_env")
        return PostgresDatabase(
            settings.url, pool_size=settings.pool_size, timeout_ms=settings.timeout_ms
        )
    if settings.backend == "memory":
        return SqliteDatabase(MEMORY)
    return SqliteDatabase(
        settings.path,
        synchronous=settings.synchronous.upper(),
        busy_timeout_ms=settings.timeout_ms,
    )


class Ledger:
    def __init__(
        self,
        settings: LedgerSettings,
        db: Database | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.db = db or open_database(settings)
        self.clock = clock
        self._pruner: asyncio.Task[None] | None = None
        self._writing: set[asyncio.Task[Any]] = set()

    @property
    def description(self) -> str:
        return self.db.description

    @property
    def in_order(self) -> bool:
        """Do transactions run in the order they are asked for (one thread, as SQLite's)?
        Then a write need not be waited for before a later request reads what it wrote."""
        return self.db.dialect == "sqlite"

    async def start(self) -> None:
        applied = await self.db.run(schema.migrate)
        if applied:
            log.info("ledger migrated", extra={"ledger": self.description, "applied": applied})
        self._pruner = asyncio.create_task(self._prune_forever(), name="ledger-pruner")

    def write_soon(self, write: Coroutine[Any, Any, Any]) -> None:
        """Run a write without waiting for it (only where `in_order`: a later request's
        transaction then still sees it); `close` waits for it first."""
        task = asyncio.ensure_future(write)
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def close(self) -> None:
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        await self.db.close()

    async def status(self) -> dict[str, Any]:
        """For /readyz: reachable, and at which schema version."""
        try:
            version = await self.db.read(schema.check_version)
        except (LedgerUnavailable, LedgerTooNew) as exc:
            return {"backend": self.settings.backend, "ok": False, "error": str(exc)[:200]}
        return {"backend": self.settings.backend, "ok": True, "schema_version": version}

    # ---- idempotency claims

    async def claim(
        self, client_id: str, key: str, fp: str, owner: str | None = None
    ) -> Claimed | Replay | Conflict:
        token = secrets.token_hex(16)
        return await self.db.run(
            claims.claim,
            client_id,
            key,
            fp,
            token,
            self.clock(),
            self.settings.claim_lease_s,
            owner,
        )

    async def claim_record(self, client_id: str, key: str) -> ClaimRecord | None:
        return await self.db.read(claims.read_claim, client_id, key)

    async def stamp_owner(self, held: Claimed, provider: str) -> None:
        await self.db.run(claims.stamp_owner, held, provider, self.clock())

    async def finish(
        self,
        held: Claimed,
        http_status: int,
        answer: dict[str, Any],
        payment: PaymentRecord | None,
        *,
        owner: str | None = None,
        unknown: bool = False,
    ) -> None:
        finish = functools.partial(claims.finish, owner=owner, unknown=unknown, now=self.clock())
        await self.db.run(finish, held, http_status, answer, payment)

    async def abandon(self, held: Claimed, attempts: Sequence[dict[str, Any]]) -> None:
        await self.db.run(claims.abandon, held, attempts, self.clock())

    async def settle_unknown(self, client_id: str, key: str, answer: dict[str, Any]) -> bool:
        return await self.db.run(claims.settle_unknown, client_id, key, answer, self.clock())

    # ---- payments

    async def payment(self, payment_id: str) -> PaymentRecord | None:
        return await self.db.read(payments.get_payment, payment_id)

    async def update_payment(
        self, payment_id: str, change: Change[T], *, source: str
    ) -> tuple[PaymentRecord, PaymentRecord, T] | None:
        update = functools.partial(payments.update_payment, source=source, now=self.clock())
        return await self.db.run(update, payment_id, change)

    async def status_history(self, payment_id: str) -> list[tuple[str | None, str, str]]:
        return await self.db.read(payments.status_history, payment_id)

    # ---- provider events

    async def apply_provider_event(
        self,
        provider: str,
        provider_event_id: str,
        event_id: str,
        event_type: str,
        references: Sequence[str | None],
        detail: dict[str, Any],
        change: Change[T],
        then: Callable[[Tx, provider_events.Applied[T]], None] | None = None,
    ) -> provider_events.Applied[T] | provider_events.Duplicate | provider_events.Orphan:
        return await self.db.run(
            provider_events.apply_event,
            provider,
            provider_event_id,
            event_id,
            event_type,
            references,
            detail,
            change,
            self.clock(),
            then,
        )

    async def apply_provider_event_with(
        self,
        provider: str,
        provider_event_id: str,
        event_id: str,
        event_type: str,
        detail: dict[str, Any],
        target: provider_events.Target[T],
    ) -> provider_events.Done[T] | provider_events.Duplicate | provider_events.Orphan:
        return await self.db.run(
            provider_events.apply_with,
            provider,
            provider_event_id,
            event_id,
            event_type,
            detail,
            target,
            self.clock(),
        )

    async def orphan_events(self, provider: str | None = None) -> list[dict[str, Any]]:
        return await self.db.read(provider_events.orphans, provider)

    # ---- refunds

    async def reserve_refund(
        self, ask: RefundAsk
    ) -> Reserved | RefundReplay | RefundConflict | RefundRefused:
        return await self.db.run(refunds.reserve, ask, self.clock(), self.settings.claim_lease_s)

    async def refund_answer(self, refund_id: str, token: str, change: RefundChange) -> RefundRecord:
        return await self.db.run(refunds.record_answer, refund_id, token, change, self.clock())

    async def release_refund(self, refund_id: str, token: str) -> None:
        await self.db.run(refunds.release, refund_id, token)

    async def refund(self, refund_id: str) -> RefundRecord | None:
        return await self.db.read(refunds.get_refund, refund_id)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """One write transaction of `fn(tx, *args)`, for flows that compose the ledger's
        functions themselves (a webhook applied to a refund and its payment at once)."""
        return await self.db.run(fn, *args)

    # ---- wallet transactions

    async def wallet_begin(
        self, provider: str, call: WalletCall, game_id: str | None
    ) -> wallet.Proceed | wallet.Stored | wallet.Refused:
        return await self.db.run(wallet.begin, provider, call, game_id, self.clock())

    async def wallet_finish(
        self, provider: str, transaction_id: str, state: str, outcome: str, balance: int | None
    ) -> None:
        await self.db.run(
            wallet.finish, provider, transaction_id, state, outcome, balance, self.clock()
        )

    async def wallet_transactions(
        self,
        player_id: str | None = None,
        round_id: str | None = None,
        provider: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        return await self.db.read(wallet.transactions, player_id, round_id, provider, limit)

    async def wallet_totals(self, start: float, end: float) -> list[tuple[str, str, str, int, int]]:
        return await self.db.read(wallet.totals, start, end)

    # ---- the event outbox (written by the flows' own transactions, `outbox.append`)

    async def events_after(
        self, seq: int, limit: int, player_id: str | None = None, payment_id: str | None = None
    ) -> tuple[outbox.Bounds, list[outbox.OutboxRow]]:
        return await self.db.read(outbox.after, seq, limit, player_id, payment_id)

    async def event_bounds(self) -> outbox.Bounds:
        return await self.db.read(outbox.bounds)

    async def lease_deliveries(self, owner: str, limit: int, lease_s: float) -> list[outbox.Leased]:
        # Most polls find nothing due: they read, and take the write lock only when needed.
        if not await self.db.read(outbox.due, self.clock()):
            return []
        return await self.db.run(outbox.lease, owner, limit, lease_s, self.clock())

    async def delivered(self, seq: int) -> None:
        await self.db.run(outbox.delivered, seq, self.clock())

    async def delivery_failed(
        self, seq: int, owner: str, error: str, retry_in_s: float, give_up: bool
    ) -> None:
        await self.db.run(outbox.failed, seq, owner, error, self.clock() + retry_in_s, give_up)

    async def release_deliveries(self, owner: str) -> int:
        return await self.db.run(outbox.release, owner)

    async def delivery_backlog(self) -> outbox.Backlog:
        return await self.db.read(outbox.backlog)

    async def deliveries(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return await self.db.read(outbox.deliveries, status, limit, self.clock())

    async def redeliver(self, event_id: str) -> dict[str, Any] | None:
        return await self.db.run(outbox.redeliver, event_id, self.clock())

    async def prune_events(self, retention_s: float) -> int:
        return await self.db.run(outbox.prune, self.clock() - retention_s)

    # ---- retention

    async def prune(self) -> retention.Pruned:
        retention_s = self.settings.retention_days * 86400.0
        return await self.db.run(retention.prune, self.clock(), retention_s)

    async def _prune_forever(self) -> None:
        # Replicas started together spread their pruning over the first interval.
        await asyncio.sleep(random.uniform(60.0, PRUNE_INTERVAL_S))
        while True:
            try:
                pruned = await self.prune()
                log.info("ledger pruned", extra={"pruned": dataclasses.asdict(pruned)})
            except LedgerUnavailable as exc:
                log.warning("ledger pruning skipped", extra={"error": str(exc)})
            await asyncio.sleep(PRUNE_INTERVAL_S)
