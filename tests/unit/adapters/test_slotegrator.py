"""The Slotegrator adapter alone: signed requests and answers of the provider's real shape."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import pytest

from adapters import slotegrator
from adapters.base import (
    CatalogPage,
    GameAdapter,
    LaunchRequest,
    ProviderError,
    ProviderGame,
    UpstreamResponse,
)

KEY = "secret-key"
MERCHANT = "m-42"
NOW = 1_700_000_000
NONCE = "0a1b2c3d"


def hmac_sha1(message: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha1).hexdigest()


@pytest.fixture
def adapter() -> slotegrator.SlotegratorAdapter:
    return slotegrator.SlotegratorAdapter(
        "slotegrator", MERCHANT, KEY, clock=lambda: NOW + 0.9, nonce=lambda: NONCE
    )


def response(body: Any, status: int = 200, headers: dict[str, str] | None = None
             ) -> UpstreamResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return UpstreamResponse(status=status, headers=headers or {}, body=raw)


def item(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uuid": "6f1c9a2e-0001-4a8b-9c1d-000000000001",
        "name": "Sweet Bonanza",
        "image": "https://cdn.slotegrator.example/6f1c9a2e-0001.jpg",
        "type": "Slots",
        "provider": "PragmaticPlay",
        "provider_id": 17,
        "technology": "html5",
        "is_mobile": True,
        "has_lobby": False,
        "has_freespins": True,
        "has_tables": False,
        "label": None,
        "parameters": {"rtp": "96.48", "volatility": "high", "reels_count": "6",
                       "lines_count": "20"},
        "images": [{"name": "a.jpg", "file": "a.jpg", "url": "https://cdn/a.jpg",
                    "type": "default"}],
    }
    base.update(overrides)
    return base


def page(items: list[Any], current: int = 1, count: int = 1) -> dict[str, Any]:
    return {
        "items": items,
        "_links": {"self": {"href": f"https://api.example/v1/games?page={current}"}},
        "_meta": {"totalCount": len(items), "pageCount": count, "currentPage": current,
                  "perPage": 8},
    }


def launch(**overrides: Any) -> LaunchRequest:
    base: dict[str, Any] = {
        "provider_game_id": "6f1c9a2e-0001-4a8b-9c1d-000000000001",
        "player_id": "p-77",
        "currency": "EUR",
        "mode": "real",
        "language": "en",
        "platform": "mobile",
        "country": "DE",
        "return_url": "https://casino.example/lobby",
        "session_token": "sess-1",
    }
    base.update(overrides)
    return LaunchRequest(**base)


# ---- construction ----------------------------------------------------------------------------


def test_spec_declares_credentials_and_secret() -> None:
    assert slotegrator.SPEC.kind == "games"
    assert slotegrator.SPEC.credentials == ("merchant_id", "merchant_key")
    assert slotegrator.SPEC.secrets == frozenset({"merchant_key"})


def test_create_builds_a_game_adapter() -> None:
    made = slotegrator.create("sg", {"merchant_id": " m-1 ", "merchant_key": "k\n"})
    assert isinstance(made, GameAdapter)
    assert made.kind == "games"
    assert made.merchant_id == "m-1"


def test_create_accepts_key_bytes() -> None:
    made = slotegrator.create("sg", {"merchant_id": "m", "merchant_key": b"abc"})
    assert made.sign({"a": "1"}) == hmac_sha1("a=1", "abc")


@pytest.mark.parametrize(
    "credentials",
    [
        {"merchant_key": "k"},
        {"merchant_id": "m"},
        {"merchant_id": "", "merchant_key": "k"},
        {"merchant_id": "m", "merchant_key": "   "},
        {"merchant_id": 5, "merchant_key": "k"},
        {"merchant_id": "m", "merchant_key": None},
        {"merchant_id": "m\r\nX-Evil: 1", "merchant_key": "k"},
        {"merchant_id": "m", "merchant_key": b"\xff\xfe"},
    ],
)
def test_create_rejects_malformed_credentials(credentials: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="provider 'sg'"):
        slotegrator.create("sg", credentials)


def test_repr_hides_the_key() -> None:
    made = slotegrator.create("sg", {"merchant_id": "m", "merchant_key": "topsecretvalue"})
    assert "topsecretvalue" not in repr(made)


def test_defaults_use_wall_clock_and_fresh_nonces() -> None:
    made = slotegrator.create("sg", {"merchant_id": "m", "merchant_key": "k"})
    first, second = made.catalog_request(), made.catalog_request()
    assert first.headers["X-Nonce"] != second.headers["X-Nonce"]
    assert len(first.headers["X-Nonce"]) == 32
    assert int(first.headers["X-Timestamp"]) > NOW


# ---- signed requests -------------------------------------------------------------------------


def test_catalog_request_is_a_signed_get_of_page_one(adapter) -> None:
    req = adapter.catalog_request()
    assert req.method == "GET"
    assert req.path == "/games?page=1"
    assert req.body == b""
    assert req.headers["X-Merchant-Id"] == MERCHANT
    assert req.headers["X-Timestamp"] == str(NOW)
    assert req.headers["X-Nonce"] == NONCE
    assert req.headers["Accept"] == "application/json"
    expected = hmac_sha1(f"X-Merchant-Id=m-42&X-Nonce={NONCE}&X-Timestamp={NOW}&page=1")
    assert req.headers["X-Sign"] == expected


def test_health_request_asks_for_one_game(adapter) -> None:
    req = adapter.health_request()
    assert req.method == "GET"
    assert req.path == "/games?page=1&per-page=1"
    expected = hmac_sha1(f"X-Merchant-Id=m-42&X-Nonce={NONCE}&X-Timestamp={NOW}&page=1&per-page=1")
    assert req.headers["X-Sign"] == expected


def test_real_launch_posts_signed_form_fields(adapter) -> None:
    req = adapter.launch_request(launch())
    assert req.method == "POST"
    assert req.path == "/games/init"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(req.body.decode(), strict_parsing=True)) == {
        "game_uuid": "6f1c9a2e-0001-4a8b-9c1d-000000000001",
        "player_id": "p-77",
        "player_name": "p-77",
        "currency": "EUR",
        "session_id": "sess-1",
        "device": "mobile",
        "return_url": "https://casino.example/lobby",
        "language": "en",
    }
    message = (
        f"X-Merchant-Id=m-42&X-Nonce={NONCE}&X-Timestamp={NOW}&currency=EUR&device=mobile"
        "&game_uuid=6f1c9a2e-0001-4a8b-9c1d-000000000001&language=en&player_id=p-77"
        "&player_name=p-77&return_url=https%3A%2F%2Fcasino.example%2Flobby&session_id=sess-1"
    )
    assert req.headers["X-Sign"] == hmac_sha1(message)


def test_demo_launch_posts_to_init_demo_without_player(adapter) -> None:
    req = adapter.launch_request(launch(mode="demo", platform="desktop", language=None,
                                        player_id=None, session_token=None, currency=None))
    assert req.path == "/games/init-demo"
    assert dict(parse_qsl(req.body.decode(), strict_parsing=True)) == {
        "game_uuid": "6f1c9a2e-0001-4a8b-9c1d-000000000001",
        "device": "desktop",
        "return_url": "https://casino.example/lobby",
    }
    message = (
        f"X-Merchant-Id=m-42&X-Nonce={NONCE}&X-Timestamp={NOW}&device=desktop"
        "&game_uuid=6f1c9a2e-0001-4a8b-9c1d-000000000001"
        "&return_url=https%3A%2F%2Fcasino.example%2Flobby"
    )
    assert req.headers["X-Sign"] == hmac_sha1(message)


def test_demo_launch_ignores_player_data(adapter) -> None:
    req = adapter.launch_request(launch(mode="demo"))
    fields = dict(parse_qsl(req.body.decode()))
    assert set(fields) == {"game_uuid", "device", "return_url", "language"}


def test_launch_omits_missing_fields(adapter) -> None:
    req = adapter.launch_request(launch(language=None, return_url=None))
    assert set(dict(parse_qsl(req.body.decode()))) == {
        "game_uuid", "player_id", "player_name", "currency", "session_id", "device",
    }


def test_sign_encodes_like_php_http_build_query(adapter) -> None:
    # Space becomes "+", "~" and non-ASCII are percent-encoded, keys sort byte-wise.
    params = {"b": "x y~z", "a": "é/?", "B": "1"}
    assert adapter.sign(params) == hmac_sha1("B=1&a=%C3%A9%2F%3F&b=x+y%7Ez")


def test_launch_with_awkward_return_url_is_signed_over_the_decoded_values(adapter) -> None:
    url = "https://casino.example/~me/back?a=1&b=two words"
    req = adapter.launch_request(launch(mode="demo", return_url=url, language=None))
    assert dict(parse_qsl(req.body.decode()))["return_url"] == url
    message = (
        f"X-Merchant-Id=m-42&X-Nonce={NONCE}&X-Timestamp={NOW}&device=mobile"
        "&game_uuid=6f1c9a2e-0001-4a8b-9c1d-000000000001"
        "&return_url=https%3A%2F%2Fcasino.example%2F%7Eme%2Fback%3Fa%3D1%26b%3Dtwo+words"
    )
    assert req.headers["X-Sign"] == hmac_sha1(message)


# ---- catalog ---------------------------------------------------------------------------------


def test_parse_catalog_maps_every_field(adapter) -> None:
    result = adapter.parse_catalog(response(page([item()])))
    assert result == CatalogPage(
        games=(
            ProviderGame(
                provider_game_id="6f1c9a2e-0001-4a8b-9c1d-000000000001",
                name="Sweet Bonanza",
                studio="PragmaticPlay",
                category="slots",
                rtp=Decimal("96.48"),
                volatility="high",
                platforms=("desktop", "mobile"),
                demo=True,
                thumbnail="https://cdn.slotegrator.example/6f1c9a2e-0001.jpg",
            ),
        ),
        next_request=None,
    )


def test_parse_catalog_reads_numeric_rtp_as_exact_decimal(adapter) -> None:
    body = b'{"items": [{"uuid": "u", "name": "n", "provider": "p", "parameters": {"rtp": 96.1}}]}'
    game = adapter.parse_catalog(response(body)).games[0]
    assert game.rtp == Decimal("96.1")
    assert isinstance(game.rtp, Decimal)
    int_rtp = item(parameters={"rtp": 97})
    assert adapter.parse_catalog(response(page([int_rtp]))).games[0].rtp == Decimal(97)


@pytest.mark.parametrize(
    ("parameters", "rtp", "volatility"),
    [
        ({"rtp": "95.5", "volatility": "Medium-High"}, Decimal("95.5"), "medium-high"),
        ({"rtp": None, "volatility": None}, None, None),
        ({"rtp": "", "volatility": "extreme"}, None, None),
        ({"rtp": "abc", "volatility": 3}, None, None),
        ({"rtp": "NaN", "volatility": "very-high"}, None, "very-high"),
        ({"rtp": "0", "volatility": "low"}, None, "low"),
        ({"rtp": "150", "volatility": "low-medium"}, None, "low-medium"),
        ({"rtp": True, "volatility": True}, None, None),
        ({"rtp": [96], "volatility": ["high"]}, None, None),
        ({}, None, None),
        ([], None, None),
        (None, None, None),
        ("96.5", None, None),
    ],
)
def test_parse_catalog_rtp_and_volatility(adapter, parameters, rtp, volatility) -> None:
    game = adapter.parse_catalog(response(page([item(parameters=parameters)]))).games[0]
    assert (game.rtp, game.volatility) == (rtp, volatility)


@pytest.mark.parametrize(
    ("is_mobile", "platforms"),
    [
        (True, ("desktop", "mobile")),
        (1, ("desktop", "mobile")),
        ("1", ("desktop", "mobile")),
        (False, ("desktop",)),
        (0, ("desktop",)),
        (None, ("desktop",)),
        ("no", ("desktop",)),
    ],
)
def test_parse_catalog_platforms(adapter, is_mobile, platforms) -> None:
    game = adapter.parse_catalog(response(page([item(is_mobile=is_mobile)]))).games[0]
    assert game.platforms == platforms


def test_parse_catalog_optional_fields_missing(adapter) -> None:
    bare = {"uuid": "u-1", "name": "Bare", "provider": "Studio"}
    game = adapter.parse_catalog(response(page([bare, item(type=" Live ", image="")]))).games
    assert game[0] == ProviderGame("u-1", "Bare", "Studio", None, None, None, ("desktop",),
                                   True, None)
    assert game[1].category == "live"
    assert game[1].thumbnail is None


def test_parse_catalog_skips_items_without_identity(adapter) -> None:
    items = [
        item(uuid=None),
        item(uuid=""),
        item(name=None),
        item(provider="  "),
        item(provider=7),
        "not an object",
        None,
        item(uuid="good"),
    ]
    result = adapter.parse_catalog(response(page(items)))
    assert [g.provider_game_id for g in result.games] == ["good"]


# ---- catalog paging --------------------------------------------------------------------------


def test_parse_catalog_asks_for_the_next_signed_page(adapter) -> None:
    result = adapter.parse_catalog(response(page([item()], current=2, count=3)))
    nxt = result.next_request
    assert nxt is not None
    assert (nxt.method, nxt.path) == ("GET", "/games?page=3")
    expected = hmac_sha1(f"X-Merchant-Id=m-42&X-Nonce={NONCE}&X-Timestamp={NOW}&page=3")
    assert nxt.headers["X-Sign"] == expected


def test_parse_catalog_stops_on_the_last_page(adapter) -> None:
    assert adapter.parse_catalog(response(page([item()], current=3, count=3))).next_request is None


def test_parse_catalog_meta_page_count_wins_over_items(adapter) -> None:
    # A page with no items before the last one still leaves more pages to read.
    assert adapter.parse_catalog(response(page([], current=1, count=2))).next_request is not None


def test_parse_catalog_without_meta_follows_pages_while_items_come(adapter) -> None:
    body = {"items": [item()], "_links": {"self": {"href": "https://x/v1/games?page=4"}}}
    nxt = adapter.parse_catalog(response(body)).next_request
    assert nxt is not None and nxt.path == "/games?page=5"
    empty = {"items": [], "_links": {"self": {"href": "https://x/v1/games?page=5"}}}
    assert adapter.parse_catalog(response(empty)).next_request is None


def test_parse_catalog_without_meta_uses_pagination_headers(adapter) -> None:
    headers = {"x-pagination-current-page": "2", "X-Pagination-Page-Count": "2"}
    assert adapter.parse_catalog(response({"items": [item()]}, headers=headers)).next_request \
        is None
    headers = {"X-Pagination-Current-Page": "1", "X-Pagination-Page-Count": "2"}
    nxt = adapter.parse_catalog(response({"items": [item()]}, headers=headers)).next_request
    assert nxt is not None and nxt.path == "/games?page=2"


def test_parse_catalog_meta_with_current_page_only_follows_items(adapter) -> None:
    body = {"items": [item()], "_meta": {"currentPage": "2"}}
    nxt = adapter.parse_catalog(response(body)).next_request
    assert nxt is not None and nxt.path == "/games?page=3"


def test_parse_catalog_with_no_page_information_stops(adapter) -> None:
    # Asking for "the next page" without knowing this one's number could loop forever.
    assert adapter.parse_catalog(response({"items": [item()]})).next_request is None


@pytest.mark.parametrize(
    "meta",
    [
        {"currentPage": True, "pageCount": 3},
        {"currentPage": -1, "pageCount": 3},
        {"currentPage": "x", "pageCount": 3},
        {"currentPage": 1.5, "pageCount": 3},
        "garbage",
    ],
)
def test_parse_catalog_bad_meta_never_raises(adapter, meta) -> None:
    result = adapter.parse_catalog(response({"items": [item()], "_meta": meta}))
    assert len(result.games) == 1
    assert result.next_request is None


def test_parse_catalog_stops_at_the_page_cap(adapter) -> None:
    body = page([item()], current=slotegrator.MAX_PAGES, count=slotegrator.MAX_PAGES + 5)
    assert adapter.parse_catalog(response(body)).next_request is None


# ---- launch ----------------------------------------------------------------------------------


def test_parse_launch_returns_the_url(adapter) -> None:
    url = "https://games.slotegrator.example/play/u?session=abc"
    assert adapter.parse_launch(response({"url": url})).url == url


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("parse", ["parse_catalog", "parse_launch"])
@pytest.mark.parametrize(
    ("status", "name", "rejected"),
    [
        (400, "Bad Request", True),
        (401, "Unauthorized", True),
        (403, "Forbidden", True),
        (404, "Not Found", True),
        (422, "Unprocessable entity", True),
        (500, "Internal Server Error", False),
        (502, "Bad Gateway", False),
        (503, "Service Unavailable", False),
    ],
)
def test_error_answers_are_classified(adapter, parse, status, name, rejected) -> None:
    body = {"name": name, "message": "Something \n went wrong", "status": status}
    with pytest.raises(ProviderError) as caught:
        getattr(adapter, parse)(response(body, status=status))
    err = caught.value
    assert err.provider_code == name
    assert err.status == status
    assert err.failover_safe is True
    assert err.rejected is rejected
    assert err.retry_same is False
    assert err.retry_after_s is None
    assert f"HTTP {status}: {name}: Something went wrong" in err.message


def test_forbidden_launch_is_a_rejection(adapter) -> None:
    body = {"name": "Forbidden", "message": "Invalid sign", "status": 403}
    with pytest.raises(ProviderError) as caught:
        adapter.parse_launch(response(body, status=403))
    assert (caught.value.rejected, caught.value.provider_code) == (True, "Forbidden")


def test_unknown_game_on_launch_is_a_rejection(adapter) -> None:
    body = {"name": "Unprocessable entity", "message": "Game not found", "status": 422}
    with pytest.raises(ProviderError) as caught:
        adapter.parse_launch(response(body, status=422))
    assert caught.value.provider_code == "Unprocessable entity"
    assert caught.value.rejected is True
    assert "Game not found" in caught.value.message


@pytest.mark.parametrize(("retry_after", "expected"),
                         [("7", 7.0), ("1.5", 1.5), ("soon", None), (None, None), ("-3", None),
                          ("inf", None)])
def test_rate_limit_carries_retry_after(adapter, retry_after, expected) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"name": "Too Many Requests", "message": "Rate limit exceeded.", "status": 429}
    with pytest.raises(ProviderError) as caught:
        adapter.parse_catalog(response(body, status=429, headers=headers))
    assert caught.value.failover_safe is True
    assert caught.value.rejected is True
    assert caught.value.provider_code == "Too Many Requests"
    assert caught.value.retry_after_s == expected


@pytest.mark.parametrize("status", [404, 500, 502])
@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b"",
        b'{"name": ',
        b"[1, 2]",
        b'{"name": 5, "message": null}',
        b'{"name": "", "message": "x"}',
        b'"Forbidden"',
    ],
)
def test_error_status_with_unreadable_body(adapter, status, body) -> None:
    with pytest.raises(ProviderError) as caught:
        adapter.parse_catalog(response(body, status=status))
    assert caught.value.provider_code is None
    assert caught.value.status == status
    assert caught.value.failover_safe is True
    assert caught.value.rejected is (status < 500)


def test_unexpected_status_is_not_a_rejection(adapter) -> None:
    with pytest.raises(ProviderError) as caught:
        adapter.parse_launch(response({"url": "https://x"}, status=302))
    assert (caught.value.failover_safe, caught.value.rejected) == (True, False)


GARBAGE_OK_BODIES = [
    b"<html><body>502 Bad Gateway</body></html>",
    b'{"items": [{"uuid": "abc", "na',
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"42",
    b'{"items": null}',
    b'{"items": {"a": 1}}',
    b'{"url": null}',
    b'{"url": ""}',
    b'{"url": 17}',
    b'{"url": ["https://x"]}',
    b"\xff\xfe\x00garbage",
    b"NaN",
]


@pytest.mark.parametrize("body", GARBAGE_OK_BODIES)
@pytest.mark.parametrize("parse", ["parse_catalog", "parse_launch"])
def test_garbage_2xx_is_a_failover_safe_error(adapter, parse, body) -> None:
    with pytest.raises(ProviderError) as caught:
        getattr(adapter, parse)(response(body, status=200))
    assert caught.value.failover_safe is True
    assert caught.value.rejected is False
    assert caught.value.retry_same is False
    assert caught.value.status == 200


def test_a_launch_body_for_the_catalog_is_an_error(adapter) -> None:
    with pytest.raises(ProviderError):
        adapter.parse_catalog(response({"url": "https://x"}))
