"""The wallet adapters: Hub88's and Slotegrator's callbacks verified, parsed, converted
exactly, and answered in each provider's own words."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.hub88.wallet import Hub88Wallet
from adapters.slotegrator.signing import sign
from adapters.slotegrator.wallet import SlotegratorWallet
from adapters.wallet import WalletOutcome, WalletRefused

HUB88_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = 1_700_000_000.0


def hub88_signed(
    payload: dict[str, Any], key: rsa.RSAPrivateKey = HUB88_KEY
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    signature = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return {"X-Hub88-Signature": base64.b64encode(signature).decode()}, body


def hub88_bet(**changes: Any) -> dict[str, Any]:
    return {
        "user": "player-1",
        "token": "tok-1",
        "request_uuid": "req-1",
        "transaction_uuid": "tx-1",
        "round": "round-1",
        "round_closed": False,
        "game_code": "pgp_sweetbonanza",
        "currency": "EUR",
        "amount": 356000,
        "is_free": False,
        **changes,
    }


@pytest.fixture
def hub88() -> Hub88Wallet:
    return Hub88Wallet(HUB88_KEY.public_key())


def test_hub88_bet_is_a_debit_in_minor_units(hub88: Hub88Wallet) -> None:
    headers, body = hub88_signed(hub88_bet())
    request = hub88.parse("/transaction/bet", headers, body, NOW)
    [call] = request.calls
    assert (call.operation, call.amount, call.currency, call.player_id) == (
        "debit",
        356,
        "EUR",
        "player-1",
    )
    assert (call.transaction_id, call.round_id, call.game_code, call.session_token) == (
        "tx-1",
        "round-1",
        "pgp_sweetbonanza",
        "tok-1",
    )
    assert request.echo == {"user": "player-1", "request_uuid": "req-1", "currency": "EUR"}


def test_hub88_amounts_convert_by_the_currency_exponent(hub88: Hub88Wallet) -> None:
    for currency, units, minor in (("JPY", 500_000, 5), ("KWD", 1_234_500, 12345)):
        headers, body = hub88_signed(hub88_bet(currency=currency, amount=units))
        assert hub88.parse("/transaction/bet", headers, body, NOW).calls[0].amount == minor


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        (356001, "fraction of a cent"),
        (-100000, "negative"),
        ("356000", "a string"),
        (3.56, "a float"),
        (True, "a boolean"),
    ],
)
def test_hub88_amounts_that_are_not_whole_minor_units_are_refused(
    hub88: Hub88Wallet, amount: Any, why: str
) -> None:
    headers, body = hub88_signed(hub88_bet(amount=amount))
    with pytest.raises(WalletRefused) as refused:
        hub88.parse("/transaction/bet", headers, body, NOW)
    assert refused.value.outcome == "invalid_amount", why
    assert refused.value.echo["request_uuid"] == "req-1"


def test_hub88_signature_failures(hub88: Hub88Wallet) -> None:
    headers, body = hub88_signed(hub88_bet(), OTHER_KEY)
    for given_headers, given_body in (
        (headers, body),  # another key
        ({}, body),  # unsigned
        ({"X-Hub88-Signature": "not base64!"}, body),
        (hub88_signed(hub88_bet())[0], body.replace(b"356000", b"956000")),  # changed body
    ):
        with pytest.raises(WalletRefused) as refused:
            hub88.parse("/transaction/bet", given_headers, given_body, NOW)
        assert refused.value.outcome == "invalid_signature"


def test_hub88_bad_requests(hub88: Hub88Wallet) -> None:
    for path, payload, outcome in (
        ("/transaction/cashout", hub88_bet(), "invalid_request"),
        ("/transaction/bet", hub88_bet(transaction_uuid=None), "invalid_request"),
        ("/transaction/bet", hub88_bet(currency="EURO"), "wrong_currency"),
        ("/transaction/rollback", hub88_bet(), "invalid_request"),  # names no bet
    ):
        headers, body = hub88_signed(payload)
        with pytest.raises(WalletRefused) as refused:
            hub88.parse(path, headers, body, NOW)
        assert refused.value.outcome == outcome, path
    headers, body = hub88_signed(hub88_bet())
    headers["X-Hub88-Signature"] = base64.b64encode(
        HUB88_KEY.sign(b"[1]", padding.PKCS1v15(), hashes.SHA256())
    ).decode()
    with pytest.raises(WalletRefused) as refused:
        hub88.parse("/transaction/bet", headers, b"[1]", NOW)
    assert refused.value.outcome == "invalid_request"


def test_hub88_win_and_rollback_name_what_they_settle(hub88: Hub88Wallet) -> None:
    headers, body = hub88_signed(
        hub88_bet(transaction_uuid="w-1", reference_transaction_uuid="tx-1")
    )
    win = hub88.parse("/transaction/win", headers, body, NOW).calls[0]
    assert (win.operation, win.reference_transaction_id, win.amount) == ("credit", "tx-1", 356)
    rollback_body = hub88_bet(transaction_uuid="rb-1", reference_transaction_uuid="tx-1")
    del rollback_body["amount"]
    headers, body = hub88_signed(rollback_body)
    rollback = hub88.parse("/transaction/rollback", headers, body, NOW).calls[0]
    assert (rollback.operation, rollback.reference_transaction_id, rollback.amount) == (
        "rollback",
        "tx-1",
        None,
    )


def test_hub88_answers(hub88: Hub88Wallet) -> None:
    echo = {"user": "player-1", "request_uuid": "req-1", "currency": "EUR"}
    status, content_type, body = hub88.answer(
        "/transaction/bet", echo, WalletOutcome("ok", 1050, "EUR", "hub88:tx-1")
    )
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {
        "user": "player-1",
        "status": "RS_OK",
        "request_uuid": "req-1",
        "currency": "EUR",
        "balance": 1050000,
    }
    _, _, body = hub88.answer(
        "/transaction/bet", echo, WalletOutcome("insufficient_funds", 10, "EUR")
    )
    assert json.loads(body)["status"] == "RS_ERROR_NOT_ENOUGH_MONEY"
    assert json.loads(body)["balance"] == 10000
    for outcome, status_code in (
        ("duplicate_transaction", "RS_ERROR_DUPLICATE_TRANSACTION"),
        ("rolled_back", "RS_ERROR_TRANSACTION_ROLLED_BACK"),
        ("invalid_signature", "RS_ERROR_INVALID_SIGNATURE"),
        ("unavailable", "RS_ERROR_UNKNOWN"),
        ("invalid_amount", "RS_ERROR_UNKNOWN"),
        ("player_blocked", "RS_ERROR_USER_DISABLED"),
        ("wrong_currency", "RS_ERROR_WRONG_CURRENCY"),
    ):
        _, _, body = hub88.answer("/transaction/bet", echo, WalletOutcome(outcome))  # type: ignore[arg-type]
        answer = json.loads(body)
        assert answer["status"] == status_code
        assert answer["request_uuid"] == "req-1"


# ---- Slotegrator ---------------------------------------------------------------------------

KEY = b"merchant-key"


def slotegrator_signed(
    fields: dict[str, str], *, timestamp: float = NOW, nonce: str = "n-1", key: bytes = KEY
) -> tuple[dict[str, str], bytes]:
    auth = {"X-Merchant-Id": "demo", "X-Timestamp": str(int(timestamp)), "X-Nonce": nonce}
    return {**auth, "X-Sign": sign(key, {**fields, **auth})}, urlencode(fields).encode()


def slotegrator_bet(**changes: str) -> dict[str, str]:
    return {
        "action": "bet",
        "amount": "3.56",
        "currency": "EUR",
        "game_uuid": "g-1",
        "player_id": "player-1",
        "transaction_id": "tx-1",
        "session_id": "sess-1",
        "type": "bet",
        "round_id": "round-1",
        "finished": "0",
        **changes,
    }


@pytest.fixture
def slotegrator() -> SlotegratorWallet:
    return SlotegratorWallet("demo", KEY)


def test_slotegrator_bet_is_a_debit_in_minor_units(slotegrator: SlotegratorWallet) -> None:
    headers, body = slotegrator_signed(slotegrator_bet())
    request = slotegrator.parse("", headers, body, NOW)
    [call] = request.calls
    assert (call.operation, call.amount, call.currency, call.transaction_id) == (
        "debit",
        356,
        "EUR",
        "tx-1",
    )
    assert request.nonce == "n-1"


def test_slotegrator_refund_and_rollback(slotegrator: SlotegratorWallet) -> None:
    headers, body = slotegrator_signed(
        slotegrator_bet(action="refund", transaction_id="rf-1", bet_transaction_id="tx-1")
    )
    [refund] = slotegrator.parse("", headers, body, NOW).calls
    assert (refund.operation, refund.reference_transaction_id, refund.amount) == (
        "rollback",
        "tx-1",
        356,
    )
    fields = slotegrator_bet(action="rollback", transaction_id="rb-1")
    del fields["amount"]
    fields.update(
        {
            "rollback_transactions[0][action]": "bet",
            "rollback_transactions[0][transaction_id]": "tx-1",
            "rollback_transactions[0][amount]": "3.56",
            "rollback_transactions[1][action]": "win",
            "rollback_transactions[1][transaction_id]": "w-1",
            "rollback_transactions[1][amount]": "1.00",
        }
    )
    headers, body = slotegrator_signed(fields)
    calls = slotegrator.parse("", headers, body, NOW).calls
    assert [(c.transaction_id, c.reference_transaction_id, c.amount) for c in calls] == [
        ("rb-1/tx-1", "tx-1", 356),
        ("rb-1/w-1", "w-1", 100),
    ]


def test_slotegrator_signature_failures(slotegrator: SlotegratorWallet) -> None:
    fields = slotegrator_bet()
    for headers, body in (
        slotegrator_signed(fields, key=b"other-key"),
        slotegrator_signed(fields, timestamp=NOW - 61),  # stale
        slotegrator_signed(fields, timestamp=NOW + 61),  # from the future
        ({}, urlencode(fields).encode()),
        (slotegrator_signed(fields)[0], urlencode({**fields, "amount": "9.56"}).encode()),
    ):
        with pytest.raises(WalletRefused) as refused:
            slotegrator.parse("", headers, body, NOW)
        assert refused.value.outcome == "invalid_signature"
    headers, body = slotegrator_signed(fields, timestamp=NOW - 59)
    assert slotegrator.parse("", headers, body, NOW).calls[0].amount == 356


@pytest.mark.parametrize("amount", ["3.565", "-1.00", "abc", "", "NaN", "Infinity"])
def test_slotegrator_bad_amounts(slotegrator: SlotegratorWallet, amount: str) -> None:
    headers, body = slotegrator_signed(slotegrator_bet(amount=amount))
    with pytest.raises(WalletRefused) as refused:
        slotegrator.parse("", headers, body, NOW)
    assert refused.value.outcome == "invalid_amount"


def test_slotegrator_unknown_action_and_malformed_form(slotegrator: SlotegratorWallet) -> None:
    headers, body = slotegrator_signed(slotegrator_bet(action="jackpot"))
    with pytest.raises(WalletRefused) as refused:
        slotegrator.parse("", headers, body, NOW)
    assert refused.value.outcome == "invalid_request"
    with pytest.raises(WalletRefused) as refused:
        slotegrator.parse("", headers, b"\xff\xfe=1", NOW)
    assert refused.value.outcome == "invalid_signature"


def test_slotegrator_answers(slotegrator: SlotegratorWallet) -> None:
    ok = WalletOutcome("ok", 1050, "EUR", "slotegrator:tx-1")
    assert json.loads(slotegrator.answer("bet", {}, ok)[2]) == {
        "balance": "10.50",
        "transaction_id": "slotegrator:tx-1",
    }
    assert json.loads(slotegrator.answer("balance", {}, ok)[2]) == {"balance": "10.50"}
    status, _, body = slotegrator.answer("bet", {}, WalletOutcome("insufficient_funds", 5, "JPY"))
    assert status == 200
    assert json.loads(body) == {
        "error_code": "INSUFFICIENT_FUNDS",
        "error_description": "Insufficient funds",
        "balance": "5",
    }
    status, _, body = slotegrator.answer("bet", {}, WalletOutcome("unavailable"))
    assert status == 200 and json.loads(body)["error_code"] == "INTERNAL_ERROR"
