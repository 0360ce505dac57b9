"""Hot reload under continuous load: new routing within 2 s, bad files change nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.runtime.gateway import Gateway
from simulators import hub88
from simulators.faults import SimulatorServer
from simulators.stack import Stack
from tests.conftest import GatewayUnderTest, MakeGateway, base_config, build_config, merge

LAUNCH = "/v1/games/netent:starburst/launch"
CACHED = {"cache": {"ttl_s": 60}}


class Load:
    """Requests sent back to back while a test edits the config; every answer is kept."""

    def __init__(self, gw: GatewayUnderTest) -> None:
        self.gw = gw
        # (finished at, status, provider), and when each of them was sent
        self.results: list[tuple[float, int, str | None]] = []
        self.started: dict[int, float] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _one(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            resp = await self.gw.client.post(LAUNCH, json={"mode": "demo"})
            body = await resp.json()
            self.results.append((time.monotonic(), resp.status, body.get("provider")))
            self.started[len(self.results) - 1] = started

    def start(self, workers: int = 4) -> Load:
        self._tasks = [asyncio.create_task(self._one()) for _ in range(workers)]
        return self

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def failures(self) -> list[tuple[float, int, str | None]]:
        return [r for r in self.results if r[1] != 200]


Reloading = Callable[..., Awaitable[tuple[GatewayUnderTest, Path]]]


@pytest.fixture
async def reloading(
    make_gateway: MakeGateway, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Reloading]:
    for name, value in stack.secrets.env().items():
        monkeypatch.setenv(name, value)  # the watcher reads the process environment

    async def start(changes: dict[str, Any]) -> tuple[GatewayUnderTest, Path]:
        path = tmp_path / "providers.yaml"
        doc = merge(base_config(stack), changes)
        path.write_text(yaml.safe_dump(doc))
        env = dict(os.environ)
        config = build_config(doc, stack.secrets, env)
        gateway = Gateway(config)
        gateway.reload_interval_s = 0.2
        gw = await make_gateway(changes, env=env, gateway=gateway, config_path=str(path))
        return gw, path

    yield start


def write(path: Path, doc: dict[str, Any]) -> None:
    # Write then rename: the watcher never reads a half-written file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc))
    tmp.replace(path)


async def test_reordering_a_route_changes_routing_within_2s_under_load(
    reloading: Reloading, stack: Stack
):
    gw, path = await reloading({"routes": {"games.launch": CACHED}})
    load = Load(gw).start()
    await asyncio.sleep(0.3)
    doc = merge(base_config(stack), {"routes": {"games.launch": CACHED}})
    doc["routes"]["games.launch"]["providers"] = ["slotegrator", "hub88"]
    written_at = time.monotonic()
    write(path, doc)
    await asyncio.sleep(2.2)
    await load.stop()
    assert load.failures() == []
    switched = [
        t for t, _, provider in load.results if t > written_at and provider == "slotegrator"
    ]
    assert switched, "routing never changed"
    assert switched[0] - written_at < 2.0
    # Requests sent once the new order had answered one; those already in flight may finish
    # on the runtime they started with.
    later = [
        provider for i, (_, _, provider) in enumerate(load.results) if load.started[i] > switched[0]
    ]
    assert later.count("slotegrator") > 0
    # Each of them went to slotegrator first: an answer from hub88 is a failover (slotegrator
    # slow or failing under this load), never the old order.
    failed_over = gw.gateway.metrics.registry.get_sample_value(
        "gateway_failovers_total",
        {"route": "games.launch", "from_provider": "slotegrator", "to_provider": "hub88"},
    )
    assert later.count("hub88") <= (failed_over or 0)
    assert gw.gateway.last_reload["result"] == "success"


async def test_adding_a_new_provider_serves_traffic_without_restart(
    reloading: Reloading, stack: Stack
):
    gw, path = await reloading({"routes": {"games.launch": CACHED}})
    extra = await SimulatorServer(
        hub88.create_app(operator_public_key_pem=stack.secrets.hub88_public_pem)
    ).start()
    try:
        load = Load(gw).start()
        doc = merge(base_config(stack), {"routes": {"games.launch": CACHED}})
        doc["providers"]["hub88_eu"] = {
            "adapter": "hub88",
            "base_url": extra.url,
            "credentials": {"operator_id": 1, "private_key_env": "HUB88_PRIVATE_KEY"},
        }
        doc["routes"]["games.launch"]["providers"] = ["hub88_eu", "hub88", "slotegrator"]
        write(path, doc)
        for _ in range(40):
            if extra.stats["/operator/generic/v2/game/url"]:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        await load.stop()
        assert load.failures() == []
        assert extra.stats["/operator/generic/v2/game/url"] > 0
        assert load.results[-1][2] == "hub88_eu"
    finally:
        await extra.close()


@pytest.mark.parametrize(
    "breakage",
    ["bad_yaml", "unknown_adapter", "missing_env", "truncated"],
)
async def test_an_invalid_file_keeps_the_old_config_serving(
    reloading: Reloading, stack: Stack, breakage: str
):
    gw, path = await reloading({"routes": {"games.launch": CACHED}})
    good_hash = gw.gateway.runtime.config.hash
    load = Load(gw).start()
    text = path.read_text()
    if breakage == "bad_yaml":
        broken = text.replace("routes:", "routes: [unclosed", 1)
    elif breakage == "unknown_adapter":
        broken = text.replace("adapter: slotegrator", "adapter: nonesuch", 1)
    elif breakage == "missing_env":
        broken = text.replace("SLOTEGRATOR_KEY", "SLOTEGRATOR_KEY_NOT_SET", 1)
    else:
        broken = text[: len(text) // 2]
    tmp = path.with_suffix(".tmp")  # one change the watcher sees, never a half-written file
    tmp.write_text(broken)
    tmp.replace(path)
    for _ in range(30):
        if gw.gateway.last_reload["result"] == "failure":
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    await load.stop()
    assert load.failures() == []
    assert len(load.results) > 10
    assert gw.gateway.runtime.config.hash == good_hash
    status = gw.gateway.last_reload
    assert status["result"] == "failure"
    assert status["errors"]
    expected = {
        "bad_yaml": "invalid YAML",
        "unknown_adapter": "providers.slotegrator.adapter: unknown adapter 'nonesuch'",
        "missing_env": "environment variable 'SLOTEGRATOR_KEY_NOT_SET' is not set",
        "truncated": "",
    }[breakage]
    assert any(expected in error for error in status["errors"])
    metrics = await (await gw.client.get("/metrics")).text()
    assert 'gateway_config_reloads_total{result="failure"} 1.0' in metrics
    assert f'gateway_config_info{{hash="{good_hash}"}} 1.0' in metrics


async def test_sighup_style_reload_keeps_unchanged_provider_state(reloading: Reloading, stack):
    gw, path = await reloading({"routes": {"games.launch": CACHED}})
    before = gw.gateway.runtime.providers["slotegrator"]
    breaker = before.breaker("games.launch")
    doc = merge(base_config(stack), {"routes": {"games.launch": CACHED}})
    doc["providers"]["hub88"]["timeout_ms"] = 750  # hub88 changes, slotegrator does not
    write(path, doc)
    result = await gw.gateway.watcher.reload("sighup")
    assert result.result == "success"
    after = gw.gateway.runtime.providers
    assert after["slotegrator"] is before
    assert after["slotegrator"].breaker("games.launch") is breaker
    assert after["hub88"].config.timeout_ms == 750


async def test_log_lines_never_hold_secrets_or_card_numbers(
    make_gateway: MakeGateway, stack: Stack, capfd: pytest.CaptureFixture[str]
):
    from gateway.obs import logs

    gw = await make_gateway()
    root = logging.getLogger()
    level = root.level
    logs.configure("DEBUG")
    try:
        card = "4111111111111111"
        await gw.client.post(
            "/v1/payments",
            json={
                "type": "deposit",
                "amount": 100,
                "currency": "EUR",
                "player_id": card,
                "method": {"type": "card", "number": card},
            },
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        await gw.client.get(f"/v1/games/{card}?q={card}", headers={"X-API-Key": "sk_live_x"})
        await gw.client.post(
            "/v1/payments",
            json={
                "type": "deposit",
                "amount": 100,
                "currency": "EUR",
                "player_id": "p",
                "method": {"type": "card"},
                "metadata": {"pan": "5500 0000 0000 0004"},
            },
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        logging_calls = logging.getLogger("gateway.test")
        logging_calls.error("provider said %s", stack.secrets.stripe_secret_key)
    finally:
        # Leave logging as the other tests expect it: the JSON handler was this test's own.
        logs.reset()
        root.setLevel(level)
    err = capfd.readouterr().err
    assert '"route":"payments.create"' in err
    assert card not in err and "5500 0000 0000 0004" not in err
    for secret in stack.secrets.env().values():
        for line in secret.splitlines():
            if len(line) >= 8 and "-----" not in line:
                assert line not in err


async def test_check_against_a_running_gateway_prints_the_diff(
    reloading: Reloading,
    stack: Stack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    from gateway.cli import main

    monkeypatch.setenv("VIEW_KEY", "viewer-key-0123456789")
    clients = {"clients": [{"id": "ops", "key_env": "VIEW_KEY", "roles": ["viewer"]}]}
    gw, _ = await reloading(clients)
    doc = merge(base_config(stack), clients)
    doc["routes"]["games.list"]["providers"] = ["slotegrator"]
    doc["providers"]["stripe"]["timeout_ms"] = 900
    del doc["providers"]["adyen"]
    doc["routes"]["payments.create"]["providers"] = ["stripe"]
    doc["routes"]["payments.get"]["providers"] = ["stripe"]
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(doc))
    args = ["check", str(candidate), "--against", gw.url, "--api-key", "viewer-key-0123456789"]
    code = await asyncio.to_thread(main, args)
    out = capsys.readouterr().out
    assert code == 1  # different
    assert "against " in out and "5 change(s)" in out
    assert "  - provider adyen" in out
    assert "  ~ provider stripe: timeout_ms" in out
    assert "  ~ route games.list: providers" in out
    assert "  ~ route payments.create: providers" in out
    bad = await asyncio.to_thread(main, ["check", str(candidate), "--against", gw.url])
    assert bad == 2
