"""The merged catalog one games route reads: immutable, indexed and rendered once.

A snapshot is built from each aggregator's last catalog, in the route's order, whenever one
of them changes; requests only read it. Each game's JSON is rendered when the snapshot is
built, and each list page the first time it is asked for (bounded, least recently used
first out), so a repeated request is a dict lookup and the bytes it finds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from gateway.games.codec import ProviderCatalog
from gateway.games.jurisdiction import Jurisdiction
from gateway.games.merge import Game, GameFilter, merge_catalogs, studio_slug

PAGE_CACHE_BYTES = 8 * 1024 * 1024
PAGE_CACHE_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class ProviderPart:
    """One aggregator of the route as the snapshot sees it."""

    name: str
    catalog: ProviderCatalog | None
    status: str  # ok | error | timeout: the last attempt's outcome
    kept_after_failure: bool = False  # a catalog still served after its refresh failed


class _Pages:
    """Rendered list pages by query, bounded by count and bytes."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        self._entries: OrderedDict[tuple[GameFilter, int, int], bytes] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_entries = max_entries

    def get(self, key: tuple[GameFilter, int, int]) -> bytes | None:
        body = self._entries.get(key)
        if body is not None:
            self._entries.move_to_end(key)
        return body

    def put(self, key: tuple[GameFilter, int, int], body: bytes) -> None:
        if len(body) > self._max_bytes:
            return
        self._entries[key] = body
        self._bytes += len(body)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped)


def _index(
    games: Sequence[Game], keys_of: Callable[[Game], Iterable[str]]
) -> dict[str, tuple[int, ...]]:
    index: dict[str, list[int]] = {}
    for position, game in enumerate(games):
        for key in keys_of(game):
            index.setdefault(key, []).append(position)
    return {key: tuple(positions) for key, positions in index.items()}


class CatalogSnapshot:
    def __init__(
        self,
        parts: Sequence[ProviderPart],
        aliases: Mapping[str, str],
        jurisdiction: Jurisdiction | None = None,
        *,
        page_cache_bytes: int = PAGE_CACHE_BYTES,
    ) -> None:
        jurisdiction = jurisdiction or Jurisdiction()
        present = [(p.name, p.catalog.games) for p in parts if p.catalog is not None]
        self.parts = tuple(parts)
        self.aliases = aliases
        self.games: tuple[Game, ...] = tuple(
            merge_catalogs(present, aliases, jurisdiction.offer_blocks)
        )
        self.by_id = {g.id: g for g in self.games}
        # (provider, provider's game code) -> canonical id: wallet callbacks name games so.
        self.by_offer = {
            (o.provider, o.provider_game_id): g.id for g in self.games for o in g.offers
        }
        self._bodies = {g.id: orjson.dumps(g.to_dict()) for g in self.games}
        self.providers = {p.name: "ok" if p.catalog is not None else p.status for p in parts}
        self.partial = any(status != "ok" for status in self.providers.values())
        self.stale = any(p.kept_after_failure for p in parts if p.catalog is not None)
        games = self.games
        self._by_provider = _index(games, lambda g: {o.provider for o in g.offers})
        self._by_studio = _index(games, lambda g: (g.id.split(":", 1)[0],))
        self._by_category = _index(games, lambda g: (g.category or "",))
        self._by_platform = _index(games, lambda g: g.platforms)
        self._pages = _Pages(page_cache_bytes, PAGE_CACHE_ENTRIES)

    @property
    def missing(self) -> list[str]:
        """The route's aggregators whose games the snapshot lacks."""
        return [name for name, status in self.providers.items() if status != "ok"]

    def game_body(self, game_id: str) -> bytes | None:
        return self._bodies.get(game_id)

    def select(self, flt: GameFilter) -> list[Game]:
        """The games matching `flt`, in id order; the indexes narrow the scan first."""
        narrowing: list[tuple[int, ...]] = []
        if flt.provider:
            narrowing.append(self._by_provider.get(flt.provider, ()))
        if flt.studio:
            narrowing.append(self._by_studio.get(studio_slug(flt.studio, self.aliases), ()))
        if flt.category:
            narrowing.append(self._by_category.get(flt.category.lower(), ()))
        if flt.platform:
            narrowing.append(self._by_platform.get(flt.platform.lower(), ()))
        if narrowing:
            narrowing.sort(key=len)
            keep = set(narrowing[0]).intersection(*narrowing[1:])
            candidates = [self.games[i] for i in sorted(keep)]
        else:
            candidates = list(self.games)
        if flt.country:
            candidates = [g for g in candidates if flt.country not in g.blocked_countries]
        if flt.q:
            needle = flt.q.casefold()
            candidates = [g for g in candidates if needle in g.name.casefold()]
        return candidates

    def page_body(self, flt: GameFilter, page: int, page_size: int) -> bytes:
        """The `GameList` JSON of one page, rendered once per snapshot."""
        key = (flt, page, page_size)
        body = self._pages.get(key)
        if body is None:
            matched = self.select(flt)
            start = (page - 1) * page_size
            meta = {
                "total": len(matched),
                "page": page,
                "page_size": page_size,
                "partial": self.partial,
                "providers": self.providers,
            }
            data = b",".join(self._bodies[g.id] for g in matched[start : start + page_size])
            body = b'{"data":[' + data + b'],"meta":' + orjson.dumps(meta) + b"}"
            self._pages.put(key, body)
        return body
