"""Standard notifications: moving a payment to an outcome (`complete`), building and signing
its NotificationRequestItem, POSTing it, and the automatic authorisation of new pending
payments (``auto_complete_s``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from simulators.adyen.state import (
    MODIFICATIONS,
    OUTCOMES,
    STATE,
    AdyenState,
    SimPayment,
    new_psp_reference,
)


def sign_notification(hmac_key: bytes, item: dict[str, Any]) -> str:
    """Adyen's HMAC of a NotificationRequestItem, from Adyen's webhook documentation."""
    amount = item["amount"]
    signed = [
        item["pspReference"],
        item.get("originalReference", ""),
        item["merchantAccountCode"],
        item["merchantReference"],
        str(amount["value"]),
        amount["currency"],
        item["eventCode"],
        item["success"],
    ]
    digest = hmac.new(hmac_key, ":".join(signed).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


async def complete(app: web.Application, psp: str, outcome: str) -> dict[str, Any]:
    """Move a payment on and send its notification; KeyError if unknown, ValueError if stuck."""
    state = app[STATE]
    payment = state.payments[psp]
    allowed, new_state, event_code, success = OUTCOMES[outcome]
    if payment.state not in allowed:
        raise ValueError(f"payment {psp} is {payment.state}; it cannot become {new_state}")
    payment.state = new_state
    item = notification_item(state, payment, event_code, success)
    delivery = await deliver_item(state, item) if state.webhook_url else None
    return {"payment": payment.to_dict(), "notification": item, "delivery": delivery}


def notification_item(
    state: AdyenState,
    payment: SimPayment,
    event_code: str,
    success: bool,
    *,
    psp_reference: str | None = None,
    value: int | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """A signed NotificationRequestItem about `payment`; a modification (a refund given by
    its own pspReference, value and reference) points at the payment it modifies."""
    item: dict[str, Any] = {
        "additionalData": {},
        "amount": {"value": payment.value if value is None else value,
                   "currency": payment.currency},
        "eventCode": event_code,
        "eventDate": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "merchantAccountCode": payment.merchant_account,
        "merchantReference": payment.reference if reference is None else reference,
        "paymentMethod": "visa" if payment.method_type == "scheme" else payment.method_type,
        "pspReference": payment.psp_reference,
        "reason": "" if success else "Refused",
        "success": "true" if success else "false",
    }
    if event_code in MODIFICATIONS:
        # A modification is its own transaction that points at the payment it modifies.
        item["originalReference"] = payment.psp_reference
        item["pspReference"] = psp_reference or new_psp_reference()
    if state.hmac_key is not None:
        item["additionalData"]["hmacSignature"] = sign_notification(state.hmac_key, item)
    return item


async def deliver_item(state: AdyenState, item: dict[str, Any]) -> dict[str, Any]:
    assert state.webhook_url is not None and state.session is not None
    notification = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
    record: dict[str, Any] = {"notification": notification, "status": None, "body": None,
                              "accepted": False, "error": None}
    try:
        async with state.session.post(state.webhook_url, json=notification) as response:
            text = await response.text()
            record.update(status=response.status, body=text[:1000])
            # Adyen counts a delivery as done only on the literal "[accepted]".
            record["accepted"] = response.status == 200 and text.strip() == "[accepted]"
    except (aiohttp.ClientError, TimeoutError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    state.webhooks.append(record)
    return {key: record[key] for key in ("status", "body", "accepted", "error")}


async def auto_complete(app: web.Application, psp: str, delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    if app[STATE].payments[psp].state == "pending":
        await complete(app, psp, "authorised")


def spawn(state: AdyenState, coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
