"""The seamless wallet over real sockets: the Hub88 and Slotegrator simulators play rounds
against the gateway's /wallet routes, and the reference casino wallet is the backend.

Every rule is shown for both aggregators; amounts in the rounds are the providers' own units
(Hub88 value x 100000, Slotegrator decimal strings), balances at the wallet minor units.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jsonschema
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateway.http.validation import openapi_document
from simulators.casino_wallet import STATE, Delay
from simulators.hub88 import generate_operator_keypair
from simulators.slotegrator import expected_sign
from simulators.stack import Stack, start_stack
from tests.conftest import ALL_SIMULATORS, GatewayUnderTest, MakeGateway
from tests.pg import create_database, drop_database

START = 100_000  # the reference wallet's player-42: EUR 1000.00


@pytest.fixture
async def stack(demo_secrets: Any) -> AsyncIterator[Stack]:
    s = await start_stack(demo_secrets, {**ALL_SIMULATORS, "wallet": 0}, per_page=8)
    yield s
    await s.close()


def wallet_config(stack: Stack, timeout_ms: int = 2000) -> dict[str, Any]:
    return {
        "providers": {
            "hub88": {
                "credentials": {
                    "operator_id": 1,
                    "private_key_env": "HUB88_PRIVATE_KEY",
                    "hub88_public_key_env": "HUB88_WALLET_PUBLIC_KEY",
                }
            }
        },
        "wallet": {
            "backend_url": f"{stack.url('wallet')}/wallet",
            "secret_env": "WALLET_SIGNING_SECRET",
            "timeout_ms": timeout_ms,
        },
    }


@dataclass(frozen=True)
class Provider:
    name: str
    session: dict[str, str]
    bet: Any  # one euro, in the provider's unit
    win: Any  # two and a half
    codes: dict[str, str]

    def code(self, answer: dict[str, Any]) -> str:
        if self.name == "hub88":
            return str(answer["status"])
        return str(answer.get("error_code", "OK"))

    def balance(self, answer: dict[str, Any]) -> int:
        """The answer's balance in minor units."""
        if self.name == "hub88":
            assert answer["balance"] % 1000 == 0
            return int(answer["balance"]) // 1000
        whole, _, cents = str(answer["balance"]).partition(".")
        return int(whole) * 100 + int((cents + "00")[:2])


HUB88 = Provider(
    "hub88",
    {"token": "tok-1", "user": "player-42", "currency": "EUR", "game_code": "pp_sweet_bonanza"},
    100_000,
    250_000,
    {
        "ok": "RS_OK",
        "duplicate": "RS_ERROR_DUPLICATE_TRANSACTION",
        "rolled_back": "RS_ERROR_TRANSACTION_ROLLED_BACK",
        "retry": "RS_ERROR_UNKNOWN",
        "funds": "RS_ERROR_NOT_ENOUGH_MONEY",
        "token": "RS_ERROR_INVALID_TOKEN",
        "signature": "RS_ERROR_INVALID_SIGNATURE",
    },
)
SLOTEGRATOR = Provider(
    "slotegrator",
    {"session_id": "tok-1", "player_id": "player-42", "currency": "EUR", "game_uuid": "g-1"},
    "1.00",
    "2.50",
    {
        "ok": "OK",
        "duplicate": "INTERNAL_ERROR",
        "rolled_back": "INTERNAL_ERROR",
        "retry": "INTERNAL_ERROR",
        "funds": "INSUFFICIENT_FUNDS",
        "token": "INTERNAL_ERROR",
        "signature": "INTERNAL_ERROR",
    },
)


@pytest.fixture(params=[HUB88, SLOTEGRATOR], ids=lambda p: p.name)
def provider(request: pytest.FixtureRequest) -> Provider:
    param: Provider = request.param
    return param


@pytest.fixture
async def gw(make_gateway: MakeGateway, stack: Stack) -> GatewayUnderTest:
    return await make_gateway(wallet_config(stack))


async def play(
    http: aiohttp.ClientSession,
    stack: Stack,
    gw: GatewayUnderTest,
    p: Provider,
    **round_: Any,
) -> list[dict[str, Any]]:
    body = {**p.session, "bet": p.bet, "win": p.win, **round_}
    body["wallet_url"] = f"{gw.url.rstrip('/')}/wallet/{p.name}"
    async with http.post(f"{stack.url(p.name)}/_sim/rounds", json=body) as response:
        assert response.status == 200, await response.text()
        calls: list[dict[str, Any]] = (await response.json())["calls"]
    for call in calls:
        assert call["status"] == 200, call  # every wallet answer is HTTP 200, errors too
    return calls


def balance(stack: Stack) -> int:
    return stack.servers["wallet"].app[STATE].players["player-42"].balance


def backend_calls(stack: Stack, operation: str) -> int:
    return stack.servers["wallet"].stats[f"/wallet/{operation}"]


async def test_a_round_moves_the_balance_by_the_bet_and_the_win(
    http: aiohttp.ClientSession, stack: Stack, gw: GatewayUnderTest, provider: Provider
) -> None:
    bet, win = await play(http, stack, gw, provider)
    assert (bet["action"], win["action"]) == ("bet", "win")
    assert provider.code(bet["answer"]) == provider.codes["ok"]
    assert provider.balance(bet["answer"]) == START - 100
    assert provider.code(win["answer"]) == provider.codes["ok"]
    assert provider.balance(win["answer"]) == START - 100 + 250
    assert balance(stack) == START + 150
    assert (backend_calls(stack, "debit"), backend_calls(stack, "credit")) == (1, 1)
    if provider.name == "hub88":
        assert bet["answer"]["request_uuid"] == bet["request"]["request_uuid"]
        assert bet["answer"]["user"] == "player-42" and bet["answer"]["currency"] == "EUR"
    else:
        assert bet["answer"]["transaction_id"] == f"slotegrator:{bet['request']['transaction_id']}"


async def test_a_retried_bet_is_answered_from_the_ledger(
    http: aiohttp.ClientSession, stack: Stack, gw: GatewayUnderTest, provider: Provider
) -> None:
    bet, retry, _win = await play(http, stack, gw, provider, fault="retry")
    assert retry["request"] == bet["request"]  # the same callback, sent again
    assert retry["answer"] == bet["answer"]
    assert backend_calls(stack, "debit") == 1  # the retry never reached the backend
    assert balance(stack) == START + 150
    metrics = await (await http.get(f"{gw.url.rstrip('/')}/metrics")).text()
    assert f'gateway_wallet_duplicates_total{{provider="{provider.name}"}} 1.0' in metrics


async def test_the_same_id_with_another_amount_is_refused(
    http: aiohttp.ClientSession, stack: Stack, gw: GatewayUnderTest, provider: Provider
) -> None:
    bet, duplicate = await play(http, stack, gw, provider, fault="duplicate_other_amount")
    assert provider.code(bet["answer"]) == provider.codes["ok"]
    assert provider.code(duplicate["answer"]) == provider.codes["duplicate"]
    assert backend_calls(stack, "debit") == 1
    assert balance(stack) == START - 100


async def test_a_rollback_before_its_bet_then_the_late_bet_is_refused(
    http: aiohttp.ClientSession, stack: Stack, gw: GatewayUnderTest, provider: Provider
) -> None:
    rollback, bet = await play(http, stack, gw, provider, fault="rollback_before_bet")
    assert provider.code(rollback["answer"]) == provider.codes["ok"]
    assert provider.balance(rollback["answer"]) == START
    assert provider.code(bet["answer"]) == provider.codes["rolled_back"]
    assert (backend_calls(stack, "debit"), backend_calls(stack, "rollback")) == (0, 0)
    assert balance(stack) == START


async def test_a_bet_whose_backend_timed_out_then_its_rollback_leaves_the_balance(
    http: aiohttp.ClientSession, stack: Stack, make_gateway: MakeGateway, provider: Provider
) -> None:
    gw = await make_gateway(wallet_config(stack, timeout_ms=300))
    # The backend debits, then answers after the gateway gave up on it.
    stack.servers["wallet"].app[STATE].delay = Delay("debit", delay_ms=1000, count=1)
    bet, rollback = await play(http, stack, gw, provider, fault="timeout_then_rollback")
    assert provider.code(bet["answer"]) == provider.codes["retry"]
    assert provider.code(rollback["answer"]) == provider.codes["ok"]
    assert backend_calls(stack, "rollback") == 1  # the unknown debit's rollback was sent on
    assert provider.balance(rollback["answer"]) == START
    assert balance(stack) == START


async def test_insufficient_funds_is_the_providers_code_with_the_balance(
    http: aiohttp.ClientSession, stack: Stack, gw: GatewayUnderTest, provider: Provider
) -> None:
    stack.servers["wallet"].app[STATE].players["player-42"].balance = 50
    [bet] = await play(http, stack, gw, provider)
    assert provider.code(bet["answer"]) == provider.codes["funds"]
    assert provider.balance(bet["answer"]) == 50
    assert balance(stack) == 50


async def test_an_expired_session_token_does_not_stop_a_win(
    http: aiohttp.ClientSession, stack: Stack, gw: GatewayUnderTest, provider: Provider
) -> None:
    stack.servers["wallet"].app[STATE].expired_tokens.add("tok-1")
    [refused_bet] = await play(http, stack, gw, provider)
    assert provider.code(refused_bet["answer"]) == provider.codes["token"]
    [win] = await play(http, stack, gw, provider, bet=None)  # a win alone (a free spin)
    assert provider.code(win["answer"]) == provider.codes["ok"]
    assert balance(stack) == START + 250


async def test_a_bad_signature_never_reaches_the_backend(
    http: aiohttp.ClientSession, stack: Stack, make_gateway: MakeGateway, provider: Provider
) -> None:
    _, other_public = generate_operator_keypair()
    gw = await make_gateway(
        wallet_config(stack),
        env={"HUB88_WALLET_PUBLIC_KEY": other_public, "SLOTEGRATOR_KEY": "another-key"},
    )
    [bet] = await play(http, stack, gw, provider)
    assert provider.code(bet["answer"]) == provider.codes["signature"]
    assert sum(stack.servers["wallet"].stats.values()) == 0
    metrics = await (await http.get(f"{gw.url.rstrip('/')}/metrics")).text()
    assert f'gateway_wallet_signature_failures_total{{provider="{provider.name}"}} 1.0' in metrics
    assert (
        f'gateway_wallet_requests_total{{operation="unknown",outcome="invalid_signature",'
        f'provider="{provider.name}"}} 1.0' in metrics
    )


# ---- Slotegrator's timestamp window and nonces; routes without keys or CORS ----------------


async def test_slotegrator_refuses_a_stale_timestamp_and_a_reused_nonce(
    http: aiohttp.ClientSession, stack: Stack, gw: GatewayUnderTest
) -> None:
    key = stack.secrets.slotegrator_key.encode()
    fields = {
        "action": "balance",
        "player_id": "player-42",
        "currency": "EUR",
        "session_id": "tok-1",
    }

    async def send(timestamp: float, nonce: str) -> dict[str, Any]:
        auth = {"X-Merchant-Id": "demo", "X-Timestamp": str(int(timestamp)), "X-Nonce": nonce}
        headers = {
            **auth,
            "X-Sign": expected_sign(key, {**fields, **auth}),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        async with http.post(
            f"{gw.url.rstrip('/')}/wallet/slotegrator", data=urlencode(fields), headers=headers
        ) as response:
            assert response.status == 200
            answer: dict[str, Any] = await response.json()
            return answer

    assert await send(time.time(), "n-1") == {"balance": "1000.00"}
    reused = await send(time.time(), "n-1")
    assert reused["error_code"] == "INTERNAL_ERROR"
    stale = await send(time.time() - 3600, "n-2")
    assert stale["error_code"] == "INTERNAL_ERROR"
    assert backend_calls(stack, "balance") == 1


async def test_wallet_routes_take_no_api_key_and_are_not_in_cors(
    http: aiohttp.ClientSession, stack: Stack, make_gateway: MakeGateway
) -> None:
    gw = await make_gateway(
        {
            **wallet_config(stack),
            "clients": [{"id": "web", "key_env": "WEB_API_KEY"}],
            "cors": {"allow_origins": ["https://casino.example"]},
        }
    )
    # No X-API-Key: the callback is refused for its signature, in Hub88's words, not a 401.
    async with http.post(
        f"{gw.url.rstrip('/')}/wallet/hub88/transaction/bet",
        json={"user": "player-42", "request_uuid": "r-1"},
    ) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "RS_ERROR_INVALID_SIGNATURE"
    async with http.options(
        f"{gw.url.rstrip('/')}/wallet/hub88/transaction/bet",
        headers={"Origin": "https://casino.example", "Access-Control-Request-Method": "POST"},
    ) as response:
        assert "Access-Control-Allow-Origin" not in response.headers
        assert response.status in (403, 405)
    for path in ("/wallet/stripe", "/wallet/hub88", "/wallet/slotegrator/transaction/bet"):
        async with http.post(f"{gw.url.rstrip('/')}{path}", data=b"x") as response:
            assert response.status == 404, path  # no wallet there
            assert response.content_type == "application/problem+json"


async def test_admin_lists_a_players_transactions_for_a_viewer(
    http: aiohttp.ClientSession, stack: Stack, make_gateway: MakeGateway
) -> None:
    changes = {
        **wallet_config(stack),
        "clients": [
            {"id": "web", "key_env": "WEB_API_KEY"},
            {"id": "support", "key_env": "SUPPORT_KEY", "roles": ["viewer"]},
        ],
    }
    gw = await make_gateway(changes, env={"SUPPORT_KEY": "support-key"})
    await gw.catalog_ready()  # game ids are made canonical from the catalog
    bet, win = await play(http, stack, gw, HUB88)
    url = f"{gw.url.rstrip('/')}/admin/wallet/transactions"
    viewer = {"X-API-Key": "support-key"}
    round_id = bet["request"]["round"]
    async with http.get(url, params={"player_id": "player-42"}, headers=viewer) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.json()
    rows = body["transactions"]
    assert {(r["transaction_id"], r["operation"], r["state"], r["amount"]) for r in rows} == {
        (bet["request"]["transaction_uuid"], "debit", "done", 100),
        (win["request"]["transaction_uuid"], "credit", "done", 250),
    }
    assert all(r["round_id"] == round_id and r["provider"] == "hub88" for r in rows)
    assert {r["game_id"] for r in rows} == {"pragmatic-play:sweet-bonanza"}  # canonical
    schema = {
        "$ref": "#/components/schemas/WalletTransactionList",
        "components": openapi_document()["components"],
    }
    jsonschema.Draft202012Validator(schema).validate(body)
    async with http.get(url, params={"round_id": "no-such-round"}, headers=viewer) as response:
        assert (await response.json()) == {"transactions": []}
    async with http.get(url, params={"player": "x"}, headers=viewer) as response:
        assert response.status == 400
    async with http.get(url, headers={"X-API-Key": stack.secrets.client_key}) as response:
        assert response.status == 403  # a frontend key
    async with http.get(url) as response:
        assert response.status == 401


def hub88_signed(stack: Stack, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A callback signed as Hub88 signs it (the test holds Hub88's key, as its simulator)."""
    key = serialization.load_pem_private_key(
        stack.secrets.hub88_wallet_private_pem.encode(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    body = json.dumps(payload).encode()
    signature = base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
    return body, {"X-Hub88-Signature": signature, "Content-Type": "application/json"}


async def test_hub88_balance_and_user_info_and_bad_amounts(
    http: aiohttp.ClientSession, stack: Stack, gw: GatewayUnderTest
) -> None:
    base = f"{gw.url.rstrip('/')}/wallet/hub88"

    async def call(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body, headers = hub88_signed(stack, payload)
        async with http.post(base + path, data=body, headers=headers) as response:
            assert response.status == 200
            answer: dict[str, Any] = await response.json()
            return answer

    balance = await call(
        "/user/balance",
        {
            "user": "player-42",
            "token": "tok-1",
            "request_uuid": "r-1",
            "currency": "EUR",
            "game_code": "pp_sweet_bonanza",
        },
    )
    assert balance == {
        "user": "player-42",
        "status": "RS_OK",
        "request_uuid": "r-1",
        "currency": "EUR",
        "balance": START * 1000,
    }
    info = await call("/user/info", {"user": "player-42", "request_uuid": "r-2"})
    assert info == {"user": "player-42", "status": "RS_OK", "request_uuid": "r-2"}
    bet = {
        "user": "player-42",
        "token": "tok-1",
        "currency": "EUR",
        "round": "x",
        "game_code": "pp_sweet_bonanza",
        "is_free": False,
        "round_closed": False,
    }
    for amount in (100_001, -100_000, "100000"):  # a fraction of a cent, negative, a string
        refused = await call(
            "/transaction/bet",
            {
                **bet,
                "amount": amount,
                "request_uuid": f"r-{amount}",
                "transaction_uuid": f"t-{amount}",
            },
        )
        assert refused["status"] == "RS_ERROR_UNKNOWN"
        assert refused["request_uuid"] == f"r-{amount}"
    assert backend_calls(stack, "debit") == 0  # none reached the backend
    assert backend_calls(stack, "balance") == 2
    metrics = await (await http.get(f"{gw.url.rstrip('/')}/metrics")).text()
    assert (
        'gateway_wallet_requests_total{operation="unknown",outcome="invalid_amount",'
        'provider="hub88"} 3.0'
    ) in metrics
    assert (
        'gateway_wallet_requests_total{operation="balance",outcome="ok",provider="hub88"} 2.0'
        in metrics
    )
    assert 'gateway_wallet_backend_duration_seconds_count{operation="balance"} 2.0' in metrics


async def test_the_reference_wallet_refuses_an_unsigned_call(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    body = json.dumps({"player_id": "player-42", "currency": "EUR"}).encode()
    for headers in ({}, {"X-Gateway-Signature": f"t={int(time.time())},v1=00"}):
        async with http.post(
            f"{stack.url('wallet')}/wallet/balance", data=body, headers=headers
        ) as response:
            assert response.status == 401


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = create_database()
    yield url
    drop_database(url)


async def test_the_ledger_rules_hold_on_postgres(
    http: aiohttp.ClientSession, stack: Stack, make_gateway: MakeGateway, postgres_url: str
) -> None:
    changes = {
        **wallet_config(stack),
        "ledger": {"backend": "postgres", "url_env": "WALLET_TEST_LEDGER_URL"},
    }
    gw = await make_gateway(changes, env={"WALLET_TEST_LEDGER_URL": postgres_url})
    for provider in (HUB88, SLOTEGRATOR):
        bet, retry, _win = await play(http, stack, gw, provider, fault="retry")
        assert retry["answer"] == bet["answer"]
        _rollback, late_bet = await play(http, stack, gw, provider, fault="rollback_before_bet")
        assert provider.code(late_bet["answer"]) == provider.codes["rolled_back"]
        _bet, duplicate = await play(http, stack, gw, provider, fault="duplicate_other_amount")
        assert provider.code(duplicate["answer"]) == provider.codes["duplicate"]
    # Per aggregator: the retried round's bet once, the duplicate's first bet once.
    assert backend_calls(stack, "debit") == 4
    assert balance(stack) == START + 2 * 150 - 2 * 100
