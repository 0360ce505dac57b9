"""Game reads: the route's catalog snapshot, and one game in it.

No request fetches a catalog: `gateway.games.sync` keeps each aggregator's catalog warm in
the background. A request waits only for an aggregator's very first fetch, while it has
no catalog yet; that wait is what `X-Cache: MISS` means on a games route. `HIT` is a
snapshot of catalogs refreshed on schedule, `STALE` one that keeps a catalog whose latest
refresh failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.games.merge import Game
from gateway.games.snapshot import CatalogSnapshot
from gateway.problems import ApiError

if TYPE_CHECKING:
    from gateway.games.sync import CatalogSync
    from gateway.runtime.gateway import Runtime


async def read_catalog(sync: CatalogSync, rt: Runtime, op: str) -> tuple[CatalogSnapshot, str]:
    """The snapshot `op` reads and its cache status (HIT, STALE or MISS)."""
    snapshot = sync.view(rt, op)
    if snapshot is not None:
        return snapshot, "STALE" if snapshot.stale else "HIT"
    snapshot, _ = await sync.wait_view(rt, op)
    return snapshot, "MISS"


def require_some_catalog(snapshot: CatalogSnapshot) -> None:
    """A listing with no aggregator's games at all is an outage, not an empty lobby."""
    if snapshot.missing and len(snapshot.missing) == len(snapshot.providers):
        raise ApiError(
            "provider_unavailable",
            "no game provider answered: "
            + ", ".join(f"{n} {s}" for n, s in snapshot.providers.items()),
        )


def find_game(snapshot: CatalogSnapshot, game_id: str) -> Game:
    game = snapshot.by_id.get(game_id)
    if game is None:
        if snapshot.missing:
            raise ApiError(
                "provider_unavailable",
                f"game '{game_id}' not found, and {', '.join(snapshot.missing)} did not answer",
            )
        raise ApiError("not_found", f"no game '{game_id}'")
    return game
