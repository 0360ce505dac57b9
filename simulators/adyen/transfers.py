"""Payouts: the Transfers API (`POST /btl/v4/transfers`) and its signed transfer webhooks.

A transfer of category ``bank`` from a balance account to a counterparty bank account (IBAN
and holder name) answers 200 with the Transfer, status ``received`` (Idempotency-Key as for
payments; the same key with another body is 409 "704"). Errors are problem details
(`{type, title, status, detail, errorCode}`), as the Balance Platform answers them.
`POST /_sim/transfers/{id}/complete` with `{"status": "booked" | "failed" | "returned"}`
moves it and POSTs a `balancePlatform.transfer.updated` webhook to `webhook_url`, signed in
the ``HmacSignature`` header (base64 HMAC-SHA256 of the raw body with `hmac_key`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import string
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from simulators.adyen.api import replayed
from simulators.adyen.state import STATE, AdyenState, SimTransfer, StoredAnswer

TRANSFERS_PATH = "/btl/v4/transfers"
TRANSFER_OUTCOMES = ("booked", "failed", "returned")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_ID_ALPHABET = string.ascii_uppercase + string.digits


def _problem(status: int, code: str, title: str, detail: str) -> web.Response:
    body = {
        "type": "https://docs.adyen.com/errors/validation" if status == 422
        else "https://docs.adyen.com/errors/security",
        "title": title,
        "status": status,
        "detail": detail,
        "errorCode": code,
    }
    return web.json_response(body, status=status, content_type="application/problem+json")


def _counterparty_iban(body: dict[str, Any]) -> str | None:
    counterparty = body.get("counterparty")
    account = counterparty.get("bankAccount") if isinstance(counterparty, dict) else None
    if not isinstance(account, dict):
        return None
    holder = account.get("accountHolder")
    ident = account.get("accountIdentification")
    if not isinstance(holder, dict) or not isinstance(holder.get("fullName"), str):
        return None
    if not isinstance(ident, dict) or ident.get("type") != "iban":
        return None
    iban = ident.get("iban")
    return iban if isinstance(iban, str) and _IBAN.match(iban) else None


async def create_transfer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.headers.get("X-API-Key") != state.api_key:
        return _problem(401, "00_401", "Unauthorized", "Not authorized to access this service.")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return _problem(422, "30_001", "Invalid request", "The request body is not JSON.")
    amount = body.get("amount")
    value = amount.get("value") if isinstance(amount, dict) else None
    currency = amount.get("currency") if isinstance(amount, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return _problem(422, "30_112", "Invalid transfer information provided",
                        "amount.value must be a positive integer")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        return _problem(422, "30_112", "Invalid transfer information provided",
                        "amount.currency is not a currency code")
    account = body.get("balanceAccountId")
    iban = _counterparty_iban(body)
    if body.get("category") != "bank" or not isinstance(account, str) or iban is None:
        return _problem(422, "30_112", "Invalid transfer information provided",
                        "a bank transfer needs balanceAccountId and a counterparty bankAccount "
                        "with accountHolder.fullName and an IBAN")
    key = request.headers.get("Idempotency-Key")
    again = replayed(state, key, body)
    if again is not None:
        return again
    reference = body.get("reference")
    transfer = SimTransfer(
        id="".join(secrets.choice(_ID_ALPHABET) for _ in range(16)),
        reference=reference if isinstance(reference, str) else "",
        value=value,
        currency=currency,
        balance_account_id=account,
        iban=iban,
    )
    state.transfers[transfer.id] = transfer
    answer = _transfer_object(transfer)
    if key is not None:
        state.idempotency[key] = StoredAnswer(body=body, status=200, answer=answer)
    return web.json_response(answer, headers={"Idempotency-Key": key} if key else {})


def _transfer_object(transfer: SimTransfer) -> dict[str, Any]:
    return {
        "id": transfer.id,
        "amount": {"value": transfer.value, "currency": transfer.currency},
        "balanceAccount": {"id": transfer.balance_account_id},
        "category": "bank",
        "direction": "outgoing",
        "reference": transfer.reference,
        "status": transfer.status,
        "sequenceNumber": transfer.sequence,
    }


def sign_body(hmac_key: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(hmac_key, body, hashlib.sha256).digest()).decode()


async def complete_transfer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        data = await request.json()
    except ValueError:
        data = None
    status = data.get("status") if isinstance(data, dict) else None
    if status not in TRANSFER_OUTCOMES:
        return web.json_response(
            {"error": f"status must be one of {', '.join(TRANSFER_OUTCOMES)}"}, status=400
        )
    transfer = state.transfers.get(request.match_info["id"])
    if transfer is None:
        return web.json_response({"error": "no such transfer"}, status=404)
    transfer.status = status
    transfer.sequence += 1
    webhook = {
        "data": _transfer_object(transfer),
        "environment": "test",
        "timestamp": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "type": "balancePlatform.transfer.updated",
    }
    delivery = await _deliver(state, webhook) if state.webhook_url else None
    return web.json_response({"transfer": transfer.to_dict(), "webhook": webhook,
                              "delivery": delivery})


async def _deliver(state: AdyenState, webhook: dict[str, Any]) -> dict[str, Any]:
    assert state.webhook_url is not None and state.session is not None
    body = json.dumps(webhook).encode()
    headers = {"Content-Type": "application/json"}
    if state.hmac_key is not None:
        headers["HmacSignature"] = sign_body(state.hmac_key, body)
    record: dict[str, Any] = {"webhook": webhook, "status": None, "body": None,
                              "accepted": False, "error": None}
    try:
        async with state.session.post(state.webhook_url, data=body, headers=headers) as resp:
            text = await resp.text()
            record.update(status=resp.status, body=text[:1000])
            record["accepted"] = resp.status == 200 and text.strip() == "[accepted]"
    except (aiohttp.ClientError, TimeoutError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    state.webhooks.append(record)
    return {key: record[key] for key in ("status", "body", "accepted", "error")}
