"""Merging the aggregators' catalogs into one list of canonical games.

A game's id is provider-independent: slug(studio, after aliases) + ":" + slug(name). The same
game sold by two aggregators becomes one `Game` with one offer per aggregator, in route order.
Each offer carries the countries it may not be launched in; the game's own
`blocked_countries` are those where no offer may serve it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapters.base import ProviderGame
from gateway.config.slugs import slugify

# (provider, studio slug, what the provider itself reports) -> the offer's blocked countries
OfferBlocks = Callable[[str, str, frozenset[str]], frozenset[str]]


def studio_slug(studio: str, aliases: Mapping[str, str]) -> str:
    slug = slugify(studio)
    return aliases.get(slug, slug)


def canonical_id(studio: str, name: str, aliases: Mapping[str, str]) -> str:
    return f"{studio_slug(studio, aliases)}:{slugify(name)}"


def _reported(_provider: str, _studio: str, reported: frozenset[str]) -> frozenset[str]:
    return reported


@dataclass(frozen=True, slots=True)
class Offer:
    provider: str
    provider_game_id: str
    blocked_countries: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Game:
    id: str
    name: str
    studio: str
    category: str | None
    rtp: Decimal | None
    volatility: str | None
    platforms: tuple[str, ...]
    demo: bool
    thumbnail: str | None
    offers: tuple[Offer, ...] = field(default=())

    @property
    def blocked_countries(self) -> frozenset[str]:
        """Where no offer may serve the game: it is left out of listings for those."""
        blocked = self.offers[0].blocked_countries if self.offers else frozenset()
        for offer in self.offers[1:]:
            blocked &= offer.blocked_countries
        return blocked

    def offers_for(self, country: str | None) -> tuple[Offer, ...]:
        if country is None:
            return self.offers
        return tuple(o for o in self.offers if country not in o.blocked_countries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "studio": self.studio,
            "category": self.category,
            "rtp": None if self.rtp is None else str(self.rtp),
            "volatility": self.volatility,
            "platforms": list(self.platforms),
            "demo": self.demo,
            "thumbnail": self.thumbnail,
            "blocked_countries": sorted(self.blocked_countries),
            "offers": [
                {"provider": o.provider, "provider_game_id": o.provider_game_id}
                for o in self.offers
            ],
        }


def merge_catalogs(
    catalogs: Sequence[tuple[str, Sequence[ProviderGame]]],
    aliases: Mapping[str, str],
    offer_blocks: OfferBlocks = _reported,
) -> list[Game]:
    """Catalogs in route order -> games sorted by id; the first provider's data wins.

    Studio display name and fields come from the most preferred provider; later providers
    only fill what it left empty and add their offer and platforms.
    """
    merged: dict[str, Game] = {}
    for provider, games in catalogs:
        for pg in games:
            studio = studio_slug(pg.studio, aliases)
            gid = f"{studio}:{slugify(pg.name)}"
            offer = Offer(
                provider, pg.provider_game_id, offer_blocks(provider, studio, pg.blocked_countries)
            )
            seen = merged.get(gid)
            if seen is None:
                merged[gid] = Game(
                    id=gid,
                    name=pg.name,
                    studio=pg.studio,
                    category=pg.category,
                    rtp=pg.rtp,
                    volatility=pg.volatility,
                    platforms=tuple(sorted(set(pg.platforms))),
                    demo=pg.demo,
                    thumbnail=pg.thumbnail,
                    offers=(offer,),
                )
            elif all(o.provider != provider for o in seen.offers):
                merged[gid] = Game(
                    id=gid,
                    name=seen.name,
                    studio=seen.studio,
                    category=seen.category or pg.category,
                    rtp=seen.rtp if seen.rtp is not None else pg.rtp,
                    volatility=seen.volatility or pg.volatility,
                    platforms=tuple(sorted(set(seen.platforms) | set(pg.platforms))),
                    demo=seen.demo or pg.demo,
                    thumbnail=seen.thumbnail or pg.thumbnail,
                    offers=(*seen.offers, offer),
                )
    return sorted(merged.values(), key=lambda g: g.id)


@dataclass(frozen=True, slots=True)
class GameFilter:
    provider: str | None = None
    studio: str | None = None
    category: str | None = None
    platform: str | None = None
    q: str | None = None
    country: str | None = None  # upper-case ISO 3166-1 alpha-2

    def matches(self, game: Game, aliases: Mapping[str, str]) -> bool:
        if self.provider and all(o.provider != self.provider for o in game.offers):
            return False
        if self.studio and studio_slug(self.studio, aliases) != game.id.split(":", 1)[0]:
            return False
        if self.category and (game.category or "") != self.category.lower():
            return False
        if self.platform and self.platform.lower() not in game.platforms:
            return False
        if self.country and self.country in game.blocked_countries:
            return False
        return not (self.q and self.q.casefold() not in game.name.casefold())
