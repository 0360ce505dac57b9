"""The merged catalog behind GET /v1/games and GET /v1/games/{id}, and game lookups.

Each aggregator's catalog is fetched (all its pages) and cached on its own, so when one
aggregator is down its last good catalog can still be served (stale-if-error) beside the
other's fresh one. The merge of the per-provider catalogs is memoized on their identity:
a cache hit costs a dict lookup, not a re-merge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from adapters.base import CatalogPage, ProviderGame
from gateway.games.merge import Game, merge_catalogs
from gateway.problems import ApiError
from gateway.upstream.calls import AttemptFailed, call_provider
from gateway.upstream.selection import Selection, no_provider

if TYPE_CHECKING:
    from gateway.runtime.gateway import Gateway, Runtime
    from gateway.upstream.providers import ProviderState

MAX_PAGES = 200
MERGE_MEMO_SIZE = 16


class CatalogCodec:
    """One provider's catalog as bytes, for the shared cache. rtp travels as a string."""

    def encode(self, games: tuple[ProviderGame, ...]) -> bytes:
        return orjson.dumps(
            [
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
                ]
                for g in games
            ]
        )

    def decode(self, data: bytes) -> tuple[ProviderGame, ...]:
        return tuple(self._game(*row) for row in orjson.loads(data))

    @staticmethod
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
    ) -> ProviderGame:
        rtp_value = None if rtp is None else Decimal(rtp)
        return ProviderGame(
            gid, name, studio, category, rtp_value, volatility, tuple(platforms), demo, thumbnail
        )


CATALOG_CODEC = CatalogCodec()


@dataclass
class CatalogIndex:
    games: list[Game]
    by_id: dict[str, Game]
    _json: dict[str, bytes] = field(default_factory=dict)

    def game_json(self, game_id: str) -> bytes | None:
        """Rendered once per catalog version: a cache hit serves pre-built bytes."""
        cached = self._json.get(game_id)
        if cached is None:
            game = self.by_id.get(game_id)
            if game is None:
                return None
            cached = self._json[game_id] = orjson.dumps(game.to_dict())
        return cached


@dataclass
class CatalogView:
    index: CatalogIndex
    providers: dict[str, str]  # name -> ok | error | timeout
    cache_status: str | None  # HIT | MISS | STALE, None when the route does not cache

    @property
    def partial(self) -> bool:
        return any(status != "ok" for status in self.providers.values())


async def _fetch_all_pages(
    gw: Gateway, rt: Runtime, name: str, op: str
) -> tuple[ProviderGame, ...]:
    state = rt.providers[name]
    adapter = state.adapter
    request = adapter.catalog_request()
    games: list[ProviderGame] = []
    for _ in range(MAX_PAGES):
        page: CatalogPage = await call_provider(gw, state, op, request, adapter.parse_catalog)
        games.extend(page.games)
        if page.next_request is None:
            break
        request = page.next_request
    return tuple(games)


async def _provider_catalog(
    gw: Gateway, rt: Runtime, name: str, op: str
) -> tuple[tuple[ProviderGame, ...] | None, str, str | None]:
    """(games or None, status ok|error|timeout, cache status)."""
    route = rt.config.routes[op]
    key = catalog_key(rt.providers[name])

    async def fetch() -> tuple[tuple[ProviderGame, ...], int]:
        games = await _fetch_all_pages(gw, rt, name, op)
        return games, 512 + 400 * len(games)  # rough size: bounds memory, need not be exact

    try:
        if route.cache is None or route.cache.ttl_s <= 0:
            games, _ = await fetch()
            return games, "ok", None
        lookup = await gw.cache.get_or_fetch(key, route.cache, fetch, CATALOG_CODEC)
        return lookup.value, "ok", lookup.status
    except AttemptFailed as failed:
        return None, "timeout" if failed.outcome == "timeout" else "error", None


async def _skipped_from_cache(gw: Gateway, rt: Runtime, name: str, op: str) -> Any:
    """A provider skipped by selection may still have a catalog within stale-if-error."""
    route = rt.config.routes[op]
    if route.cache is None:
        return None
    key = catalog_key(rt.providers[name])
    peeked = await gw.cache.peek(key, CATALOG_CODEC)
    if peeked is None:
        return None
    value, age = peeked
    if age <= route.cache.ttl_s + max(
        route.cache.stale_if_error_s, route.cache.stale_while_revalidate_s
    ):
        return value
    return None


def catalog_key(state: ProviderState) -> str:
    """One provider's catalog, shared by every game route; new settings, new entry."""
    return f"catalog:{state.name}:{state.config.fingerprint[:16]}"


def _all_fresh(gw: Gateway, rt: Runtime, op: str, selection: Selection) -> CatalogView | None:
    """Every provider of the route usable and cached fresh: answer without any await."""
    route = rt.config.routes[op]
    if route.cache is None or route.cache.ttl_s <= 0 or selection.skipped:
        return None
    parts: list[tuple[str, Sequence[ProviderGame]]] = []
    for name in selection.candidates:
        games = gw.cache.fresh(catalog_key(rt.providers[name]), route.cache)
        if games is None:
            return None
        parts.append((name, games))
    return CatalogView(_merged(gw, rt, parts), dict.fromkeys(selection.candidates, "ok"), "HIT")


async def catalog(gw: Gateway, rt: Runtime, op: str) -> CatalogView:
    selection = gw.selection(rt, op)
    fast = _all_fresh(gw, rt, op, selection)
    if fast is not None:
        return fast
    route = rt.config.routes[op]
    results = await asyncio.gather(
        *(_provider_catalog(gw, rt, name, op) for name in selection.candidates)
    )
    fetched = dict(zip(selection.candidates, results, strict=True))
    statuses: dict[str, str] = {}
    cache_statuses: list[str] = []
    parts: list[tuple[str, Sequence[ProviderGame]]] = []
    for name in route.providers:
        if name in fetched:
            games, status, cache_status = fetched[name]
            if cache_status:
                cache_statuses.append(cache_status)
        elif name in rt.providers:
            games = await _skipped_from_cache(gw, rt, name, op)
            status, cache_status = "error", None
            if games is not None:
                cache_statuses.append("STALE")
        else:
            continue
        if games is None and route.cache is not None:
            games = await _skipped_from_cache(gw, rt, name, op)
            if games is not None:
                cache_statuses.append("STALE")
        statuses[name] = "ok" if games is not None else status
        if games is not None:
            parts.append((name, games))
    if not parts:
        if not selection.candidates:
            raise no_provider(op, selection)
        raise ApiError(
            "provider_unavailable",
            "no game provider answered: " + ", ".join(f"{n} {s}" for n, s in statuses.items()),
        )
    index = _merged(gw, rt, parts)
    cache_status = None
    if route.cache is not None:
        cache_status = (
            "STALE" if "STALE" in cache_statuses else "MISS" if "MISS" in cache_statuses else "HIT"
        )
    return CatalogView(index, statuses, cache_status)


def _merged(
    gw: Gateway, rt: Runtime, parts: list[tuple[str, Sequence[ProviderGame]]]
) -> CatalogIndex:
    memo_key = tuple((name, id(games)) for name, games in parts)
    hit = gw.merge_memo.get(memo_key)
    # The memo holds the tuples themselves too, so an id() is never reused while it is cached.
    if hit is not None and all(a is b for (_, a), (_, b) in zip(hit[0], parts, strict=True)):
        index: CatalogIndex = hit[1]
        return index
    games = merge_catalogs(parts, rt.config.studio_aliases)
    index = CatalogIndex(games, {g.id: g for g in games})
    if len(gw.merge_memo) >= MERGE_MEMO_SIZE:
        gw.merge_memo.pop(next(iter(gw.merge_memo)))
    gw.merge_memo[memo_key] = (tuple(parts), index)
    return index


async def find_game(gw: Gateway, rt: Runtime, op: str, game_id: str) -> tuple[Game, CatalogView]:
    view = await catalog(gw, rt, op)
    game = view.index.by_id.get(game_id)
    if game is None:
        if view.partial:
            missing = [n for n, s in view.providers.items() if s != "ok"]
            raise ApiError(
                "provider_unavailable",
                f"game '{game_id}' not found, and {', '.join(missing)} did not answer",
            )
        raise ApiError("not_found", f"no game '{game_id}'")
    return game, view
