"""The merged snapshot: offers and their blocked countries, filters, pages rendered once."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from adapters.base import ProviderGame
from gateway.games.catalog import find_game, require_some_catalog
from gateway.games.codec import ProviderCatalog
from gateway.games.jurisdiction import Jurisdiction, launchable_offers
from gateway.games.merge import GameFilter
from gateway.games.snapshot import CatalogSnapshot, ProviderPart
from gateway.problems import ApiError

ALIASES = {"pragmaticplay": "pragmatic-play"}


def game(gid: str, name: str, studio: str, **kw: object) -> ProviderGame:
    fields: dict[str, object] = {
        "category": "slots",
        "rtp": Decimal("96.50"),
        "volatility": "high",
        "platforms": ("desktop", "mobile"),
        "demo": True,
        "thumbnail": None,
        "blocked_countries": frozenset(),
    }
    fields.update(kw)
    return ProviderGame(gid, name, studio, **fields)  # type: ignore[arg-type]


HUB88 = ProviderCatalog(
    "hub88",
    (
        game("pp_sb", "Sweet Bonanza", "Pragmatic Play", blocked_countries=frozenset({"US"})),
        game(
            "spribe_aviator",
            "Aviator",
            "Spribe",
            category="crash",
            blocked_countries=frozenset({"US", "FR"}),
        ),
        game("fire", "Fire Joker", "Play'n GO", platforms=("desktop",)),
    ),
    1_000.0,
)
SLOT = ProviderCatalog(
    "slotegrator",
    (
        game("uuid-1", "Sweet Bonanza", "PragmaticPlay", rtp=None),
        game("uuid-2", "Money Train 2", "Relax Gaming", category="slots"),
    ),
    1_000.0,
)


def snapshot(jurisdiction: Jurisdiction | None = None, *parts: ProviderPart) -> CatalogSnapshot:
    parts = parts or (ProviderPart("hub88", HUB88, "ok"), ProviderPart("slotegrator", SLOT, "ok"))
    return CatalogSnapshot(parts, ALIASES, jurisdiction)


def test_offers_carry_their_blocks_and_the_game_those_of_every_offer():
    snap = snapshot(
        Jurisdiction(
            by_provider={"slotegrator": frozenset({"DE"})},
            by_studio={"pragmatic-play": frozenset({"NL"})},
        )
    )
    bonanza = snap.by_id["pragmatic-play:sweet-bonanza"]
    assert [(o.provider, sorted(o.blocked_countries)) for o in bonanza.offers] == [
        ("hub88", ["NL", "US"]),  # Hub88's own list, and the studio's
        ("slotegrator", ["DE", "NL"]),  # the provider's config list, and the studio's
    ]
    assert bonanza.blocked_countries == {"NL"}  # no offer may serve NL
    assert bonanza.rtp == Decimal("96.50")  # the first provider's fields win
    assert [o.provider for o in launchable_offers(bonanza, "US")] == ["slotegrator"]
    assert [o.provider for o in launchable_offers(bonanza, "DE")] == ["hub88"]
    assert [o.provider for o in launchable_offers(bonanza, None)] == ["hub88", "slotegrator"]
    with pytest.raises(ApiError) as refused:
        launchable_offers(bonanza, "NL")
    assert (refused.value.code, refused.value.status) == ("unavailable_for_legal_reasons", 451)
    assert refused.value.extra == {"country": "NL"}


def test_game_json_is_rendered_once_and_lists_blocked_countries():
    snap = snapshot()
    body = snap.game_body("spribe:aviator")
    assert body is snap.game_body("spribe:aviator")
    assert json.loads(body or b"") == {
        "id": "spribe:aviator",
        "name": "Aviator",
        "studio": "Spribe",
        "category": "crash",
        "rtp": "96.50",
        "volatility": "high",
        "platforms": ["desktop", "mobile"],
        "demo": True,
        "thumbnail": None,
        "blocked_countries": ["FR", "US"],
        "offers": [{"provider": "hub88", "provider_game_id": "spribe_aviator"}],
    }
    assert snap.game_body("spribe:nothing") is None


@pytest.mark.parametrize(
    ("flt", "ids"),
    [
        (
            GameFilter(),
            [
                "playn-go:fire-joker",
                "pragmatic-play:sweet-bonanza",
                "relax-gaming:money-train-2",
                "spribe:aviator",
            ],
        ),
        (
            GameFilter(provider="slotegrator"),
            ["pragmatic-play:sweet-bonanza", "relax-gaming:money-train-2"],
        ),
        (GameFilter(studio="PragmaticPlay"), ["pragmatic-play:sweet-bonanza"]),
        (GameFilter(category="CRASH"), ["spribe:aviator"]),
        (
            GameFilter(platform="mobile", provider="hub88"),
            ["pragmatic-play:sweet-bonanza", "spribe:aviator"],
        ),
        (
            GameFilter(country="US"),
            ["playn-go:fire-joker", "pragmatic-play:sweet-bonanza", "relax-gaming:money-train-2"],
        ),
        (
            GameFilter(country="FR", provider="hub88"),
            ["playn-go:fire-joker", "pragmatic-play:sweet-bonanza"],
        ),
        (GameFilter(q="BONANZA"), ["pragmatic-play:sweet-bonanza"]),
        (GameFilter(provider="nobody"), []),
    ],
)
def test_select_agrees_with_the_plain_filter(flt: GameFilter, ids: list[str]):
    snap = snapshot()
    assert [g.id for g in snap.select(flt)] == ids
    assert [g.id for g in snap.games if flt.matches(g, ALIASES)] == ids


def test_a_page_is_rendered_once_per_snapshot():
    snap = snapshot()
    flt = GameFilter(provider="hub88")
    body = snap.page_body(flt, 1, 2)
    assert snap.page_body(GameFilter(provider="hub88"), 1, 2) is body
    page = json.loads(body)
    assert [g["id"] for g in page["data"]] == [
        "playn-go:fire-joker",
        "pragmatic-play:sweet-bonanza",
    ]
    assert page["meta"] == {
        "total": 3,
        "page": 1,
        "page_size": 2,
        "partial": False,
        "providers": {"hub88": "ok", "slotegrator": "ok"},
    }
    assert json.loads(snap.page_body(flt, 2, 2))["data"][0]["id"] == "spribe:aviator"
    assert json.loads(snap.page_body(flt, 9, 2))["data"] == []


def test_the_page_cache_is_bounded_by_bytes():
    parts = (ProviderPart("hub88", HUB88, "ok"),)
    snap = CatalogSnapshot(parts, ALIASES, page_cache_bytes=2000)
    first = snap.page_body(GameFilter(), 1, 3)
    for i in range(30):
        snap.page_body(GameFilter(q=f"x{i}"), 1, 3)
    assert snap.page_body(GameFilter(), 1, 3) is not first  # evicted, rendered again
    assert snap.page_body(GameFilter(), 1, 3) == first


def test_an_aggregator_without_catalog_makes_the_snapshot_partial():
    snap = snapshot(
        None, ProviderPart("hub88", None, "timeout"), ProviderPart("slotegrator", SLOT, "ok")
    )
    assert (snap.providers, snap.partial, snap.missing) == (
        {"hub88": "timeout", "slotegrator": "ok"},
        True,
        ["hub88"],
    )
    require_some_catalog(snap)  # one aggregator's games are a lobby
    assert find_game(snap, "relax-gaming:money-train-2").offers[0].provider == "slotegrator"
    with pytest.raises(ApiError) as unknown:
        find_game(snap, "spribe:aviator")  # maybe Hub88's: it cannot be said to be unknown
    assert unknown.value.code == "provider_unavailable"
    none = snapshot(
        None, ProviderPart("hub88", None, "error"), ProviderPart("slotegrator", None, "timeout")
    )
    with pytest.raises(ApiError) as outage:
        require_some_catalog(none)
    assert outage.value.detail == "no game provider answered: hub88 error, slotegrator timeout"


def test_a_catalog_kept_after_a_failed_refresh_makes_the_snapshot_stale():
    kept = snapshot(
        None,
        ProviderPart("hub88", HUB88, "error", kept_after_failure=True),
        ProviderPart("slotegrator", SLOT, "ok"),
    )
    assert (kept.stale, kept.partial, kept.providers["hub88"]) == (True, False, "ok")
    assert not snapshot().stale
    full = snapshot()
    with pytest.raises(ApiError) as unknown:
        find_game(full, "spribe:nothing")
    assert unknown.value.code == "not_found"
