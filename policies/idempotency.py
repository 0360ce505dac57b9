"""Idempotency of payment creation: what to do with a key, given the claim recorded for it.

One request per key may send a payment to a provider, ever. A request first claims the key
(a row in the ledger, written under a fresh fence `token`), records the provider it is about
to ask as the claim's `owner` before every send, and finally records the answer. Every later
write compares the token, so a request that outlived its claim can neither send nor record.

`judge` is the decision, a pure function of the recorded claim and the clock:

- no claim, or a settled one older than `ttl_s`: claim the key;
- another body under the key: conflict;
- a settled claim: replay its answer (re-asking its owner when the outcome was unknown);
- a claim in progress within its lease: wait for it;
- a claim whose holder stopped (lease over): take it over. If it names an owner, that
  provider may hold the payment, and only it may ever be asked again (same provider key);
  if it names none, nothing was sent and the new holder starts afresh.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

RECORD_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    state: str  # in_progress | done
    fingerprint: str
    token: str
    owner: str | None  # the provider that may hold the payment
    unknown: bool  # done, but the owner's answer was never learnt
    since: float  # when the claim was taken or last stamped (Unix seconds)
    updated_at: float
    http_status: int | None = None
    answer: Any = None
    payment_id: str | None = None


class Verdict(Enum):
    CLAIM = "claim"
    REPLAY = "replay"
    CONFLICT = "conflict"
    WAIT = "wait"
    TAKE_OVER_FRESH = "take_over_fresh"
    TAKE_OVER_ORPHAN = "take_over_orphan"


def judge(
    existing: ClaimRecord | None,
    fp: str,
    now: float,
    *,
    lease_s: float,
    ttl_s: float = RECORD_TTL_S,
) -> Verdict:
    if existing is None:
        return Verdict.CLAIM
    settled = existing.state == "done" and not existing.unknown
    if settled and now - existing.updated_at > ttl_s:
        return Verdict.CLAIM  # the key has expired; an outcome still unknown never does
    if existing.fingerprint != fp:
        return Verdict.CONFLICT
    if existing.state == "done":
        return Verdict.REPLAY
    if now - existing.since <= lease_s:
        return Verdict.WAIT
    return Verdict.TAKE_OVER_ORPHAN if existing.owner else Verdict.TAKE_OVER_FRESH


# ---- what a claim attempt yields ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """This request holds the key under `token` and must finish or abandon it.

    With `owner` set, the claim was taken over from a request that stopped after naming
    that provider: only that provider may be asked, with the same provider key."""

    client_id: str
    key: str
    fingerprint: str
    token: str
    owner: str | None = None
    # The provider this claim already names, recorded with the claim itself (it is about to
    # be asked first); None when nothing is named yet.
    stamped: str | None = None


@dataclass(frozen=True, slots=True)
class Replay:
    record: ClaimRecord


@dataclass(frozen=True, slots=True)
class Conflict:
    reason: str  # different_body | in_progress


class LostClaim(Exception):
    """Another request holds the key now; this one must not send or record anything."""


def fingerprint(client_id: str, body: Any) -> str:
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(client_id.encode() + b"\0" + canonical).hexdigest()
