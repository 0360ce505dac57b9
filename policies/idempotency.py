"""Idempotency of payment creation: one request per key reaches a provider, ever.

A record goes `in_progress` (claimed atomically with `set_if_absent`, so two concurrent
requests, in one process or two, cannot both proceed) and then `done` with the response to
replay. A claim that is never finished (the process died mid-call) expires after
`lease_s`; the retry that follows reuses the same provider idempotency key, so the provider
itself dedupes it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from policies.ports import Store

RECORD_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class Record:
    state: str  # in_progress | done
    fingerprint: str
    status: int = 0
    body: Any = None
    owner: str | None = None  # provider that may hold the payment, to re-ask on replay
    unknown: bool = False
    since: float = 0.0  # wall time of the claim or of its last owner stamp
    token: str = ""  # whose claim this is: writes to an in-progress record compare it

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "state": self.state,
                "fingerprint": self.fingerprint,
                "status": self.status,
                "body": self.body,
                "owner": self.owner,
                "unknown": self.unknown,
                "since": self.since,
                "token": self.token,
            }
        )

    @staticmethod
    def decode(raw: bytes) -> Record:
        d = orjson.loads(raw)
        return Record(
            d["state"],
            d["fingerprint"],
            d["status"],
            d["body"],
            d["owner"],
            d["unknown"],
            d.get("since", 0.0),
            d.get("token", ""),
        )


@dataclass(slots=True)
class Claimed:
    """This request owns the key and must finish it. `raw` is the record as last written by
    this request: every later write compares against it, so a request that lost its claim
    (it outlived its lease and another took over) can no longer overwrite anything."""

    raw: bytes = b""
    token: str = ""


class LostClaim(Exception):
    """Another request holds the key now; this one must not send or record anything."""


@dataclass(frozen=True, slots=True)
class Replay:
    record: Record


@dataclass(frozen=True, slots=True)
class Orphaned:
    """A claim whose holder stopped after sending to `record.owner`: only that provider may
    be asked again (same key), never another."""

    record: Record
    raw: bytes = b""


@dataclass(frozen=True, slots=True)
class Conflict:
    reason: str  # different_body | in_progress


def fingerprint(client_id: str, body: Any) -> str:
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(client_id.encode() + b"\0" + canonical).hexdigest()


class IdempotencyStore:
    def __init__(
        self,
        store: Store,
        *,
        prefix: str = "idem:",
        ttl_s: float = RECORD_TTL_S,
        lease_s: float = 60.0,
        wait_s: float = 10.0,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.lease_s = lease_s
        self.wait_s = wait_s

    def _key(self, client_id: str, key: str) -> str:
        digest = hashlib.sha256(f"{client_id}\0{key}".encode()).hexdigest()
        return self.prefix + digest

    async def begin(
        self, client_id: str, key: str, fp: str
    ) -> Claimed | Replay | Orphaned | Conflict:
        """Claim the key, or say what to answer instead.

        A request arriving while another holds the key waits for it (up to `wait_s`) so a
        double-clicked deposit gets the first one's answer instead of an error.
        """
        skey = self._key(client_id, key)
        deadline = time.monotonic() + self.wait_s
        token = secrets.token_hex(8)
        claim = Record("in_progress", fp, since=time.time(), token=token).encode()
        while True:
            if await self.store.set_if_absent(skey, claim, self.lease_s):
                return Claimed(claim, token)
            raw = await self.store.get(skey)
            if raw is None:
                continue  # expired between the two calls; claim again
            record = Record.decode(raw)
            if record.fingerprint != fp:
                return Conflict("different_body")
            if record.state == "done":
                return Replay(record)
            if record.owner and time.time() - record.since > self.lease_s:
                return Orphaned(record, raw)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Conflict("in_progress")
            await self.store.wait_changed(skey, min(remaining, 0.05))

    async def stamp_owner(
        self, client_id: str, key: str, fp: str, owner: str, claim: Claimed | None = None
    ) -> None:
        """Before a payment is sent to `owner`: record it, for as long as a record lives.

        If this request never finishes (crash, lost store write), the next one with the key
        finds who may hold the payment instead of choosing a provider afresh. Raises
        LostClaim when another request holds the key by now: then nothing may be sent.
        """
        token = claim.token if claim else secrets.token_hex(8)
        new = Record("in_progress", fp, owner=owner, since=time.time(), token=token).encode()
        await self._write(client_id, key, new, claim)

    async def take_over(self, client_id: str, key: str, orphaned: Orphaned) -> Claimed | None:
        """Claim an orphaned key for this request; None if another request was quicker."""
        record = orphaned.record
        token = secrets.token_hex(8)
        new = Record(
            "in_progress", record.fingerprint, owner=record.owner, since=time.time(), token=token
        ).encode()
        if await self.store.replace_if(self._key(client_id, key), orphaned.raw, new, self.ttl_s):
            return Claimed(new, token)
        return None

    async def _write(self, client_id: str, key: str, value: bytes, claim: Claimed | None) -> None:
        skey = self._key(client_id, key)
        if claim is None:
            await self.store.set(skey, value, self.ttl_s)
            return
        if not await self.store.replace_if(skey, claim.raw, value, self.ttl_s):
            raise LostClaim(key)
        claim.raw = value

    async def finish(
        self,
        client_id: str,
        key: str,
        fp: str,
        status: int,
        body: Any,
        *,
        owner: str | None = None,
        unknown: bool = False,
        claim: Claimed | None = None,
    ) -> None:
        record = Record("done", fp, status, body, owner, unknown, since=time.time())
        await self._write(client_id, key, record.encode(), claim)

    async def abandon(self, client_id: str, key: str, claim: Claimed | None = None) -> None:
        """Release a claim whose request certainly reached no provider."""
        skey = self._key(client_id, key)
        if claim is None:
            await self.store.delete(skey)
        elif not await self.store.delete_if(skey, claim.raw):
            raise LostClaim(key)
