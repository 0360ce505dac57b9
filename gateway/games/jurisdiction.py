"""Where a game may be offered: the aggregators' own lists and the config's.

An offer (one aggregator selling one game) is blocked in a country when the aggregator says
so (Hub88's `blocked_countries`), when the config blocks that aggregator there
(`providers.<name>.blocked_countries`), or the game's studio (`studios.<studio>`). A listing
for a country leaves out games no offer may serve there; a launch uses only the offers that
may, and is refused with 451 when there are none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.config.model import Config
from gateway.games.merge import Game, Offer
from gateway.problems import ApiError


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    by_provider: Mapping[str, frozenset[str]] = field(default_factory=dict)
    by_studio: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> Jurisdiction:
        return cls(
            {n: p.blocked_countries for n, p in config.providers.items() if p.blocked_countries},
            {s: c for s, c in config.studio_blocked_countries.items() if c},
        )

    def offer_blocks(self, provider: str, studio: str, reported: frozenset[str]) -> frozenset[str]:
        """The countries one offer may not be launched in."""
        extra_provider = self.by_provider.get(provider)
        extra_studio = self.by_studio.get(studio)
        if not extra_provider and not extra_studio:
            return reported
        return reported | (extra_provider or frozenset()) | (extra_studio or frozenset())


def launchable_offers(game: Game, country: str | None) -> tuple[Offer, ...]:
    """The offers that may serve a player in `country`; 451 when none may."""
    offers = game.offers_for(country)
    if not offers:
        raise ApiError(
            "unavailable_for_legal_reasons",
            f"game '{game.id}' may not be offered in {country}",
            extra={"country": country},
        )
    return offers
