"""Creating a payment: idempotent, with double-charge-safe failover, recorded in the ledger.

The order of things is what makes a double charge impossible:

1. the key is claimed in the ledger (one holder per key, under a fence token);
2. before each provider is sent anything, the ledger durably records that this claim now
   targets that provider; if that write fails or the claim was lost, nothing is sent;
3. the next provider is tried only after an attempt that certainly took no money
   (`policies.failover`); an outcome that may have taken money ends in 202 `processing`
   with that provider as the owner, and a replay of the key asks that provider only;
4. the answer and the payment are recorded in one transaction.

The providers come in the order the route's rules give (`gateway.payments.routing`), and
a deposit a provider declined softly (no money taken) moves on to the next one when the
route cascades soft declines; a hard decline is the answer (`policies.failover`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from gateway.ledger.database import LedgerUnavailable
from gateway.ledger.payments import PaymentRecord
from gateway.payments.records import Attempt, new_record
from gateway.payments.replays import resolve_orphan, resolve_unknown
from gateway.payments.routing import route_of
from gateway.payments.sending import (
    create_once,
    finish,
    in_progress,
    payment_request,
    store_unavailable,
)
from gateway.problems import ApiError
from gateway.upstream.calls import AttemptFailed
from gateway.upstream.selection import Selection, no_provider
from policies.failover import Step, decline_step, payment_step
from policies.idempotency import (
    Claimed,
    LostClaim,
    Replay,
    Verdict,
    fingerprint,
    judge,
)
from policies.routing import Routed

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway, Runtime

log = logging.getLogger("gateway.payments")
WAIT_S = 10.0  # a double-click waits this long for the first request's answer
POLL_S = 0.05


class _Refused(Exception):
    """No provider may hold the payment: the key is freed and the client gets `error`."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.detail)
        self.error = error


async def create(
    gw: Gateway, rt: Runtime, client_id: str, idempotency_key: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any], bool]:
    """(HTTP status, Payment, replayed)."""
    fp = fingerprint(client_id, body)
    # Chosen before the claim, so the claim itself names the provider asked first: one
    # ledger write fewer on every payment.
    routed = route_of(rt, client_id, idempotency_key, body)
    selection = gw.selection(rt, "payments.create", order=routed.providers)
    candidates, unable = _able(gw, rt, selection.candidates, body)
    first = candidates[0] if candidates else None
    claim = await _claim(gw, client_id, idempotency_key, fp, first)
    if isinstance(claim, Replay):
        record = claim.record
        if record.unknown and record.owner:
            return await resolve_unknown(gw, rt, client_id, idempotency_key, body, record)
        gw.metrics.idempotent_replays.inc()
        return int(record.http_status or 200), record.answer, True
    if claim.owner is not None:
        return await resolve_orphan(gw, rt, claim, body)
    gw.metrics.payment_routing.labels(routed.rule).inc()
    attempts: list[Attempt] = []
    try:
        status, payment, owner = await _attempt_all(
            gw, rt, claim, body, attempts, selection, routed, candidates, unable
        )
    except _Refused as refused:
        try:
            await gw.ledger.abandon(claim, [a.to_dict() for a in attempts])
        except (LedgerUnavailable, LostClaim) as exc:
            # The claim lapses after its lease; its owner (if any) refused for certain.
            log.error("idempotency claim not released", extra={"error": str(exc)})
        raise refused.error from None
    await finish(gw, claim, status, payment, owner=owner, unknown=status == 202)
    return status, payment.to_api(), False


# ---- the claim -------------------------------------------------------------------------


async def _claim(
    gw: Gateway, client_id: str, key: str, fp: str, first: str | None
) -> Claimed | Replay:
    """Claim the key, or the answer to replay; a request arriving while another holds the
    key waits for it (up to WAIT_S), so a double-clicked deposit gets the first answer."""
    deadline = time.monotonic() + WAIT_S
    lease_s = gw.ledger.settings.claim_lease_s
    try:
        while True:
            outcome = await gw.ledger.claim(client_id, key, fp, first)
            if isinstance(outcome, Claimed | Replay):
                return outcome
            if outcome.reason == "different_body":
                raise ApiError(
                    "idempotency_conflict",
                    "this Idempotency-Key was used with a different request",
                )
            # In progress elsewhere: watch it with reads, claim again only when it changed.
            while True:
                if time.monotonic() >= deadline:
                    raise in_progress()
                await asyncio.sleep(POLL_S)
                current = await gw.ledger.claim_record(client_id, key)
                if judge(current, fp, time.time(), lease_s=lease_s) is not Verdict.WAIT:
                    break
    except LedgerUnavailable as exc:
        raise store_unavailable(exc) from None


# ---- sending -------------------------------------------------------------------------


async def _stamp(gw: Gateway, held: Claimed, provider: str) -> None:
    """The ledger says where the money is going before it goes; else nothing is sent."""
    try:
        await gw.ledger.stamp_owner(held, provider)
    except LedgerUnavailable as exc:
        raise _Refused(store_unavailable(exc)) from None
    except LostClaim:
        raise _Refused(in_progress()) from None


async def _attempt_all(
    gw: Gateway,
    rt: Runtime,
    held: Claimed,
    body: dict[str, Any],
    attempts: list[Attempt],
    selection: Selection,
    routed: Routed,
    candidates: tuple[str, ...],
    unable: list[tuple[str, str]],
) -> tuple[int, PaymentRecord, str | None]:
    if not selection.candidates:
        raise _Refused(no_provider("payments.create", selection))
    if not candidates:
        raise _Refused(_nobody_takes(body, unable))
    failures: list[AttemptFailed] = []
    secret = rt.config.payment_id_secret
    route = rt.config.routes["payments.create"]
    cascade = route.cascade_soft_declines and body["type"] == "deposit"
    rule = routed.rule
    for i, name in enumerate(candidates):
        state = rt.providers[name]
        request = payment_request(held, name, body)
        retries_left = rt.config.payment_retries
        owned = False  # may an earlier attempt here have taken the money?
        has_next = i + 1 < len(candidates)
        if not (i == 0 and held.stamped == name):
            await _stamp(gw, held, name)
        while True:
            try:
                result = await create_once(gw, state, request)
            except AttemptFailed as failed:
                failures.append(failed)
                attempts.append(
                    Attempt(name, failed.outcome, failed.provider_code, rule, failed.decline)
                )
                step = payment_step(
                    succeeded=False,
                    maybe_delivered=failed.maybe_delivered,
                    failover_safe=failed.failover_safe,
                    retry_same=failed.retry_same,
                    retries_left=retries_left,
                    owned=owned,
                    final=failed.final,
                    cascade=cascade and failed.decline == "soft" and has_next,
                )
                owned = owned or (failed.maybe_delivered and not failed.failover_safe)
                if failed.decline is not None:
                    _count_decline(gw, name, failed.decline, step)
                if step is Step.RETRY_SAME:
                    retries_left -= 1
                    continue
                if step is Step.UNKNOWN:
                    record = new_record(
                        held, request, name, status="processing", provider_reference=None,
                        next_action=None, attempts=attempts, id_secret=secret,
                    )
                    return 202, record, name
                if step is Step.REJECT:
                    raise _Refused(_rejected(failed)) from None
                if has_next:
                    gw.metrics.failovers.labels("payments.create", name, candidates[i + 1]).inc()
                break
            declined = result.status == "failed"
            if declined:
                attempts.append(
                    Attempt(name, "declined", result.decline_code, rule, result.decline)
                )
                # A definite decline took no money: a soft one may go on (policies.failover).
                step = decline_step(result.decline, cascade_soft_declines=cascade and has_next)
                if result.decline is not None:
                    _count_decline(gw, name, result.decline, step)
                if step is Step.FAILOVER:
                    gw.metrics.failovers.labels("payments.create", name, candidates[i + 1]).inc()
                    break
            else:
                attempts.append(Attempt(name, "ok", None, rule))
            record = new_record(
                held, request, name, status=result.status,
                provider_reference=result.provider_reference, next_action=result.next_action,
                attempts=attempts, id_secret=secret,
            )
            return 201, record, None
    raise _Refused(_all_failed(failures))


def _count_decline(gw: Gateway, provider: str, decline: str, step: Step) -> None:
    cascaded = "true" if step is Step.FAILOVER else "false"
    gw.metrics.payment_declines.labels(provider, decline, cascaded).inc()


def _able(
    gw: Gateway, rt: Runtime, names: tuple[str, ...], body: dict[str, Any]
) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """The providers that can take this kind of payment, and why the others cannot.

    A provider that cannot is never sent the payment (its refusal is the gateway's own
    knowledge, declared by its adapter), and the skip is counted."""
    able: list[str] = []
    unable: list[tuple[str, str]] = []
    for name in names:
        spec = rt.providers[name].config.spec
        refusal = spec.refusal(body["type"], body["method"]["type"], body["currency"])
        if refusal is None:
            able.append(name)
        else:
            unable.append((name, refusal))
            gw.metrics.provider_skips.labels(name, "unsupported").inc()
    return tuple(able), unable


def _nobody_takes(body: dict[str, Any], unable: list[tuple[str, str]]) -> ApiError:
    what = f"{body['type']} by {body['method']['type']} in {body['currency']}"
    reasons = "; ".join(f"{name} {why}" for name, why in unable)
    if body["type"] == "withdrawal":
        return ApiError(
            "unsupported_withdrawal_method",
            f"no provider of this route can pay out a {what}: {reasons}",
            provider_code="unsupported_payment_method",
        )
    return ApiError(
        "provider_rejected",
        f"no provider of this route takes a {what}: {reasons}",
        provider_code="unsupported_payment_method",
    )


# ---- what to tell the client when no provider holds the payment ----------------------------


def _rejected(failed: AttemptFailed) -> ApiError:
    return ApiError(
        "provider_rejected",
        failed.public_detail,
        provider=failed.provider,
        provider_code=failed.provider_code,
    )


def _all_failed(failures: list[AttemptFailed]) -> ApiError:
    """Every provider failed and none may hold the payment: what to tell the client."""
    if all(f.outcome == "unsupported" for f in failures):
        return ApiError(
            "provider_rejected",
            "no provider of this route takes this payment: "
            + "; ".join(f.public_detail for f in failures),
            provider=failures[-1].provider,
            provider_code=failures[-1].provider_code,
        )
    refusals = [f for f in failures if f.outcome == "rejected" and f.status != 429]
    if refusals:
        return _rejected(refusals[-1])
    if all(
        f.skipped or f.outcome in ("refused", "timeout", "rejected", "unsupported")
        for f in failures
    ):
        retry = max(1, round(min((f.retry_after_s or 1) for f in failures)))
        return ApiError(
            "no_provider_available",
            "no payment provider could take the payment: "
            + "; ".join(f"{f.provider} {f.outcome}" for f in failures),
            headers={"Retry-After": str(retry)},
            extra={"retry_after_s": retry},
        )
    last = failures[-1]
    return ApiError(
        "provider_unavailable",
        last.public_detail,
        provider=last.provider,
        provider_code=last.provider_code,
    )
