"""The gateway's shortcut when every provider is usable gives what the full selection gives."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from gateway.config.load import parse_config
from gateway.runtime.gateway import Gateway
from gateway.upstream.providers import ProviderState
from gateway.upstream.selection import select

CONFIG = {
    "version": 1,
    "defaults": {"health": {"enabled": False}},
    "providers": {
        name: {
            "adapter": "slotegrator",
            "base_url": "http://127.0.0.1:9",
            "credentials": {"merchant_id": "m", "merchant_key_env": "KEY"},
        }
        for name in ("s1", "s2", "s3")
    },
    "routes": {"games.launch": {"providers": ["s1", "s2", "s3"]}},
}


def passive_down(state: ProviderState) -> None:
    for _ in range(10):
        state.health.record_passive(False)


CHANGES: dict[str, Callable[[Gateway, ProviderState], None]] = {
    "none": lambda gw, s: None,
    "drained": lambda gw, s: setattr(s, "drained", True),
    "breaker_open": lambda gw, s: s.breaker("games.launch").force_open(),
    "other_breaker_open": lambda gw, s: s.breaker("payments.get").force_open(),
    "active_unhealthy": lambda gw, s: setattr(s.health, "_active_healthy", False),
    "passive_unhealthy": lambda gw, s: passive_down(s),
    "cooling_down": lambda gw, s: gw.cooldowns.block(s.name, 30),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("offered", [None, {"s2", "s3"}, {"s1"}])
async def test_shortcut_and_full_selection_agree(change: str, offered: set[str] | None):
    config = parse_config(yaml.safe_dump(CONFIG).encode(), env={"KEY": "k" * 20})
    gw = Gateway(config)
    try:
        rt = gw.runtime
        CHANGES[change](gw, rt.providers["s2"])
        views = {
            n: s.view("games.launch", gw.cooldowns.blocked_for(n)) for n, s in rt.providers.items()
        }
        expected = select(("s1", "s2", "s3"), views, offered)
        assert gw.selection(rt, "games.launch", offered) == expected
        if offered is None and change not in ("none", "other_breaker_open"):
            assert "s2" not in expected.candidates  # the change did take s2 out
    finally:
        await gw.close()
