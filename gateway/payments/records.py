"""Building the payment records the ledger keeps, and the attempts they list."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from adapters.base import NextAction, PaymentRequest
from gateway.ledger.payments import PaymentRecord
from gateway.payments import ids
from gateway.payments.ids import PaymentRef
from policies.idempotency import Claimed


@dataclass
class Attempt:
    provider: str
    outcome: str  # ok | declined | the failure (refused, timeout, rejected, unsupported...)
    error_code: str | None = None
    rule: str | None = None  # the routing rule that chose the provider order
    decline: str | None = None  # soft | hard, for a decline the adapter could read

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "provider": self.provider,
            "outcome": self.outcome,
            "error_code": self.error_code,
        }
        if self.rule is not None:
            out["rule"] = self.rule
        if self.decline is not None:
            out["decline"] = self.decline
        return out


def new_record(
    held: Claimed,
    request: PaymentRequest,
    provider: str,
    *,
    status: str,
    provider_reference: str | None,
    next_action: NextAction | None,
    attempts: list[Attempt],
    id_secret: bytes | None,
) -> PaymentRecord:
    created = int(time.time())
    ref = PaymentRef(
        provider,
        request.reference,
        provider_reference or "",
        request.amount,
        request.currency,
        created,
    )
    return PaymentRecord(
        payment_id=ids.encode(ref, id_secret),
        client_id=held.client_id,
        idem_key=held.key,
        player_id=request.player_id,
        type=request.type,
        amount=request.amount,
        currency=request.currency,
        provider=provider,
        provider_reference=provider_reference or None,
        reference=request.reference,
        status=status,
        next_action=next_action.to_dict() if next_action else None,
        attempts=tuple(a.to_dict() for a in attempts),
        created_at=float(created),
        updated_at=time.time(),
    )


def action_for(status: str, action: dict[str, Any] | None) -> dict[str, Any] | None:
    """A next action is shown only while the player has something to do."""
    return action if status in ("requires_action", "pending") else None
