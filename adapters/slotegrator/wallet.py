"""Slotegrator's seamless wallet: the callbacks it POSTs to the merchant, and their answers.

Every callback is one URL, form-encoded, with `action` = balance | bet | win | refund |
rollback, signed like the merchant's own calls: `X-Merchant-Id`, `X-Timestamp`, `X-Nonce`
and `X-Sign` (`adapters.slotegrator.signing`) over the form fields merged with those three
headers. A timestamp outside `window_s` of the gateway's clock is refused here; a nonce
seen before is refused by the caller, which keeps the nonces (this module keeps nothing).

Amounts are decimal strings in the currency's unit ("1.50" EUR is 150 minor units); one
with more decimals than the currency has is refused, never rounded. `refund` reverses the
bet named in `bet_transaction_id`; `rollback` reverses each of `rollback_transactions[]`.

Every answer is HTTP 200: `{"balance", "transaction_id"}` (the balance as a decimal
string), or `{"error_code", "error_description"}` with `INSUFFICIENT_FUNDS` (with the
balance) or `INTERNAL_ERROR`, which Slotegrator retries or rolls back.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import orjson

from adapters.money import MoneyError, exponent, from_decimal, to_decimal
from adapters.slotegrator.signing import sign
from adapters.wallet import (
    Operation,
    Outcome,
    WalletCall,
    WalletOutcome,
    WalletRefused,
    WalletRequest,
)

ACTIONS: dict[str, Operation] = {
    "balance": "balance",
    "bet": "debit",
    "win": "credit",
    "refund": "rollback",
    "rollback": "rollback",
}
ERROR_CODES: dict[Outcome, str] = {"insufficient_funds": "INSUFFICIENT_FUNDS"}
DESCRIPTIONS: dict[Outcome, str] = {
    "insufficient_funds": "Insufficient funds",
    "player_blocked": "Player is blocked",
    "limit_reached": "Limit reached",
    "invalid_session": "Invalid session",
    "unknown_player": "Unknown player",
    "wrong_currency": "Wrong currency",
    "duplicate_transaction": "Transaction id already used with other details",
    "rolled_back": "Transaction was rolled back",
    "invalid_signature": "Invalid signature",
    "invalid_request": "Invalid request",
    "invalid_amount": "Invalid amount",
    "unavailable": "Temporary error, retry",
}
WINDOW_S = 60.0
_ROLLBACK_ITEM = re.compile(r"rollback_transactions\[(\d{1,3})\]\[([a-z_]{1,32})\]")
_HEADERS = ("X-Merchant-Id", "X-Timestamp", "X-Nonce")


class SlotegratorWallet:
    """Verifies and parses Slotegrator's wallet callbacks; renders the merchant's answers."""

    uses_paths = False  # one URL; the action is a form field

    def __init__(self, merchant_id: str, merchant_key: bytes, window_s: float = WINDOW_S) -> None:
        self.merchant_id = merchant_id
        self._merchant_key = merchant_key
        self.window_s = window_s

    def __repr__(self) -> str:
        return f"SlotegratorWallet(merchant_id={self.merchant_id!r})"

    def parse(
        self, path: str, headers: Mapping[str, str], body: bytes, now: float
    ) -> WalletRequest:
        """The verified callback, or WalletRefused. `path` is "" (one URL for every action)."""
        fields = _form(body)
        action = (fields or {}).get("action", "")
        if fields is None or not self._verified(headers, fields, now):
            raise WalletRefused("invalid_signature", "X-Sign does not verify or is stale")
        operation = ACTIONS.get(action)
        if path or operation is None:
            raise WalletRefused("invalid_request", f"unknown action {action!r}")
        echo = {"action": action}
        calls = _calls(action, operation, fields)
        return WalletRequest(action=action, calls=calls, echo=echo, nonce=headers.get("X-Nonce"))

    def _verified(self, headers: Mapping[str, str], fields: dict[str, str], now: float) -> bool:
        auth = {name: headers.get(name, "") for name in _HEADERS}
        given = headers.get("X-Sign", "")
        if not all(auth.values()) or not given or auth["X-Merchant-Id"] != self.merchant_id:
            return False
        stamp = auth["X-Timestamp"]
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return False
        if abs(now - int(stamp)) > self.window_s:
            return False
        expected = sign(self._merchant_key, {**fields, **auth})
        return hmac.compare_digest(expected, given.lower())

    def answer(
        self, action: str, echo: Mapping[str, str], outcome: WalletOutcome
    ) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body): always 200, as Slotegrator expects."""
        answer: dict[str, Any]
        if outcome.ok:
            answer = {"balance": _balance(outcome)}
            if action != "balance" and outcome.transaction_id:
                answer["transaction_id"] = outcome.transaction_id
        else:
            answer = {
                "error_code": ERROR_CODES.get(outcome.outcome, "INTERNAL_ERROR"),
                "error_description": DESCRIPTIONS[outcome.outcome],
            }
            if outcome.balance is not None and outcome.currency:
                answer["balance"] = _balance(outcome)
        return 200, "application/json", orjson.dumps(answer)


def _balance(outcome: WalletOutcome) -> str:
    if outcome.balance is None or not outcome.currency:
        return "0"
    return str(to_decimal(outcome.balance, outcome.currency))


def _form(body: bytes) -> dict[str, str] | None:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    fields = dict(pairs)
    return fields if len(fields) == len(pairs) and len(fields) <= 200 else None


def _calls(action: str, operation: Operation, f: dict[str, str]) -> tuple[WalletCall, ...]:
    player = _text(f, "player_id")
    currency = _text(f, "currency")
    try:
        exponent(currency)
    except MoneyError:
        raise WalletRefused("wrong_currency", f"unknown currency {currency!r}") from None
    session = f.get("session_id") or None
    request_id = f.get("transaction_id") or f.get("session_id") or ""
    if operation == "balance":
        return (WalletCall("balance", player, currency, session, request_id),)
    transaction_id = _text(f, "transaction_id")
    common: dict[str, Any] = {
        "player_id": player,
        "currency": currency,
        "session_token": session,
        "request_id": transaction_id,
        "round_id": f.get("round_id") or None,
        "round_closed": f.get("finished", "") in ("1", "true"),
        "game_code": f.get("game_uuid") or None,
        "is_free": f.get("type", "") == "freespin",
    }
    if action in ("bet", "win"):
        return (
            WalletCall(
                operation,
                transaction_id=transaction_id,
                amount=_amount(f.get("amount"), currency),
                reference_transaction_id=f.get("bet_transaction_id") or None,
                **common,
            ),
        )
    if action == "refund":
        return (
            WalletCall(
                "rollback",
                transaction_id=transaction_id,
                amount=_amount(f.get("amount"), currency),
                reference_transaction_id=_text(f, "bet_transaction_id"),
                **common,
            ),
        )
    items = _rollback_items(f)
    if not items:
        raise WalletRefused("invalid_request", "a rollback names no rollback_transactions")
    return tuple(
        WalletCall(
            "rollback",
            # One ledger record per reversed transaction, each under an id of its own.
            transaction_id=transaction_id if len(items) == 1 else f"{transaction_id}/{ref}",
            amount=_amount(item.get("amount"), currency) if "amount" in item else None,
            reference_transaction_id=ref,
            **common,
        )
        for ref, item in items
    )


def _rollback_items(f: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    items: dict[int, dict[str, str]] = {}
    for key, value in f.items():
        if m := _ROLLBACK_ITEM.fullmatch(key):
            items.setdefault(int(m.group(1)), {})[m.group(2)] = value
    out = []
    for _, item in sorted(items.items()):
        ref = item.get("transaction_id", "")
        if not ref or len(ref) > 256:
            raise WalletRefused("invalid_request", "a rollback transaction has no transaction_id")
        out.append((ref, item))
    return out


def _text(f: dict[str, str], key: str) -> str:
    value = f.get(key, "")
    if not value or len(value) > 256:
        raise WalletRefused("invalid_request", f"{key} is missing")
    return value


def _amount(value: str | None, currency: str) -> int:
    if value is None or not value.strip():
        raise WalletRefused("invalid_amount", "amount is missing")
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise WalletRefused("invalid_amount", f"amount {value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise WalletRefused("invalid_amount", "amount must be a non-negative number")
    try:
        return from_decimal(number, currency)
    except MoneyError:
        raise WalletRefused(
            "invalid_amount", f"{value} is not a whole number of {currency} minor units"
        ) from None
