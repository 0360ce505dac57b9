"""The Slotegrator adapter against the Slotegrator simulator over a real socket."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from yarl import URL

from adapters import slotegrator as adapter_module
from adapters.base import LaunchRequest, ProviderError, UpstreamRequest, UpstreamResponse
from simulators import slotegrator as sim
from simulators.catalog import slotegrator_games
from simulators.faults import SimulatorServer

MERCHANT = "merchant-7"
KEY = "k3y-for-tests"
SWEET_BONANZA = "6f1c9a2e-0001-4a8b-9c1d-000000000001"
BLACKJACK = "6f1c9a2e-0111-4a8b-9c1d-000000000111"


@pytest.fixture
async def server() -> AsyncIterator[SimulatorServer]:
    srv = await SimulatorServer(
        sim.create_app(merchant_id=MERCHANT, merchant_key=KEY, per_page=8)
    ).start()
    yield srv
    await srv.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


def make_adapter(merchant_id: str = MERCHANT, key: str = KEY, **kwargs: Any
                 ) -> adapter_module.SlotegratorAdapter:
    return adapter_module.SlotegratorAdapter("slotegrator", merchant_id, key, **kwargs)


async def send(http: aiohttp.ClientSession, server: SimulatorServer, req: UpstreamRequest
               ) -> UpstreamResponse:
    url = URL(server.url + req.path, encoded=True)
    async with http.request(req.method, url, headers=dict(req.headers),
                            data=req.body or None) as resp:
        return UpstreamResponse(status=resp.status, headers=dict(resp.headers),
                                body=await resp.read())


def launch(**overrides: Any) -> LaunchRequest:
    base: dict[str, Any] = {
        "provider_game_id": SWEET_BONANZA,
        "player_id": "player-1",
        "currency": "EUR",
        "mode": "real",
        "language": "de",
        "platform": "mobile",
        "country": "DE",
        "return_url": "https://casino.example/~lobby?from=game&x=a b",
        "session_token": "sess-123",
    }
    base.update(overrides)
    return LaunchRequest(**base)


async def test_whole_catalog_follows_pages(server, http) -> None:
    adapter = make_adapter()
    games = []
    pages = 0
    req: UpstreamRequest | None = adapter.catalog_request()
    while req is not None:
        result = adapter.parse_catalog(await send(http, server, req))
        games.extend(result.games)
        pages += 1
        req = result.next_request
    assert pages == 3
    assert server.stats["/games"] == 3
    assert len(games) == 20
    assert {g.provider_game_id for g in games} == {g.slotegrator[0] for g in slotegrator_games()}
    by_id = {g.provider_game_id: g for g in games}
    sweet = by_id[SWEET_BONANZA]
    assert (sweet.name, sweet.studio, sweet.category) == ("Sweet Bonanza", "PragmaticPlay", "slots")
    assert (sweet.rtp, sweet.volatility) == (Decimal("96.48"), "high")
    assert sweet.platforms == ("desktop", "mobile")
    assert sweet.demo is True
    assert sweet.thumbnail == f"https://cdn.slotegrator.example/{SWEET_BONANZA}.jpg"
    blackjack = by_id[BLACKJACK]
    assert (blackjack.category, blackjack.platforms) == ("table", ("desktop",))
    assert blackjack.volatility is None
    assert by_id["6f1c9a2e-0007-4a8b-9c1d-000000000007"].category == "live"


async def test_catalog_page_shape_is_the_providers(server, http) -> None:
    resp = await send(http, server, make_adapter().catalog_request())
    data = json.loads(resp.body)
    assert data["_meta"] == {"totalCount": 20, "pageCount": 3, "currentPage": 1, "perPage": 8}
    assert set(data["_links"]) == {"self", "first", "last", "next"}
    assert resp.headers["X-Pagination-Page-Count"] == "3"
    first = data["items"][0]
    assert set(first) == {
        "uuid", "name", "image", "type", "provider", "provider_id", "technology", "is_mobile",
        "has_lobby", "has_freespins", "has_tables", "label", "parameters", "images",
    }
    assert first["parameters"]["rtp"] == "96.48"
    assert first["technology"] == "html5"


async def test_health_request_answers_one_game(server, http) -> None:
    adapter = make_adapter()
    resp = await send(http, server, adapter.health_request())
    assert resp.status == 200
    result = adapter.parse_catalog(resp)
    assert len(result.games) == 1
    assert result.next_request is not None  # page 1 of 20 at one per page


async def test_real_launch(server, http) -> None:
    adapter = make_adapter()
    result = adapter.parse_launch(await send(http, server, adapter.launch_request(launch())))
    prefix = f"https://games.slotegrator.example/play/{SWEET_BONANZA}?session="
    assert result.url.startswith(prefix)
    assert len(result.url) > len(prefix)
    assert "demo=1" not in result.url
    assert server.app[sim.LAUNCHES] == [{
        "path": "/games/init",
        "game_uuid": SWEET_BONANZA,
        "player_id": "player-1",
        "player_name": "player-1",
        "currency": "EUR",
        "session_id": "sess-123",
        "device": "mobile",
        "return_url": "https://casino.example/~lobby?from=game&x=a b",
        "language": "de",
    }]


async def test_demo_launch(server, http) -> None:
    adapter = make_adapter()
    req = adapter.launch_request(launch(mode="demo", platform="desktop", player_id=None,
                                        session_token=None, currency=None))
    result = adapter.parse_launch(await send(http, server, req))
    assert result.url.startswith(f"https://games.slotegrator.example/play/{SWEET_BONANZA}?session=")
    assert result.url.endswith("&demo=1")
    assert server.app[sim.LAUNCHES] == [{
        "path": "/games/init-demo",
        "game_uuid": SWEET_BONANZA,
        "device": "desktop",
        "return_url": "https://casino.example/~lobby?from=game&x=a b",
        "language": "de",
    }]
    assert server.stats["/games/init-demo"] == 1


async def test_each_launch_gets_its_own_session(server, http) -> None:
    adapter = make_adapter()
    urls = {adapter.parse_launch(await send(http, server, adapter.launch_request(launch()))).url
            for _ in range(2)}
    assert len(urls) == 2


async def test_unknown_game_is_rejected(server, http) -> None:
    adapter = make_adapter()
    resp = await send(http, server, adapter.launch_request(launch(provider_game_id="nope")))
    assert resp.status == 422
    with pytest.raises(ProviderError) as caught:
        adapter.parse_launch(resp)
    err = caught.value
    assert (err.status, err.provider_code) == (422, "Unprocessable entity")
    assert (err.rejected, err.failover_safe) == (True, True)
    assert "Game not found" in err.message
    assert server.app[sim.LAUNCHES] == []


async def test_real_launch_without_session_is_rejected(server, http) -> None:
    adapter = make_adapter()
    resp = await send(http, server, adapter.launch_request(launch(session_token=None)))
    assert resp.status == 422
    with pytest.raises(ProviderError) as caught:
        adapter.parse_launch(resp)
    assert caught.value.rejected is True
    assert "Session Id cannot be blank." in caught.value.message


def _assert_forbidden(resp: UpstreamResponse, message: str) -> None:
    assert resp.status == 403
    with pytest.raises(ProviderError) as caught:
        make_adapter().parse_launch(resp)
    err = caught.value
    assert (err.status, err.provider_code, err.rejected, err.failover_safe) == (
        403, "Forbidden", True, True)
    assert message in err.message


async def test_wrong_merchant_key_is_forbidden(server, http) -> None:
    adapter = make_adapter(key="not-the-key")
    for req in (adapter.catalog_request(), adapter.launch_request(launch()),
                adapter.launch_request(launch(mode="demo"))):
        resp = await send(http, server, req)
        _assert_forbidden(resp, "Invalid sign")
    assert server.app[sim.LAUNCHES] == []


async def test_forbidden_body_is_the_providers_shape(server, http) -> None:
    resp = await send(http, server, make_adapter(key="bad").catalog_request())
    assert resp.status == 403
    assert json.loads(resp.body) == {
        "name": "Forbidden", "message": "Invalid sign", "status": 403,
    }


async def test_wrong_merchant_id_is_forbidden(server, http) -> None:
    resp = await send(http, server, make_adapter(merchant_id="someone-else").catalog_request())
    _assert_forbidden(resp, "Invalid merchant")


async def test_stale_timestamp_is_forbidden(server, http) -> None:
    stale = make_adapter(clock=lambda: time.time() - 301)
    _assert_forbidden(await send(http, server, stale.catalog_request()), "Request expired")
    slightly_off = make_adapter(clock=lambda: time.time() - 200)
    assert (await send(http, server, slightly_off.catalog_request())).status == 200


async def test_missing_or_tampered_signature_is_forbidden(server, http) -> None:
    req = make_adapter().catalog_request()
    unsigned = UpstreamRequest(req.method, req.path,
                               {k: v for k, v in req.headers.items() if k != "X-Sign"})
    _assert_forbidden(await send(http, server, unsigned), "Invalid sign")
    no_nonce = UpstreamRequest(req.method, req.path,
                               {k: v for k, v in req.headers.items() if k != "X-Nonce"})
    _assert_forbidden(await send(http, server, no_nonce), "Invalid sign")
    other_page = UpstreamRequest(req.method, "/games?page=2", req.headers)
    _assert_forbidden(await send(http, server, other_page), "Invalid sign")
    launch_req = make_adapter().launch_request(launch())
    tampered = UpstreamRequest(launch_req.method, launch_req.path, launch_req.headers,
                               launch_req.body.replace(b"EUR", b"USD"))
    _assert_forbidden(await send(http, server, tampered), "Invalid sign")


@pytest.mark.parametrize("mode", ["error", "truncated", "garbage"])
async def test_faults_are_failover_safe_errors(server, http, mode) -> None:
    server.faults.mode = mode
    adapter = make_adapter()
    for req, parse in ((adapter.catalog_request(), adapter.parse_catalog),
                       (adapter.launch_request(launch()), adapter.parse_launch)):
        resp = await send(http, server, req)
        assert resp.status == (500 if mode == "error" else 200)
        with pytest.raises(ProviderError) as caught:
            parse(resp)
        err = caught.value
        assert (err.failover_safe, err.rejected, err.retry_same) == (True, False, False)
        assert err.provider_code == ("Internal Server Error" if mode == "error" else None)


async def test_rate_limited_fault_carries_retry_after(server, http) -> None:
    server.faults.mode = "rate_limited"
    server.faults.retry_after_s = 4
    adapter = make_adapter()
    with pytest.raises(ProviderError) as caught:
        adapter.parse_catalog(await send(http, server, adapter.catalog_request()))
    err = caught.value
    assert (err.status, err.provider_code, err.retry_after_s) == (429, "Too Many Requests", 4.0)
    assert err.failover_safe is True


async def test_fail_next_fails_one_call_then_recovers(server, http) -> None:
    # The Faults object is changed in place: replacing app[FAULTS] on a running app warns.
    adapter = make_adapter()
    server.faults.fail_next = 1
    with pytest.raises(ProviderError):
        adapter.parse_catalog(await send(http, server, adapter.catalog_request()))
    assert adapter.parse_catalog(await send(http, server, adapter.catalog_request())).games
    async with http.get(URL(server.url + "/_sim/stats")) as resp:
        assert await resp.json() == {"requests": {"/games": 2}, "traceparents": []}


async def test_unknown_path_answers_in_the_providers_shape(server, http) -> None:
    async with http.get(URL(server.url + "/nowhere")) as resp:
        assert resp.status == 404
        assert await resp.json() == {"name": "Not Found", "message": "Not Found", "status": 404}


async def test_per_page_and_page_are_bounded(server, http) -> None:
    auth = {"X-Merchant-Id": MERCHANT, "X-Timestamp": str(int(time.time())), "X-Nonce": "n1"}
    sign = make_adapter().sign({"page": "99", "per-page": "500", **auth})
    req = UpstreamRequest("GET", "/games?page=99&per-page=500", {**auth, "X-Sign": sign})
    data = json.loads((await send(http, server, req)).body)
    assert data["_meta"] == {"totalCount": 20, "pageCount": 1, "currentPage": 1, "perPage": 50}
    assert len(data["items"]) == 20
