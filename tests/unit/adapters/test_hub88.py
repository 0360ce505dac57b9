"""The Hub88 adapter alone: signed requests, real-shaped answers, every failure."""

from __future__ import annotations

import base64
import contextlib
import json
from decimal import Decimal
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from adapters import hub88
from adapters.base import (
    GameAdapter,
    LaunchRequest,
    ProviderError,
    ProviderGame,
    UpstreamRequest,
    UpstreamResponse,
)

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM = _KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
).decode()
PUBLIC_KEY = _KEY.public_key()


def make_adapter(operator_id: Any = 42) -> hub88.Hub88Adapter:
    return hub88.create("hub88", {"operator_id": operator_id, "private_key": PRIVATE_PEM})


# Loading a key checks it, which takes tens of milliseconds: the parsing tests share one.
ADAPTER = make_adapter()


def assert_signed(req: UpstreamRequest) -> None:
    """Checks the signature the way Hub88 does, with nothing but the public key."""
    signature = base64.b64decode(req.headers["X-Hub88-Signature"], validate=True)
    PUBLIC_KEY.verify(signature, req.body, padding.PKCS1v15(), hashes.SHA256())


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> UpstreamResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return UpstreamResponse(status=status, headers=headers or {}, body=raw)


def launch(**changes: Any) -> LaunchRequest:
    fields: dict[str, Any] = {
        "provider_game_id": "pp_sweet_bonanza",
        "player_id": "p-7f3a",
        "currency": "EUR",
        "mode": "real",
        "language": "en",
        "platform": "desktop",
        "country": "DE",
        "return_url": "https://casino.example/lobby",
        "session_token": "tok-123",
        "ip": "203.0.113.9",
    }
    fields.update(changes)
    return LaunchRequest(**fields)


def hub88_item(**changes: Any) -> dict[str, Any]:
    """A game-list item in the shape Hub88 documents."""
    item: dict[str, Any] = {
        "game_code": "pp_sweet_bonanza",
        "name": "Sweet Bonanza",
        "product": "Pragmatic Play",
        "category": "Slots",
        "platforms": ["GPL_DESKTOP", "GPL_MOBILE"],
        "url_thumb": "https://cdn.hub88.example/pp_sweet_bonanza.png",
        "url_background": "https://cdn.hub88.example/pp_sweet_bonanza_bg.jpg",
        "freebet_support": True,
        "enabled": True,
        "blocked_countries": ["US"],
        "release_date": "2019-06-27",
        "volatility": 5,
        "rtp": "96.48",
        "paylines": None,
        "hit_ratio": "21.50",
        "languages": ["en", "de"],
        "technology": "HTML5",
        "features": None,
        "certifications": None,
        "phoenix_jackpot_support": False,
    }
    item.update(changes)
    return item


# ---- construction -------------------------------------------------------------------------


def test_spec() -> None:
    assert hub88.SPEC.kind == "games"
    assert hub88.SPEC.credentials == ("operator_id", "private_key")
    assert hub88.SPEC.secrets == frozenset({"private_key"})
    assert hub88.SPEC.optional == ("hub88_public_key",)


def test_create_gives_a_game_adapter() -> None:
    adapter = make_adapter()
    assert isinstance(adapter, GameAdapter)
    assert adapter.kind == "games"
    assert adapter.operator_id == 42


@pytest.mark.parametrize(("given", "stored"), [(7, 7), ("7", 7), (" 1200 ", 1200), (0, 0)])
def test_operator_id_accepts_int_or_digits(given: Any, stored: int) -> None:
    assert make_adapter(given).operator_id == stored


@pytest.mark.parametrize("given", [None, True, -1, "", "abc", "1.5", "-3", "٣", 1.0, [1]])
def test_operator_id_rejects_anything_else(given: Any) -> None:
    with pytest.raises(ValueError, match="operator_id"):
        make_adapter(given)


def test_private_key_as_bytes() -> None:
    adapter = hub88.create("h", {"operator_id": 1, "private_key": PRIVATE_PEM.encode()})
    assert_signed(adapter.catalog_request())


def _ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _encrypted_pem() -> str:
    return _KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()


@pytest.mark.parametrize(
    "pem",
    [
        None,
        "",
        "not a key",
        PRIVATE_PEM[:200],
        PUBLIC_KEY.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        _ec_pem(),
        _encrypted_pem(),
        12345,
    ],
    ids=["none", "empty", "text", "cut", "public", "ec", "encrypted", "int"],
)
def test_private_key_must_be_an_rsa_pem(pem: Any) -> None:
    with pytest.raises(ValueError, match="private_key") as info:
        hub88.create("hub88", {"operator_id": 1, "private_key": pem})
    assert "MII" not in str(info.value)  # no key material in the message


def test_repr_keeps_the_key_out() -> None:
    assert repr(make_adapter()) == "Hub88Adapter(name='hub88', operator_id=42)"


# ---- requests -----------------------------------------------------------------------------


def test_catalog_request_is_a_signed_compact_body() -> None:
    req = ADAPTER.catalog_request()
    assert req.method == "POST"
    assert req.path == "/operator/generic/v2/game/list"
    assert req.body == b'{"operator_id":42}'
    assert req.headers["Content-Type"] == "application/json"
    assert_signed(req)


def test_signature_is_over_the_exact_body() -> None:
    req = ADAPTER.catalog_request()
    signature = base64.b64decode(req.headers["X-Hub88-Signature"])
    with pytest.raises(InvalidSignature):
        PUBLIC_KEY.verify(signature, b'{"operator_id": 42}', padding.PKCS1v15(), hashes.SHA256())


def test_health_request_is_the_game_list() -> None:
    adapter = ADAPTER
    health, catalog = adapter.health_request(), adapter.catalog_request()
    assert (health.method, health.path, health.body) == (catalog.method, catalog.path, catalog.body)
    assert_signed(health)


def test_launch_request_real() -> None:
    req = ADAPTER.launch_request(launch())
    assert req.method == "POST"
    assert req.path == "/operator/generic/v2/game/url"
    assert req.headers["Content-Type"] == "application/json"
    assert_signed(req)
    assert b" " not in req.body
    assert list(json.loads(req.body).items()) == [
        ("user", "p-7f3a"),
        ("token", "tok-123"),
        ("platform", "GPL_DESKTOP"),
        ("game_code", "pp_sweet_bonanza"),
        ("currency", "EUR"),
        ("game_currency", "EUR"),
        ("country", "DE"),
        ("lang", "en"),
        ("ip", "203.0.113.9"),
        ("lobby_url", "https://casino.example/lobby"),
        ("operator_id", 42),
    ]


def test_launch_request_mobile_omits_missing_fields() -> None:
    req = ADAPTER.launch_request(
        launch(platform="mobile", country=None, language=None, ip=None, return_url=None)
    )
    assert_signed(req)
    assert json.loads(req.body) == {
        "user": "p-7f3a",
        "token": "tok-123",
        "platform": "GPL_MOBILE",
        "game_code": "pp_sweet_bonanza",
        "currency": "EUR",
        "game_currency": "EUR",
        "operator_id": 42,
    }


def test_launch_request_demo_has_no_player_and_currency_xxx() -> None:
    req = ADAPTER.launch_request(launch(mode="demo", currency="USD"))
    assert_signed(req)
    body = json.loads(req.body)
    assert "user" not in body
    assert "token" not in body
    assert body["currency"] == "XXX"
    assert body["game_currency"] == "XXX"
    assert body["game_code"] == "pp_sweet_bonanza"


def test_launch_request_keeps_non_ascii_as_utf8() -> None:
    req = ADAPTER.launch_request(launch(return_url="https://casino.example/lobby/ü"))
    assert_signed(req)
    assert "https://casino.example/lobby/ü".encode() in req.body


# ---- catalog answers ----------------------------------------------------------------------


def test_parse_catalog_maps_a_real_shaped_item() -> None:
    page = ADAPTER.parse_catalog(answer(200, [hub88_item()]))
    assert page.next_request is None
    assert page.games == (
        ProviderGame(
            provider_game_id="pp_sweet_bonanza",
            name="Sweet Bonanza",
            studio="Pragmatic Play",
            category="slots",
            rtp=Decimal("96.48"),
            volatility="high",
            platforms=("desktop", "mobile"),
            demo=True,
            thumbnail="https://cdn.hub88.example/pp_sweet_bonanza.png",
            blocked_countries=frozenset({"US"}),
        ),
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["US", "gb", " de "], {"US", "GB", "DE"}),
        (["USA", "", "U1", 7, None, "ÜS"], set()),
        (None, set()),
        ("US", set()),  # a string, not a list of countries
        ([], set()),
    ],
)
def test_blocked_countries_are_read_as_country_codes(given: Any, expected: set[str]) -> None:
    (game,) = ADAPTER.parse_catalog(answer(200, [hub88_item(blocked_countries=given)])).games
    assert game.blocked_countries == frozenset(expected)


def test_parse_catalog_skips_disabled_and_incomplete_items() -> None:
    items: list[Any] = [
        hub88_item(game_code="a", enabled=False),
        hub88_item(game_code="b", enabled=None),  # not said to be disabled
        hub88_item(game_code=None),
        hub88_item(game_code="d", name=""),
        hub88_item(game_code="e", product=None),
        hub88_item(game_code=17),
        {"game_code": "g"},
        "pp_wolf_gold",
        None,
        42,
        [],
        hub88_item(game_code="h"),
    ]
    page = ADAPTER.parse_catalog(answer(200, items))
    assert [g.provider_game_id for g in page.games] == ["b", "h"]


def test_parse_catalog_with_nulls_everywhere_optional() -> None:
    item: dict[str, Any] = {"game_code": "x", "name": "X", "product": "Spribe"}
    item |= dict.fromkeys(
        ("category", "platforms", "url_thumb", "volatility", "rtp", "blocked_countries")
    )
    (game,) = ADAPTER.parse_catalog(answer(200, [item])).games
    assert (game.category, game.rtp, game.volatility, game.platforms, game.thumbnail) == (
        None,
        None,
        None,
        (),
        None,
    )
    assert game.demo is True
    assert game.blocked_countries == frozenset()


def test_parse_catalog_empty_list() -> None:
    assert ADAPTER.parse_catalog(answer(200, [])).games == ()


@pytest.mark.parametrize(
    ("number", "volatility"),
    [
        (1, "low"),
        (2, "low-medium"),
        (3, "medium"),
        (4, "medium-high"),
        (5, "high"),
        (6, "very-high"),
        (0, None),
        (7, None),
        (-1, None),
        (3.5, None),
        (4.0, "medium-high"),
        ("3", None),
        (True, None),
        (None, None),
        ([3], None),
    ],
)
def test_volatility_scale(number: Any, volatility: str | None) -> None:
    (game,) = ADAPTER.parse_catalog(answer(200, [hub88_item(volatility=number)])).games
    assert game.volatility == volatility


@pytest.mark.parametrize(
    ("raw", "rtp"),
    [
        ("96.10", Decimal("96.10")),
        (" 97 ", Decimal("97")),
        (96.5, Decimal("96.5")),
        (97, Decimal("97")),
        (None, None),
        ("", None),
        ("n/a", None),
        ("NaN", None),
        ("Infinity", None),
        ("0", None),
        ("101.5", None),
        (True, None),
        ({"value": "96"}, None),
    ],
)
def test_rtp(raw: Any, rtp: Decimal | None) -> None:
    (game,) = ADAPTER.parse_catalog(answer(200, [hub88_item(rtp=raw)])).games
    assert game.rtp == rtp
    assert not isinstance(game.rtp, float)


@pytest.mark.parametrize(
    ("platforms", "expected"),
    [
        (["GPL_DESKTOP"], ("desktop",)),
        (["GPL_MOBILE"], ("mobile",)),
        (["GPL_MOBILE", "GPL_DESKTOP", "GPL_MOBILE"], ("mobile", "desktop")),
        (["GPL_TV", 3, None, "GPL_DESKTOP"], ("desktop",)),
        ("GPL_DESKTOP", ()),
        (None, ()),
    ],
)
def test_platforms(platforms: Any, expected: tuple[str, ...]) -> None:
    (game,) = ADAPTER.parse_catalog(answer(200, [hub88_item(platforms=platforms)])).games
    assert game.platforms == expected


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("Slots", "slots"),
        ("LIVE", "live"),
        ("Video Slots", "slots"),
        ("Live Casino", "live"),
        ("Table  Games", "table"),
        ("Crash", "crash"),
        ("Scratch Cards", "scratch cards"),
        ("", None),
        (5, None),
    ],
)
def test_category_is_lower_case(category: Any, expected: str | None) -> None:
    (game,) = ADAPTER.parse_catalog(answer(200, [hub88_item(category=category)])).games
    assert game.category == expected


def test_thumbnail_only_when_a_string() -> None:
    (game,) = ADAPTER.parse_catalog(answer(200, [hub88_item(url_thumb=3)])).games
    assert game.thumbnail is None


# ---- failures -----------------------------------------------------------------------------

GARBAGE_BODIES = [
    b"",
    b"<html><body>502 Bad Gateway</body></html>",
    b'[{"game_code": "pp_sweet_bonanza", "na',
    b'{"items": [{"uuid": "abc", "na',
    b"\xff\xfe\x00",
    b"null",
    b'"ok"',
    b"12",
    b'{"items": []}',
    b'{"error": "RS_OK"}',
]


@pytest.mark.parametrize("body", GARBAGE_BODIES)
def test_catalog_garbage_with_200_is_failover_safe(body: bytes) -> None:
    with pytest.raises(ProviderError) as info:
        ADAPTER.parse_catalog(answer(200, body))
    err = info.value
    assert (err.failover_safe, err.rejected, err.retry_same) == (True, False, False)
    assert err.status == 200
    assert err.provider_code is None


@pytest.mark.parametrize(
    "body", [*GARBAGE_BODIES, b"[]", b'{"url": null}', b'{"url": ""}', b'{"url": 5}']
)
def test_launch_garbage_with_200_is_failover_safe(body: bytes) -> None:
    with pytest.raises(ProviderError) as info:
        ADAPTER.parse_launch(answer(200, body))
    err = info.value
    assert (err.failover_safe, err.rejected, err.retry_same) == (True, False, False)
    assert err.status == 200


ERROR_CASES = [
    (400, "RS_ERROR_INVALID_GAME", True),
    (400, "RS_ERROR_WRONG_CURRENCY", True),
    (401, "RS_ERROR_INVALID_SIGNATURE", True),
    (401, "RS_ERROR_INVALID_PARTNER", True),
    (403, "RS_ERROR_USER_DISABLED", True),
    (404, "RS_ERROR_UNKNOWN", True),
    (500, "RS_ERROR_UNKNOWN", False),
    (503, "RS_ERROR_UNKNOWN", False),
]


@pytest.mark.parametrize(("status", "code", "rejected"), ERROR_CASES)
@pytest.mark.parametrize("call", ["parse_catalog", "parse_launch"])
def test_error_answers(call: str, status: int, code: str, rejected: bool) -> None:
    with pytest.raises(ProviderError) as info:
        getattr(ADAPTER, call)(answer(status, {"error": code}))
    err = info.value
    assert err.provider_code == code
    assert err.status == status
    assert err.failover_safe is True
    assert err.rejected is rejected
    assert err.retry_same is False
    assert code in err.message


@pytest.mark.parametrize(
    ("status", "body", "rejected"),
    [
        (502, b"<html><body>502 Bad Gateway</body></html>", False),
        (500, b"", False),
        (500, b'{"error": 5}', False),
        (500, b'["RS_ERROR_UNKNOWN"]', False),
        (404, b"<html>Not Found</html>", True),
        (301, b"", False),
        (204, b"", False),
    ],
)
@pytest.mark.parametrize("call", ["parse_catalog", "parse_launch"])
def test_error_answers_without_a_code(call: str, status: int, body: bytes, rejected: bool) -> None:
    with pytest.raises(ProviderError) as info:
        getattr(ADAPTER, call)(answer(status, body))
    err = info.value
    assert err.provider_code is None
    assert err.status == status
    assert (err.failover_safe, err.rejected) == (True, rejected)


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-2"}, None),
    ],
)
def test_rate_limited(headers: dict[str, str], retry_after: float | None) -> None:
    with pytest.raises(ProviderError) as info:
        ADAPTER.parse_launch(answer(429, {"error": "RS_ERROR_UNKNOWN"}, headers))
    err = info.value
    assert (err.status, err.failover_safe, err.rejected) == (429, True, True)
    assert err.retry_after_s == retry_after


def test_parse_launch_ok() -> None:
    url = "https://games.hub88.example/launch/pp_sweet_bonanza?session=abc&mode=real"
    result = ADAPTER.parse_launch(answer(200, {"url": url}))
    assert result.url == url


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        "x",
        [],
        {},
        [None],
        [[]],
        {"url": {}},
        [{"game_code": []}],
        [{"game_code": "a", "name": "A", "product": "P", "rtp": "1e999999999"}],
        [{"game_code": "a", "name": "A", "product": "P", "volatility": 1e308}],
        [{"game_code": "a", "name": "A", "product": "P", "category": ["x"]}],
    ],
)
@pytest.mark.parametrize("status", [200, 400, 500])
def test_only_provider_errors_or_results(value: Any, status: int) -> None:
    adapter = ADAPTER
    for parse in (adapter.parse_catalog, adapter.parse_launch):
        with contextlib.suppress(ProviderError):
            parse(answer(status, value))
