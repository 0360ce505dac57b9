"""Replays of a payment whose outcome was unknown: asked of its owner only, forever.

A replay can only learn the outcome there (the provider dedupes on the same provider key),
never charge again, and no other provider is ever asked. What the ledger learnt meanwhile (a
webhook, a read-back) is kept: statuses only move forward.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gateway.ledger.database import LedgerUnavailable
from gateway.ledger.payments import PaymentRecord
from gateway.payments.records import Attempt, action_for, new_record
from gateway.payments.sending import create_once, finish, payment_request
from gateway.payments.status import advance
from gateway.upstream.calls import AttemptFailed
from policies.idempotency import Claimed, ClaimRecord

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway, Runtime

log = logging.getLogger("gateway.payments")


async def resolve_orphan(
    gw: Gateway, rt: Runtime, held: Claimed, body: dict[str, Any]
) -> tuple[int, dict[str, Any], bool]:
    """The request holding this key stopped after naming `held.owner` and before any answer
    was recorded: ask that provider again, same provider key, and no other one, ever."""
    owner = held.owner
    assert owner is not None
    request = payment_request(held, owner, body)
    secret = rt.config.payment_id_secret
    state = rt.providers.get(owner)
    attempts: list[Attempt] = []
    result = None
    if state is not None:
        try:
            result = await create_once(gw, state, request)
            attempts.append(Attempt(owner, "ok"))
        except AttemptFailed as failed:
            attempts.append(Attempt(owner, failed.outcome, failed.provider_code))
    if result is None:
        record = new_record(
            held, request, owner, status="processing", provider_reference=None,
            next_action=None, attempts=attempts, id_secret=secret,
        )
        await finish(gw, held, 202, record, owner=owner, unknown=True)
        return 202, record.to_api(), True
    record = new_record(
        held, request, owner, status=result.status, provider_reference=result.provider_reference,
        next_action=result.next_action, attempts=attempts, id_secret=secret,
    )
    await finish(gw, held, 201, record, owner=None, unknown=False)
    return 201, record.to_api(), True


async def resolve_unknown(
    gw: Gateway,
    rt: Runtime,
    client_id: str,
    key: str,
    body: dict[str, Any],
    claim: ClaimRecord,
) -> tuple[int, dict[str, Any], bool]:
    """A replay of a payment answered 202: learn its outcome from its owner, same key.

    The provider dedupes on the key, so this can only learn the outcome, never charge again,
    and no other provider is ever asked. What the ledger learnt meanwhile (a webhook, a
    read-back) is kept: statuses only move forward.
    """
    owner = claim.owner
    assert owner is not None
    stored: dict[str, Any] = claim.answer
    try:
        payment = await gw.ledger.payment(claim.payment_id) if claim.payment_id else None
    except LedgerUnavailable:
        return 202, stored, True
    if payment is not None and (payment.provider_reference or payment.status != "processing"):
        return await settled(gw, client_id, key, payment)  # a webhook or a read-back knew
    state = rt.providers.get(owner)
    if state is None or payment is None:
        return 202, stored, True
    request = payment_request(Claimed(client_id, key, claim.fingerprint, ""), owner, body)
    try:
        result = await create_once(gw, state, request)
    except AttemptFailed:
        return 202, payment.to_api(), True

    def learn(current: PaymentRecord) -> tuple[PaymentRecord, None]:
        status = advance(current.status, result.status)
        action = result.next_action.to_dict() if result.next_action else current.next_action
        return current.replace(
            status=status,
            provider_reference=current.provider_reference or result.provider_reference,
            next_action=action_for(status, action),
            attempts=(*current.attempts, Attempt(owner, "ok").to_dict()),
        ), None

    try:
        changed = await gw.ledger.update_payment(payment.payment_id, learn, source="replay")
    except LedgerUnavailable:
        return 201, learn(payment)[0].to_api(), True
    if changed is None:
        return 202, payment.to_api(), True
    return await settled(gw, client_id, key, changed[1])


async def settled(
    gw: Gateway, client_id: str, key: str, payment: PaymentRecord
) -> tuple[int, dict[str, Any], bool]:
    answer = payment.to_api()
    try:
        await gw.ledger.settle_unknown(client_id, key, answer)
    except LedgerUnavailable as exc:
        log.error("replay answer not recorded", extra={"error": str(exc)})
    return 201, answer, True
