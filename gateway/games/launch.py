"""Launching a game: one call to an aggregator that offers it, failing over between offers.

The game comes from the catalog snapshot, never from a fetch. Its offers are narrowed to
those that may serve the player's country (451 when none may), then to the aggregators
usable now (503 with Retry-After when none is): a skipped aggregator's games stay known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.base import LaunchRequest, LaunchResult
from gateway.games.catalog import find_game, read_catalog
from gateway.games.jurisdiction import launchable_offers
from gateway.problems import ApiError
from gateway.upstream.calls import AttemptFailed, call_provider
from gateway.upstream.selection import no_provider
from policies.failover import read_may_fail_over

if TYPE_CHECKING:
    from gateway.games.sync import CatalogSync
    from gateway.runtime.gateway import Gateway, Runtime


async def launch(
    gw: Gateway,
    sync: CatalogSync,
    rt: Runtime,
    game_id: str,
    body: dict[str, Any],
    ip: str | None,
) -> tuple[LaunchResult, str, bool]:
    """The launch, the aggregator that made it, and whether an earlier one was tried first
    (a failover, as the access log and metrics say)."""
    snapshot, _ = await read_catalog(sync, rt, "games.launch")
    game = find_game(snapshot, game_id)
    if body["mode"] == "demo" and not game.demo:
        raise ApiError("invalid_request", f"game '{game_id}' has no demo mode")
    offers = {o.provider: o.provider_game_id for o in launchable_offers(game, body.get("country"))}
    selection = gw.selection(rt, "games.launch", offers)
    if not selection.candidates:
        raise no_provider("games.launch", selection)
    failures: list[AttemptFailed] = []
    delivered = 0
    for i, name in enumerate(selection.candidates):
        state = rt.providers[name]
        request = LaunchRequest(
            provider_game_id=offers[name],
            player_id=body.get("player_id"),
            currency=body.get("currency"),
            mode=body["mode"],
            language=body.get("language"),
            platform=body.get("platform", "desktop"),
            country=body.get("country"),
            return_url=body.get("return_url"),
            session_token=body.get("session_token"),
            ip=ip,
        )
        try:
            result = await call_provider(
                gw,
                state,
                "games.launch",
                state.adapter.launch_request(request),
                state.adapter.parse_launch,
            )
            return result, name, bool(failures)
        except AttemptFailed as failed:
            failures.append(failed)
            delivered += 0 if failed.skipped else 1
            if i + 1 < len(selection.candidates) and (
                failed.skipped or read_may_fail_over(delivered - 1)
            ):
                gw.metrics.failovers.labels("games.launch", name, selection.candidates[i + 1]).inc()
                continue
            break
    raise _launch_error(failures)


def _launch_error(failures: list[AttemptFailed]) -> ApiError:
    last = failures[-1]
    if all(f.skipped for f in failures):
        retry = max(1, round(min((f.retry_after_s or 1) for f in failures)))
        return ApiError(
            "no_provider_available",
            "every provider offering the game is unavailable",
            headers={"Retry-After": str(retry)},
            extra={"retry_after_s": retry},
        )
    if last.outcome == "rejected":
        return ApiError(
            "provider_rejected",
            last.public_detail,
            provider=last.provider,
            provider_code=last.provider_code,
        )
    return ApiError(
        "provider_unavailable",
        last.public_detail,
        provider=last.provider,
        provider_code=last.provider_code,
    )
