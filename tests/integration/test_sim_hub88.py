"""The Hub88 adapter against the Hub88 simulator over a real socket."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import fields
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters import hub88
from adapters.base import LaunchRequest, ProviderError, UpstreamRequest, UpstreamResponse
from simulators import hub88 as sim
from simulators.catalog import hub88_games
from simulators.faults import Faults, SimulatorServer

PRIVATE_PEM, PUBLIC_PEM = sim.generate_operator_keypair()
OTHER_PRIVATE_PEM, _ = sim.generate_operator_keypair()
OPERATOR_ID = 4711
LIST_PATH = "/operator/generic/v2/game/list"
URL_PATH = "/operator/generic/v2/game/url"


@pytest.fixture
async def server() -> AsyncIterator[SimulatorServer]:
    app = sim.create_app(operator_id=OPERATOR_ID, operator_public_key_pem=PUBLIC_PEM)
    running = await SimulatorServer(app).start()
    yield running
    await running.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture(scope="module")
def adapter() -> hub88.Hub88Adapter:
    return hub88.create("hub88", {"operator_id": OPERATOR_ID, "private_key": PRIVATE_PEM})


async def send(
    session: aiohttp.ClientSession, server: SimulatorServer, req: UpstreamRequest
) -> UpstreamResponse:
    async with session.request(
        req.method, server.url + req.path, headers=dict(req.headers), data=req.body
    ) as resp:
        return UpstreamResponse(
            status=resp.status, headers=dict(resp.headers), body=await resp.read()
        )


async def post_json(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    async with session.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


def sign_with(private_pem: str, body: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def launch(mode: str = "real", **changes: Any) -> LaunchRequest:
    fields: dict[str, Any] = {
        "provider_game_id": "pp_sweet_bonanza",
        "player_id": "p-7f3a",
        "currency": "EUR",
        "mode": mode,
        "language": "en",
        "platform": "mobile",
        "country": "DE",
        "return_url": "https://casino.example/lobby",
        "session_token": "tok-123",
        "ip": "203.0.113.9",
    }
    fields.update(changes)
    return LaunchRequest(**fields)


async def stats(session: aiohttp.ClientSession, server: SimulatorServer) -> dict[str, int]:
    async with session.get(server.url + "/_sim/stats") as resp:
        assert resp.status == 200
        return (await resp.json())["requests"]


# ---- the happy paths ----------------------------------------------------------------------


async def test_catalog(server, session, adapter) -> None:
    response = await send(session, server, adapter.catalog_request())
    assert response.status == 200
    page = adapter.parse_catalog(response)
    assert page.next_request is None
    assert len(page.games) == 22
    games = {g.name: g for g in page.games}
    bonanza = games["Sweet Bonanza"]
    assert bonanza.provider_game_id == "pp_sweet_bonanza"
    assert bonanza.studio == "Pragmatic Play"
    assert bonanza.category == "slots"
    assert bonanza.rtp == Decimal("96.48")
    assert bonanza.volatility == "high"
    assert bonanza.platforms == ("desktop", "mobile")
    assert bonanza.demo is True
    assert bonanza.thumbnail == "https://cdn.hub88.example/pp_sweet_bonanza.png"
    assert games["Fire Joker"].platforms == ("desktop",)
    assert games["Mega Moolah"].rtp is None
    assert (games["Aviator"].category, games["Aviator"].volatility) == ("crash", None)
    assert games["Lightning Roulette"].studio == "Evolution Gaming"


async def test_catalog_round_trips_every_game(server, session, adapter) -> None:
    page = adapter.parse_catalog(await send(session, server, adapter.catalog_request()))
    parsed = {g.provider_game_id: g for g in page.games}
    for game in hub88_games():
        assert game.hub88 is not None
        got = parsed[game.hub88[0]]
        assert (got.name, got.studio) == (game.name, game.hub88[1])
        assert got.category == game.category
        assert got.rtp == (Decimal(game.rtp) if game.rtp else None)
        assert got.volatility == game.volatility
        assert got.platforms == (("desktop", "mobile") if game.mobile else ("desktop",))


async def test_health_request_is_answered(server, session, adapter) -> None:
    response = await send(session, server, adapter.health_request())
    assert response.status == 200


async def test_launch_real(server, session, adapter) -> None:
    result = adapter.parse_launch(await send(session, server, adapter.launch_request(launch())))
    prefix = "https://games.hub88.example/launch/pp_sweet_bonanza?session="
    assert result.url.startswith(prefix)
    assert result.url.endswith("&mode=real")
    (body,) = server.app[sim.LAUNCHES]
    assert body["user"] == "p-7f3a"
    assert body["token"] == "tok-123"
    assert body["platform"] == "GPL_MOBILE"
    assert (body["currency"], body["game_currency"]) == ("EUR", "EUR")
    assert body["operator_id"] == OPERATOR_ID


async def test_launch_demo(server, session, adapter) -> None:
    req = adapter.launch_request(launch("demo", provider_game_id="spribe_aviator"))
    result = adapter.parse_launch(await send(session, server, req))
    assert result.url.startswith("https://games.hub88.example/launch/spribe_aviator?session=")
    assert result.url.endswith("&mode=demo")
    (body,) = server.app[sim.LAUNCHES]
    assert "user" not in body
    assert "token" not in body
    assert (body["currency"], body["game_currency"]) == ("XXX", "XXX")


async def test_each_launch_gets_its_own_session(server, session, adapter) -> None:
    req = adapter.launch_request(launch())
    first = adapter.parse_launch(await send(session, server, req))
    second = adapter.parse_launch(await send(session, server, req))
    assert first.url != second.url


# ---- refusals -----------------------------------------------------------------------------


async def expect_error(session, server, adapter, req: UpstreamRequest, parse: str) -> ProviderError:
    response = await send(session, server, req)
    with pytest.raises(ProviderError) as info:
        getattr(adapter, parse)(response)
    return info.value


async def test_request_signed_with_another_key_is_rejected(server, session) -> None:
    stranger = hub88.create("hub88", {"operator_id": OPERATOR_ID, "private_key": OTHER_PRIVATE_PEM})
    for req, parse in [
        (stranger.catalog_request(), "parse_catalog"),
        (stranger.launch_request(launch()), "parse_launch"),
    ]:
        err = await expect_error(session, server, stranger, req, parse)
        assert err.status == 401
        assert err.provider_code == "RS_ERROR_INVALID_SIGNATURE"
        assert (err.rejected, err.failover_safe, err.retry_same) == (True, True, False)
    assert server.app[sim.LAUNCHES] == []


@pytest.mark.parametrize(
    "signature", [None, "", "not base64!", base64.b64encode(b"short").decode()]
)
async def test_missing_or_broken_signature(server, session, adapter, signature) -> None:
    req = adapter.catalog_request()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub88-Signature"] = signature
    status, body = await post_json(session, server.url + LIST_PATH, req.body, headers)
    assert (status, body) == (401, {"error": "RS_ERROR_INVALID_SIGNATURE"})


async def test_signature_of_another_body_is_rejected(server, session, adapter) -> None:
    signed = adapter.catalog_request()
    tampered = UpstreamRequest(
        method="POST", path=LIST_PATH, headers=signed.headers, body=b'{"operator_id": 4711}'
    )
    response = await send(session, server, tampered)
    assert response.status == 401
    assert response.body == b'{"error": "RS_ERROR_INVALID_SIGNATURE"}'


async def test_wrong_operator_id(server, session) -> None:
    other = hub88.create("hub88", {"operator_id": OPERATOR_ID + 1, "private_key": PRIVATE_PEM})
    err = await expect_error(session, server, other, other.catalog_request(), "parse_catalog")
    assert (err.status, err.provider_code, err.rejected) == (401, "RS_ERROR_INVALID_PARTNER", True)


async def test_unknown_game(server, session, adapter) -> None:
    req = adapter.launch_request(launch(provider_game_id="no_such_game"))
    err = await expect_error(session, server, adapter, req, "parse_launch")
    assert (err.status, err.provider_code) == (400, "RS_ERROR_INVALID_GAME")
    assert (err.rejected, err.failover_safe) == (True, True)


async def test_real_launch_without_token(server, session, adapter) -> None:
    req = adapter.launch_request(launch(session_token=None))
    err = await expect_error(session, server, adapter, req, "parse_launch")
    assert (err.status, err.provider_code, err.rejected) == (400, "RS_ERROR_INVALID_TOKEN", True)


@pytest.mark.parametrize("body", [b'{"operator_id": 47', b"[4711]", b"nothing"])
async def test_malformed_json_with_a_good_signature(server, session, body) -> None:
    headers = {
        "Content-Type": "application/json",
        "X-Hub88-Signature": sign_with(PRIVATE_PEM, body),
    }
    status, answer = await post_json(session, server.url + URL_PATH, body, headers)
    assert (status, answer) == (400, {"error": "RS_ERROR_UNKNOWN"})


# ---- faults and counters ------------------------------------------------------------------


def set_faults(server: SimulatorServer, **settings: Any) -> None:
    # The faults object is changed in place: replacing it (what POST /_sim/faults does) sets
    # an item on a running app, which aiohttp deprecates and this suite turns into an error.
    wanted = Faults(**settings)
    for setting in fields(Faults):
        setattr(server.faults, setting.name, getattr(wanted, setting.name))


@pytest.mark.parametrize("parse", ["parse_catalog", "parse_launch"])
async def test_fault_error(server, session, adapter, parse) -> None:
    set_faults(server, mode="error")
    req = (
        adapter.catalog_request() if parse == "parse_catalog" else adapter.launch_request(launch())
    )
    err = await expect_error(session, server, adapter, req, parse)
    assert (err.status, err.provider_code) == (500, "RS_ERROR_UNKNOWN")
    assert (err.failover_safe, err.rejected, err.retry_same) == (True, False, False)


@pytest.mark.parametrize("mode", ["garbage", "truncated"])
@pytest.mark.parametrize("parse", ["parse_catalog", "parse_launch"])
async def test_fault_unreadable_200(server, session, adapter, mode, parse) -> None:
    set_faults(server, mode=mode)
    req = (
        adapter.catalog_request() if parse == "parse_catalog" else adapter.launch_request(launch())
    )
    err = await expect_error(session, server, adapter, req, parse)
    assert err.status == 200
    assert err.provider_code is None
    assert (err.failover_safe, err.rejected, err.retry_same) == (True, False, False)


async def test_fault_rate_limited(server, session, adapter) -> None:
    set_faults(server, mode="rate_limited", retry_after_s=7)
    err = await expect_error(session, server, adapter, adapter.catalog_request(), "parse_catalog")
    assert (err.status, err.provider_code, err.retry_after_s) == (429, "RS_ERROR_UNKNOWN", 7.0)
    assert err.failover_safe is True


async def test_fail_next_then_recovers(server, session, adapter) -> None:
    set_faults(server, fail_next=1)
    await expect_error(session, server, adapter, adapter.catalog_request(), "parse_catalog")
    page = adapter.parse_catalog(await send(session, server, adapter.catalog_request()))
    assert len(page.games) == 22


async def test_stats_count_calls(server, session, adapter) -> None:
    assert await stats(session, server) == {}
    await send(session, server, adapter.catalog_request())
    await send(session, server, adapter.catalog_request())
    await send(session, server, adapter.launch_request(launch()))
    await send(session, server, adapter.launch_request(launch(provider_game_id="nope")))
    assert await stats(session, server) == {LIST_PATH: 2, URL_PATH: 2}
    async with session.delete(server.url + "/_sim/stats") as resp:
        assert resp.status == 200
    assert await stats(session, server) == {}


# ---- settings -----------------------------------------------------------------------------


def test_create_app_rejects_a_non_rsa_or_broken_key() -> None:
    with pytest.raises(ValueError):
        sim.create_app(operator_public_key_pem="not a key")


def test_default_port() -> None:
    assert sim.DEFAULT_PORT == 9101
