"""One aggregator's catalog as fetched, and its bytes in the shared store.

The bytes are what one replica publishes for the others: when it was fetched (wall clock,
so every replica ages it the same way) and the games. rtp travels as a string, never a float.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal

import orjson

from adapters.base import ProviderGame

_HEADER = struct.Struct("!d")  # fetched_at, then the games as JSON


@dataclass(frozen=True, slots=True, eq=False)
class ProviderCatalog:
    """Compared by identity: two fetches are two versions, even with the same games."""

    provider: str
    games: tuple[ProviderGame, ...]
    fetched_at: float  # unix time of the fetch, on whichever replica made it


def encode(catalog: ProviderCatalog) -> bytes:
    rows = [
        [
            g.provider_game_id,
            g.name,
            g.studio,
            g.category,
            None if g.rtp is None else str(g.rtp),
            g.volatility,
            list(g.platforms),
            g.demo,
            g.thumbnail,
            sorted(g.blocked_countries),
        ]
        for g in catalog.games
    ]
    return _HEADER.pack(catalog.fetched_at) + orjson.dumps(rows)


def decode(provider: str, data: bytes) -> ProviderCatalog:
    """Raises ValueError on bytes this code did not write."""
    try:
        (fetched_at,) = _HEADER.unpack_from(data)
        rows = orjson.loads(data[_HEADER.size :])
        games = tuple(_game(*row) for row in rows)
    except (struct.error, orjson.JSONDecodeError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"not a catalog entry: {exc}") from None
    return ProviderCatalog(provider, games, fetched_at)


def _game(
    gid: str,
    name: str,
    studio: str,
    category: str | None,
    rtp: str | None,
    volatility: str | None,
    platforms: list[str],
    demo: bool,
    thumbnail: str | None,
    blocked: list[str],
) -> ProviderGame:
    return ProviderGame(
        gid,
        name,
        studio,
        category,
        None if rtp is None else Decimal(rtp),
        volatility,
        tuple(platforms),
        demo,
        thumbnail,
        frozenset(blocked),
    )
