"""Merging the aggregators' catalogs into one list of canonical games.

A game's id is provider-independent: slug(studio, after aliases) + ":" + slug(name). The same
game sold by two aggregators becomes one `Game` with one offer per aggregator, in route order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapters.base import ProviderGame
from gateway.config.slugs import slugify


def canonical_id(studio: str, name: str, aliases: Mapping[str, str]) -> str:
    studio_slug = slugify(studio)
    return f"{aliases.get(studio_slug, studio_slug)}:{slugify(name)}"


@dataclass(frozen=True, slots=True)
class Offer:
    provider: str
    provider_game_id: str


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
            "offers": [
                {"provider": o.provider, "provider_game_id": o.provider_game_id}
                for o in self.offers
            ],
        }


def merge_catalogs(
    catalogs: Sequence[tuple[str, Sequence[ProviderGame]]],
    aliases: Mapping[str, str],
) -> list[Game]:
    """Catalogs in route order -> games sorted by id; the first provider's data wins.

    Studio display name and fields come from the most preferred provider; later providers
    only fill what it left empty and add their offer and platforms.
    """
    merged: dict[str, Game] = {}
    for provider, games in catalogs:
        for pg in games:
            gid = canonical_id(pg.studio, pg.name, aliases)
            offer = Offer(provider, pg.provider_game_id)
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

    def matches(self, game: Game, aliases: Mapping[str, str]) -> bool:
        if self.provider and all(o.provider != self.provider for o in game.offers):
            return False
        if self.studio:
            wanted = slugify(self.studio)
            if aliases.get(wanted, wanted) != game.id.split(":", 1)[0]:
                return False
        if self.category and (game.category or "") != self.category.lower():
            return False
        if self.platform and self.platform.lower() not in game.platforms:
            return False
        return not (self.q and self.q.casefold() not in game.name.casefold())


def filter_games(games: Iterable[Game], flt: GameFilter, aliases: Mapping[str, str]) -> list[Game]:
    return [g for g in games if flt.matches(g, aliases)]


def page_of(items: Sequence[Game], page: int, page_size: int) -> Sequence[Game]:
    start = (page - 1) * page_size
    return items[start : start + page_size]
