"""Which providers to try for one request, in order. A pure function of the providers' state.

The route's order is the operator's preference and is kept. A provider is left out when it is
drained, failing its health checks, behind an open circuit, or cooling down after its own 429.
Failing live requests (passive health) also leave it out, but never all of them: passive
signals are the weakest evidence (a few unlucky requests), so when only passive-unhealthy
providers remain they are all still tried and the breaker decides. Refusing every request
on that evidence alone would turn a partial outage into a full one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from gateway.problems import ApiError

# Seconds a client should wait when a provider is out for a reason with no known end
# (drained by an operator, failing health checks): long enough not to hammer, short enough
# to notice a quick recovery.
UNKNOWN_RETRY_S = 5.0
MIN_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class ProviderView:
    name: str
    drained: bool = False
    active_healthy: bool = True
    passive_healthy: bool = True
    breaker_allows: bool = True
    cooldown_s: float = 0.0  # the provider's own 429 Retry-After still running
    retry_after_s: float = 0.0  # when the breaker is open: seconds until it may probe


@dataclass(frozen=True, slots=True)
class Selection:
    candidates: tuple[str, ...]  # to try, in route order
    # (name, reason); reason: drained | unhealthy | breaker_open | cooling_down
    skipped: tuple[tuple[str, str], ...]
    retry_after_s: float  # no candidate: soonest a provider may come back (>= 1); else 0


def _hard_block(view: ProviderView) -> tuple[str, float] | None:
    """Why the provider cannot be tried at all, and when it may be back.

    The reported reason is the first that applies; the wait is the longest, since the
    provider is usable only once every block has lifted.
    """
    reasons: list[str] = []
    waits: list[float] = []
    if view.drained:
        reasons.append("drained")
        waits.append(UNKNOWN_RETRY_S)
    if not view.active_healthy:
        reasons.append("unhealthy")
        waits.append(UNKNOWN_RETRY_S)
    if not view.breaker_allows:
        reasons.append("breaker_open")
        waits.append(view.retry_after_s)
    if view.cooldown_s > 0:
        reasons.append("cooling_down")
        waits.append(view.cooldown_s)
    if not reasons:
        return None
    return reasons[0], max(waits)


def select(
    route_order: Sequence[str],
    views: Mapping[str, ProviderView],
    offered_by: Collection[str] | None = None,
) -> Selection:
    # Providers that do not offer the item are not candidates at all, so not "skipped".
    names = [n for n in dict.fromkeys(route_order) if offered_by is None or n in offered_by]
    view_of = {n: views.get(n) or ProviderView(n) for n in names}
    blocks = {n: _hard_block(view_of[n]) for n in names}
    usable = [n for n in names if blocks[n] is None]
    healthy = {n for n in usable if view_of[n].passive_healthy}
    # Passive-unhealthy providers drop out only while a passive-healthy one remains.
    candidates = [n for n in usable if n in healthy] if healthy else usable

    skipped: list[tuple[str, str]] = []
    waits: list[float] = []
    for name in names:
        block = blocks[name]
        if block is not None:
            skipped.append((name, block[0]))
            waits.append(block[1])
        elif name not in candidates:
            skipped.append((name, "unhealthy"))

    retry = 0.0 if candidates else max(MIN_RETRY_S, min(waits, default=MIN_RETRY_S))
    return Selection(tuple(candidates), tuple(skipped), retry)


def no_provider(op: str, selection: Selection) -> ApiError:
    reasons = ", ".join(f"{name}: {why}" for name, why in selection.skipped) or "none configured"
    retry = max(1, round(selection.retry_after_s or 1))
    return ApiError(
        "no_provider_available",
        f"no provider can serve {op} now ({reasons})",
        headers={"Retry-After": str(retry)},
        extra={"retry_after_s": retry},
    )
