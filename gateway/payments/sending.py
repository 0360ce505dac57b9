"""What creating and replaying a payment share: the provider request, one call, the answer
recorded, and the problems told when the ledger or the key stands in the way."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from adapters.base import BankAccount, PaymentRequest, PaymentResult, ProviderError
from gateway.ledger.database import LedgerUnavailable
from gateway.ledger.payments import PaymentRecord
from gateway.payments import ids as payment_ids
from gateway.problems import ApiError
from gateway.upstream.calls import AttemptFailed, call_provider
from policies.idempotency import Claimed, LostClaim

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway
    from gateway.upstream.providers import ProviderState

log = logging.getLogger("gateway.payments")


def store_unavailable(exc: Exception) -> ApiError:
    log.error("payment refused: the ledger is unavailable", extra={"error": str(exc)})
    return ApiError(
        "idempotency_store_unavailable",
        "payments are paused while the ledger is unreachable; retry shortly",
        headers={"Retry-After": "1"},
    )


def in_progress() -> ApiError:
    return ApiError(
        "idempotency_conflict",
        "a request with this Idempotency-Key is still in progress; retry shortly",
        headers={"Retry-After": "1"},
    )


def payment_request(held: Claimed, provider: str, body: dict[str, Any]) -> PaymentRequest:
    account = body["method"].get("bank_account")
    return PaymentRequest(
        type=body["type"],
        amount=body["amount"],
        currency=body["currency"],
        player_id=body["player_id"],
        method_type=body["method"]["type"],
        return_url=body.get("return_url"),
        metadata=body.get("metadata", {}),
        reference=payment_ids.gateway_reference(held.client_id, held.key),
        idempotency_key=payment_ids.provider_idempotency_key(held.client_id, held.key, provider),
        country=body.get("country"),
        bank_account=BankAccount(account["iban"], account["holder_name"]) if account else None,
    )


async def create_once(
    gw: Gateway, state: ProviderState, request: PaymentRequest
) -> PaymentResult:
    adapter = state.adapter
    try:
        upstream_request = adapter.create_request(request)
    except ProviderError as exc:
        # Refused before sending (e.g. an operation this provider does not offer).
        raise AttemptFailed(
            state.name,
            "unsupported",
            exc.message,
            maybe_delivered=False,
            failover_safe=True,
            provider_code=exc.provider_code,
        ) from None

    def parse(response: Any) -> PaymentResult:
        result: PaymentResult = adapter.parse_create(response, request)
        return result

    return await call_provider(gw, state, "payments.create", upstream_request, parse)


async def finish(
    gw: Gateway,
    held: Claimed,
    status: int,
    payment: PaymentRecord,
    *,
    owner: str | None,
    unknown: bool,
) -> None:
    """Record the answer; a ledger that fails now must not lose the client's answer.

    The claim then still names its owner: after its lease a replay asks that provider again
    with the same provider key, which hands back this same payment.
    """
    try:
        await gw.ledger.finish(
            held, status, payment.to_api(), payment, owner=owner, unknown=unknown
        )
    except LedgerUnavailable as exc:
        log.error(
            "payment answered but not recorded",
            extra={"payment_id": payment.payment_id, "error": str(exc)},
        )
    except LostClaim:
        log.warning("payment not recorded: another request holds the key now")
