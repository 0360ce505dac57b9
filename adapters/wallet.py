"""The normalized seamless wallet: what every aggregator's wallet callback becomes.

An aggregator calls the operator's wallet for each balance look-up, bet, win and rollback.
Each wallet adapter (`adapters.hub88.wallet`, `adapters.slotegrator.wallet`) verifies and
parses its provider's callback into a `WalletCall` and renders a `WalletOutcome` back into
the provider's own answer; `gateway.wallet` does everything in between (the ledger, the
casino backend). Amounts are integer minor units here, whatever unit the provider uses.

Exception hierarchy::

    Exception
     +-- WalletRefused      the callback is refused before anything is recorded or sent
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

# The backend's operations: balance, debit (a bet), credit (a win), rollback.
Operation = Literal["balance", "debit", "credit", "rollback"]

# The errors the casino backend answers with (its side of the wallet contract).
BackendError = Literal[
    "insufficient_funds",
    "player_blocked",
    "limit_reached",
    "invalid_session",
    "unknown_player",
    "wrong_currency",
]
BACKEND_ERRORS: frozenset[str] = frozenset(get_args(BackendError))
# Normalized outcomes, the label of gateway_wallet_requests_total and what adapters map to
# their provider's codes. The backend's own errors keep their names.
Outcome = Literal[
    "ok",
    BackendError,
    "duplicate_transaction",  # the id was used before with other details
    "rolled_back",  # a bet or win for a bet already rolled back
    "invalid_signature",
    "invalid_request",  # malformed body, unknown action, missing field
    "invalid_amount",  # negative, non-numeric, or not a whole number of minor units
    "unavailable",  # the backend timed out, failed, or the ledger is unreachable: retry
]


@dataclass(frozen=True, slots=True)
class WalletCall:
    """One wallet callback, normalized.

    `transaction_id` and `reference_transaction_id` are the provider's own ids (the gateway
    prefixes them with the provider's name towards the backend). `amount` is None where the
    provider sends none (a Hub88 rollback names only the bet it reverses). `echo` carries
    what the provider wants repeated in its answer (Hub88's `request_uuid`, the user).
    """

    operation: Operation
    player_id: str
    currency: str | None
    session_token: str | None
    request_id: str
    transaction_id: str | None = None
    amount: int | None = None
    round_id: str | None = None
    round_closed: bool = False
    game_code: str | None = None
    is_free: bool = False
    reference_transaction_id: str | None = None

    def fingerprint(self) -> str:
        """What an identical retry repeats: the same id with another fingerprint is refused."""
        parts = (
            self.operation,
            self.player_id,
            self.currency or "",
            "" if self.amount is None else str(self.amount),
            self.round_id or "",
            self.game_code or "",
            self.reference_transaction_id or "",
        )
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class WalletRequest:
    """A verified callback: its calls (one, or one a transaction a Slotegrator rollback
    names), the provider's name for it, what its answer echoes, and the nonce that may not
    be used again (Slotegrator's `X-Nonce`; None where the provider has none)."""

    action: str
    calls: tuple[WalletCall, ...]
    echo: Mapping[str, str] = field(default_factory=dict)
    nonce: str | None = None


@dataclass(frozen=True, slots=True)
class WalletOutcome:
    """How a call ended: `ok` with the balance, or a normalized error (with the balance when
    the backend gave one)."""

    outcome: Outcome
    balance: int | None = None  # minor units
    currency: str | None = None
    transaction_id: str | None = None  # the gateway's id of the recorded transaction

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class WalletRefused(Exception):
    """A callback refused as it stands (bad signature, malformed, bad amount): the provider
    gets `outcome` in its own words, and nothing is recorded or sent to the backend.
    `echo` is what could be read of the request, for the answer (Hub88's request_uuid)."""

    def __init__(self, outcome: Outcome, reason: str, echo: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.outcome: Outcome = outcome
        self.reason = reason
        self.echo = echo or {}


class WalletAdapter(Protocol):
    """What a provider's wallet module offers (`adapter.wallet`, None without one)."""

    uses_paths: bool  # a path per action under the wallet URL (Hub88), or one URL
    window_s: float  # how far a signed timestamp may be from the clock (where one is signed)

    def parse(
        self, path: str, headers: Mapping[str, str], body: bytes, now: float
    ) -> WalletRequest: ...

    def answer(
        self, action: str, echo: Mapping[str, str], outcome: WalletOutcome
    ) -> tuple[int, str, bytes]: ...
