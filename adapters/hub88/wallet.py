"""Hub88's seamless wallet: the callbacks Hub88 sends to the operator, and their answers.

Hub88 POSTs JSON to `<wallet url>/user/info`, `/user/balance`, `/transaction/bet`,
`/transaction/win` and `/transaction/rollback`, each signed with Hub88's own key:
`X-Hub88-Signature` = base64(RSA-SHA256 PKCS#1 v1.5 over the raw body), checked here with
Hub88's public key. Amounts are integers of value x 100000 in every currency.

The operator answers HTTP 200 with `{user, status, request_uuid, currency, balance}`, where
`status` is `RS_OK` or one of the `RS_ERROR_*` codes. Hub88 signs its requests, not the
operator's wallet answers (its Wallet API reference documents the header on requests
only), so answers go unsigned: an RSA signature would cost more than the rest of a bet.

Hub88 rolls a bet back after any answer but `RS_OK`, `RS_ERROR_NOT_ENOUGH_MONEY` and
`RS_ERROR_LIMIT_REACHED`, and retries a win until it gets `RS_OK`; `RS_ERROR_UNKNOWN` is
therefore the answer for anything the gateway could not settle (a backend timeout).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.money import HUB88_SCALE, MoneyError, exponent, from_hub88_units
from adapters.wallet import (
    Operation,
    Outcome,
    WalletCall,
    WalletOutcome,
    WalletRefused,
    WalletRequest,
)

SIGNATURE_HEADER = "X-Hub88-Signature"

PATHS: dict[str, Operation] = {
    "/user/info": "balance",
    "/user/balance": "balance",
    "/transaction/bet": "debit",
    "/transaction/win": "credit",
    "/transaction/rollback": "rollback",
}

STATUSES: dict[Outcome, str] = {
    "ok": "RS_OK",
    "insufficient_funds": "RS_ERROR_NOT_ENOUGH_MONEY",
    "player_blocked": "RS_ERROR_USER_DISABLED",
    "limit_reached": "RS_ERROR_LIMIT_REACHED",
    "invalid_session": "RS_ERROR_INVALID_TOKEN",
    # Hub88 has no code for an unknown user: its token cannot name a session then either.
    "unknown_player": "RS_ERROR_INVALID_TOKEN",
    "wrong_currency": "RS_ERROR_WRONG_CURRENCY",
    "duplicate_transaction": "RS_ERROR_DUPLICATE_TRANSACTION",
    "rolled_back": "RS_ERROR_TRANSACTION_ROLLED_BACK",
    "invalid_signature": "RS_ERROR_INVALID_SIGNATURE",
    "invalid_request": "RS_ERROR_UNKNOWN",
    "invalid_amount": "RS_ERROR_UNKNOWN",
    "unavailable": "RS_ERROR_UNKNOWN",
}

# Hub88 reads the balance of these answers; the others carry it when it is known.
_NEEDS_BALANCE = frozenset({"ok", "insufficient_funds"})


class Hub88Wallet:
    """Verifies and parses Hub88's wallet callbacks; renders the operator's answers."""

    uses_paths = True  # a path per action, under the wallet URL
    window_s = 0.0  # Hub88 signs no timestamp: a replay is an identical retry

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self._public_key = public_key

    def __repr__(self) -> str:
        return "Hub88Wallet()"

    def parse(
        self, path: str, headers: Mapping[str, str], body: bytes, now: float
    ) -> WalletRequest:
        """The verified callback at `path` (one of PATHS), or WalletRefused."""
        operation = PATHS.get(path)
        data = _json(body)
        echo = _echo(data)
        if not self._verified(headers.get(SIGNATURE_HEADER), body):
            raise WalletRefused("invalid_signature", "X-Hub88-Signature does not verify", echo)
        if operation is None:
            raise WalletRefused("invalid_request", f"unknown wallet path {path!r}", echo)
        if data is None:
            raise WalletRefused("invalid_request", "the body is not a JSON object", echo)
        call = _call(operation, path, data, echo)
        return WalletRequest(action=path, calls=(call,), echo=echo)

    def _verified(self, encoded: str | None, body: bytes) -> bool:
        if not encoded:
            return False
        try:
            signature = base64.b64decode(encoded, validate=True)
            self._public_key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True

    def answer(
        self, action: str, echo: Mapping[str, str], outcome: WalletOutcome
    ) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) of the answer Hub88 expects."""
        answer: dict[str, Any] = {
            "user": echo.get("user", ""),
            "status": STATUSES[outcome.outcome],
            "request_uuid": echo.get("request_uuid", ""),
        }
        if action != "/user/info" and outcome.balance is not None and outcome.currency:
            answer["currency"] = outcome.currency
            answer["balance"] = to_units(outcome.balance, outcome.currency)
        elif outcome.outcome in _NEEDS_BALANCE and action != "/user/info":
            answer["currency"] = echo.get("currency", "")
            answer["balance"] = 0
        return 200, "application/json", orjson.dumps(answer)


def to_units(minor: int, currency: str) -> int:
    """Minor units -> Hub88 units (EUR 356 minor -> 356000), exactly."""
    return minor * (HUB88_SCALE // 10 ** exponent(currency))


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _echo(data: dict[str, Any] | None) -> dict[str, str]:
    """What every answer repeats, as far as the body has it (even an unverified one)."""
    if data is None:
        return {}
    return {
        key: value
        for key in ("user", "request_uuid", "currency")
        if isinstance(value := data.get(key), str) and len(value) <= 256
    }


def _call(
    operation: Operation, path: str, data: dict[str, Any], echo: dict[str, str]
) -> WalletCall:
    user = _text(data, "user", echo)
    request_uuid = _text(data, "request_uuid", echo)
    if operation == "balance" and path == "/user/info":
        return WalletCall("balance", user, None, None, request_uuid)
    token = _text(data, "token", echo)
    currency = _text(data, "currency", echo)
    try:
        exponent(currency)
    except MoneyError:
        raise WalletRefused("wrong_currency", f"unknown currency {currency!r}", echo) from None
    if operation == "balance":
        return WalletCall("balance", user, currency, token, request_uuid)
    amount = None
    if operation != "rollback" or "amount" in data:
        amount = _amount(data.get("amount"), currency, echo)
    reference = data.get("reference_transaction_uuid")
    if operation == "rollback" and not (isinstance(reference, str) and reference):
        raise WalletRefused(
            "invalid_request", "a rollback names no reference_transaction_uuid", echo
        )
    round_id = data.get("round")
    game_code = data.get("game_code")
    return WalletCall(
        operation,
        user,
        currency,
        token,
        request_uuid,
        transaction_id=_text(data, "transaction_uuid", echo),
        amount=amount,
        round_id=round_id if isinstance(round_id, str) and round_id else None,
        round_closed=data.get("round_closed") is True,
        game_code=game_code if isinstance(game_code, str) and game_code else None,
        is_free=data.get("is_free") is True,
        reference_transaction_id=reference if isinstance(reference, str) and reference else None,
    )


def _text(data: dict[str, Any], key: str, echo: dict[str, str]) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > 256:
        raise WalletRefused("invalid_request", f"{key} must be a non-empty string", echo)
    return value


def _amount(value: Any, currency: str, echo: dict[str, str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WalletRefused("invalid_amount", "amount must be an integer of value x 100000", echo)
    if value < 0:
        raise WalletRefused("invalid_amount", "amount must not be negative", echo)
    try:
        return from_hub88_units(value, currency)
    except MoneyError:
        raise WalletRefused(
            "invalid_amount", f"{value} is not a whole number of {currency} minor units", echo
        ) from None


def load_public_key(name: str, value: Any) -> rsa.RSAPublicKey:
    """Hub88's public key (PEM), for `credentials.hub88_public_key`."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes) or not value.strip():
        raise ValueError(f"provider {name!r}: hub88_public_key must be an RSA public key in PEM")
    try:
        key = serialization.load_pem_public_key(value)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(
            f"provider {name!r}: hub88_public_key is not a readable PEM public key"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"provider {name!r}: hub88_public_key must be an RSA key")
    return key
