"""Player-scoped access: a player's token reaches that player's payments and events only.

Tokens are minted here as the casino backend would (PyJWT), with keys made at test time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import GatewayUnderTest, MakeGateway
from tests.integration.test_events import open_stream
from tests.wired import DEPOSIT, MakeWired, Wired

SECRET = "player-token-secret-" + uuid.uuid4().hex  # 52 bytes, over HS256's 32
AUDIENCE = "casino-gateway"
CLIENTS = {"clients": [{"id": "web", "key_env": "WEB_API_KEY"}]}


def tokens_config(**changes: Any) -> dict[str, Any]:
    block = {
        "algorithm": "HS256",
        "secret_env": "TEST_PLAYER_TOKEN_SECRET",
        "required": True,
        "audience": AUDIENCE,
        **changes,
    }
    return {**CLIENTS, "player_tokens": block}


def hs256_by_hand(claims: dict[str, Any], key: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def mint(player: str, *, key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    body = {"sub": player, "aud": AUDIENCE, "exp": int(time.time()) + 300, **claims}
    return jwt.encode(body, key, algorithm=algorithm)


@pytest.fixture(autouse=True)
def token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PLAYER_TOKEN_SECRET", SECRET)


@pytest.fixture
async def scoped(make_gateway: MakeGateway) -> GatewayUnderTest:
    return await make_gateway(tokens_config())


def headers(gw: GatewayUnderTest, token: str | None = None, **extra: str) -> dict[str, str]:
    out = {"X-API-Key": gw.stack.secrets.client_key, **extra}
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    return out


async def pay(gw: GatewayUnderTest, token: str | None, player: str) -> tuple[int, dict[str, Any]]:
    resp = await gw.client.post(
        "/v1/payments",
        json={**DEPOSIT, "player_id": player},
        headers=headers(gw, token, **{"Idempotency-Key": uuid.uuid4().hex}),
    )
    return resp.status, await resp.json()


async def test_a_player_pays_for_themself_only(scoped: GatewayUnderTest):
    status, body = await pay(scoped, mint("alice"), "alice")
    assert status == 201
    status, body = await pay(scoped, mint("alice"), "bob")
    assert (status, body["code"]) == (403, "forbidden")
    assert scoped.calls("stripe", "/v1/payment_intents") == 1


async def test_another_players_payment_is_404(scoped: GatewayUnderTest):
    _, alices = await pay(scoped, mint("alice"), "alice")
    path = f"/v1/payments/{alices['payment_id']}"
    own = await scoped.client.get(path, headers=headers(scoped, mint("alice")))
    assert own.status == 200
    other = await scoped.client.get(path, headers=headers(scoped, mint("bob")))
    assert other.status == 404
    assert (await other.json())["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/payments", DEPOSIT),
        ("GET", "/v1/payments/pay_x", None),
        ("POST", "/v1/games/netent:starburst/launch", {"mode": "real", "player_id": "alice",
                                                     "currency": "EUR"}),
        ("GET", "/v1/events?player_id=alice", None),
    ],
)
async def test_a_client_key_alone_is_refused_on_player_routes(
    scoped: GatewayUnderTest, method: str, path: str, body: Any
):
    extra = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}
    resp = await scoped.client.request(method, path, json=body, headers=headers(scoped, **extra))
    assert resp.status == 401
    problem = await resp.json()
    assert (problem["code"], problem["title"]) == ("unauthorized", "Unauthorized")
    assert scoped.calls("stripe", "/v1/payment_intents") == 0


async def test_games_are_not_player_routes(scoped: GatewayUnderTest):
    resp = await scoped.client.get("/v1/games", headers=headers(scoped))
    assert resp.status == 200


def _rsa_keys() -> tuple[Any, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


@pytest.mark.parametrize(
    "bad",
    ["expired", "other_secret", "other_audience", "alg_none", "no_exp", "garbage", "rs256"],
)
async def test_bad_tokens_are_401(scoped: GatewayUnderTest, bad: str):
    private, _ = _rsa_keys()
    token = {
        "expired": lambda: mint("alice", exp=int(time.time()) - 600),
        "other_secret": lambda: mint("alice", key="another-secret-of-more-than-32-bytes!!"),
        "other_audience": lambda: mint("alice", aud="someone-else"),
        "alg_none": lambda: jwt.encode(
            {"sub": "alice", "aud": AUDIENCE, "exp": int(time.time()) + 60}, None,
            algorithm="none",
        ),
        "no_exp": lambda: jwt.encode({"sub": "alice", "aud": AUDIENCE}, SECRET, algorithm="HS256"),
        "garbage": lambda: "not.a.token",
        "rs256": lambda: mint("alice", key=private, algorithm="RS256"),
    }[bad]()
    status, body = await pay(scoped, token, "alice")
    assert (status, body["code"]) == (401, "unauthorized")
    assert scoped.calls("stripe", "/v1/payment_intents") == 0


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_public_key_tokens_and_no_algorithm_confusion(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, algorithm: str
):
    if algorithm == "RS256":
        private, public = _rsa_keys()
    else:
        private = ec.generate_private_key(ec.SECP256R1())
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    monkeypatch.setenv("TEST_PLAYER_TOKEN_PUBLIC_KEY", public)
    gw = await make_gateway(
        tokens_config(algorithm=algorithm, secret_env=None,
                      public_key_env="TEST_PLAYER_TOKEN_PUBLIC_KEY")
        | {"player_tokens": {"algorithm": algorithm, "required": True, "audience": AUDIENCE,
                             "public_key_env": "TEST_PLAYER_TOKEN_PUBLIC_KEY"}}
    )
    status, _ = await pay(gw, mint("alice", key=private, algorithm=algorithm), "alice")
    assert status == 201
    # The public key used as an HMAC secret: the classic confusion attack. PyJWT will not
    # even sign such a token, so it is made by hand.
    forged = hs256_by_hand(
        {"sub": "alice", "aud": AUDIENCE, "exp": int(time.time()) + 60}, public.encode()
    )
    status, body = await pay(gw, forged, "alice")
    assert (status, body["code"]) == (401, "unauthorized")


async def test_optional_tokens_still_scope_when_sent(make_gateway: MakeGateway):
    gw = await make_gateway(tokens_config(required=False))
    status, _ = await pay(gw, None, "bob")
    assert status == 201  # no token: the client key alone, as before
    status, body = await pay(gw, mint("alice"), "bob")
    assert (status, body["code"]) == (403, "forbidden")


async def test_launch_names_the_tokens_player(scoped: GatewayUnderTest):
    body = {"mode": "real", "player_id": "bob", "currency": "EUR", "platform": "desktop",
            "session_token": "sess-1"}
    resp = await scoped.client.post(
        "/v1/games/netent:starburst/launch", json=body, headers=headers(scoped, mint("alice"))
    )
    assert resp.status == 403
    ok = await scoped.client.post(
        "/v1/games/netent:starburst/launch",
        json={**body, "player_id": "alice"},
        headers=headers(scoped, mint("alice")),
    )
    assert ok.status == 200, await ok.text()


# ---- events --------------------------------------------------------------------------------


async def _paid_and_settled(w: Wired, player: str) -> dict[str, Any]:
    payment = await w.pay(player_id=player, headers=_auth(w, mint(player)))
    await w.stripe_complete(payment["provider_reference"], "succeeded")
    return payment


def payment_events(blocks: list[dict[str, str]]) -> list[dict[str, str]]:
    """Data blocks that are events (a resume from the start may begin with `event: gap`)."""
    return [b for b in blocks if "event" not in b]


def _auth(w: Wired, token: str) -> dict[str, str]:
    return {"X-API-Key": w.stack.secrets.client_key, "Authorization": f"Bearer {token}"}


async def test_events_stream_only_the_tokens_player(
    make_wired: MakeWired, caplog: pytest.LogCaptureFixture
):
    w = await make_wired(tokens_config(), backend=False)
    alice = await _paid_and_settled(w, "alice")
    bob = await _paid_and_settled(w, "bob")
    key = {"X-API-Key": w.stack.secrets.client_key}
    # Another player's events, asked for by player: 403.
    resp = await w.client.get("/v1/events?player_id=bob", headers=_auth(w, mint("alice")))
    assert resp.status == 403
    # By payment id, from the beginning of history, with the token in the query
    # (EventSource sends no headers): bob's payment yields nothing for alice.
    token = mint("alice")
    with caplog.at_level(logging.DEBUG):
        async with open_stream(
            w, f"payment_id={bob['payment_id']}&last_event_id=0&access_token={token}", key
        ) as stream:
            assert payment_events(await stream.quiet(0.5)) == []
        async with open_stream(
            w, f"player_id=alice&last_event_id=0&access_token={token}", key
        ) as stream:
            seen = payment_events(await stream.quiet(0.8))
    payments = {json.loads(b["data"])["payment_id"] for b in seen}
    assert payments == {alice["payment_id"]}
    assert token not in caplog.text
