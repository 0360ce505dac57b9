"""The shipped alerts and dashboard, proven: `promtool check rules` and `promtool test rules`
pass with a unit test for every alert, and a real Prometheus (Debian's package) scraping a
live gateway (one process, then two workers) driven through every kind of traffic evaluates
each alert's and each panel's expression and finds a live series for every metric, label
and label value it names."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from simulators.faults import Faults
from simulators.stack import DemoSecrets, Stack, start_stack
from tests.conftest import ALL_SIMULATORS, base_config, merge
from tests.procs import ROOT, GatewayProcess, free_port
from tests.system_tools import require
from tests.wired import (
    DEPOSIT,
    EVENTS_SECRET,
    SECRET_ENV,
    Backend,
    events_settings,
    eventually,
    start_backend,
)

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "casino-gateway.json"

# What Grafana puts in place of its variables when it sends a panel's query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$instance": ".*"}
_SELECTOR = re.compile(r"\b(gateway_[A-Za-z0-9_]+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


# ---- what the files say ------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard_panels() -> Iterator[dict[str, Any]]:
    doc = json.loads(DASHBOARD.read_text())
    for panel in doc["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL as Grafana sends it) for every target of every panel."""
    out = []
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            out.append((panel["title"], expr))
    return out


def expressions() -> list[tuple[str, str]]:
    return [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()] + [
        (f"panel {title!r}", expr) for title, expr in dashboard_queries()
    ]


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Each `metric{label op "value", ...}` of an expression."""
    found = []
    for name, braces in _SELECTOR.findall(expr):
        matchers = _MATCHER.findall(braces[1:-1]) if braces else []
        found.append((name, matchers))
    return found


def grouping_labels(expr: str) -> set[str]:
    return {
        label.strip()
        for labels in _GROUPING.findall(expr)
        for label in labels.split(",")
        if label.strip()
    }


# ---- promtool --------------------------------------------------------------------------------


def test_the_alert_rules_pass_promtool_check_and_their_unit_tests():
    promtool = require("promtool", "prometheus")
    checked = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_sees_it_fire():
    doc = yaml.safe_load(ALERT_TESTS.read_text())
    fired = {
        case["alertname"]
        for test in doc["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alert_rules()} == fired


# ---- a real Prometheus scraping a live gateway ---------------------------------------------


@dataclass
class Live:
    prometheus: str
    gateway: GatewayProcess
    stack: Stack
    backend: Backend
    http: aiohttp.ClientSession

    async def query(self, expr: str) -> list[dict[str, Any]]:
        async with self.http.get(self.prometheus + "/api/v1/query", params={"query": expr}) as r:
            answer = await r.json()
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    async def labels_of(self, metric: str) -> set[str]:
        async with self.http.get(
            self.prometheus + "/api/v1/series", params={"match[]": metric}
        ) as r:
            answer = await r.json()
        return {label for series in answer["data"] for label in series}


def prometheus_config(target: str, interval: str = "1s") -> dict[str, Any]:
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "casino-gateway", "static_configs": [{"targets": [target]}]}
        ],
    }


@pytest.fixture(params=[1, 2], ids=["one process", "two workers"])
async def live(
    demo_secrets: DemoSecrets, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Live]:
    """A gateway as `run` serves it, alone or as two workers (the image's default, where the
    metrics of both processes are merged for the scrape)."""
    binary = require("prometheus")
    port = free_port()
    stack = await start_stack(
        demo_secrets, {**ALL_SIMULATORS, "wallet": 0}, webhook_base_url=f"http://127.0.0.1:{port}"
    )
    backend = await start_backend()
    config = merge(
        base_config(stack),
        {
            "ledger": {"backend": "sqlite", "path": str(tmp_path / "ledger.db")},
            "events": events_settings(backend),
            "providers": {
                "stripe": {"breaker": {"failure_threshold": 1}},
                "hub88": {
                    "credentials": {
                        "operator_id": 1,
                        "private_key_env": "HUB88_PRIVATE_KEY",
                        "hub88_public_key_env": "HUB88_WALLET_PUBLIC_KEY",
                    }
                },
            },
            # Per process without Redis: with two workers, five requests still meet a 429.
            "routes": {"games.get": {"rate_limit": {"limit": "1/minute", "per": "route"}}},
            "wallet": {
                "backend_url": f"{stack.url('wallet')}/wallet",
                "secret_env": "WALLET_SIGNING_SECRET",
            },
        },
    )
    env = {**demo_secrets.env(), SECRET_ENV: EVENTS_SECRET}
    gateway = GatewayProcess(config, env, tmp_path, port=port, workers=request.param)
    prom_port = free_port()
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(prometheus_config(f"127.0.0.1:{port}")))
    log = (tmp_path / "prometheus.log").open("wb")
    prometheus = None
    try:
        await gateway.start()
        prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{prom_port}"
        async with aiohttp.ClientSession() as http:
            await eventually(lambda: ready(http, url), timeout_s=30)
            yield Live(url, gateway, stack, backend, http)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(20)
        log.close()
        gateway.stop()
        await stack.close()
        if backend.server is not None:
            await backend.server.close()


async def ready(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url + "/-/ready") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def drive(live: Live) -> None:
    """Traffic that gives every metric of the dashboard and alerts a series."""
    http, gw, stack = live.http, live.gateway.url, live.stack

    async def pay(amount: int = 2500, key: str | None = None) -> aiohttp.ClientResponse:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        body = {**DEPOSIT, "amount": amount}
        resp = await http.post(gw + "/v1/payments", json=body, headers=headers)
        await resp.read()
        return resp

    # Games: the catalog, cache hits, and the route's limit of 1 a minute.
    assert (await http.get(gw + "/v1/games")).status == 200
    statuses = [(await http.get(gw + "/v1/games/netent:starburst")).status for _ in range(5)]
    assert 429 in statuses and 200 in statuses, statuses
    # A payment, its replay, its webhook (an event for the backend) and a refund.
    key = uuid.uuid4().hex
    first = await pay(key=key)
    assert first.status == 201
    payment = await first.json()
    assert (await pay(key=key)).status == 201  # answered from the ledger
    completed = await http.post(
        f"{stack.url('stripe')}/_sim/payment_intents/{payment['provider_reference']}/complete",
        json={"outcome": "succeeded"},
    )
    assert completed.status == 200
    await eventually(lambda: delivered(live.backend))
    refund = await http.post(
        f"{gw}/v1/payments/{payment['payment_id']}/refunds",
        json={"amount": 100},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert refund.status == 201, await refund.text()
    # A soft decline cascades; Stripe down fails over and opens its breaker (threshold 1).
    await pay(amount=4000002)
    await stack.servers["stripe"].stop_listening()
    failed_over = await pay()
    assert failed_over.status == 201 and (await failed_over.json())["provider"] == "adyen"
    # Adyen hanging after it took the request: outcome unknown, 202; then down: a 5xx.
    stack.servers["adyen"].faults = Faults(mode="hang")
    assert (await pay()).status == 202
    await stack.servers["adyen"].stop_listening()
    assert (await pay()).status >= 500
    # A wallet round whose bet is retried, and a callback with a bad signature.
    round_ = {
        "token": "tok-1",
        "user": "player-42",
        "currency": "EUR",
        "game_code": "pp_sweet_bonanza",
        "bet": 100_000,
        "win": 250_000,
        "fault": "retry",
        "wallet_url": f"{gw}/wallet/hub88",
    }
    played = await http.post(f"{stack.url('hub88')}/_sim/rounds", json=round_)
    assert played.status == 200, await played.text()
    forged = await http.post(f"{gw}/wallet/hub88/transaction/bet", json={"request_uuid": "x"})
    assert forged.status == 200
    # A config that fails to load: counted, and the running one keeps serving.
    live.gateway.config_path.write_text("version: 1\nproviders: {}\n")

    async def refused() -> bool:
        text = await (await http.get(gw + "/metrics")).text()
        # Each worker watches the file: one failure per process.
        failed = re.search(r'gateway_config_reloads_total\{result="failure"\} [1-9]', text)
        return failed is not None

    await eventually(refused, timeout_s=10)


async def delivered(backend: Backend) -> bool:
    return len(backend.received) >= 1


async def test_every_alert_and_panel_finds_live_series_in_a_real_prometheus(live: Live):
    await drive(live)
    # Wait for a scrape taken after all the traffic above.
    done = time.time()

    async def scraped() -> bool:
        result = await live.query('timestamp(up{job="casino-gateway"})')
        return bool(result) and float(result[0]["value"][1]) > done + 1

    await eventually(scraped, timeout_s=15)
    [up] = await live.query('up{job="casino-gateway"}')
    assert up["value"][1] == "1"

    problems: list[str] = []
    labels_seen: dict[str, set[str]] = {}
    for where, expr in expressions():
        await live.query(expr)  # parses and evaluates, or the query helper fails
        metrics = set()
        for name, matchers in selectors(expr):
            metrics.add(name)
            if name not in labels_seen:
                labels_seen[name] = await live.labels_of(name)
            if not labels_seen[name]:
                problems.append(f"{where}: no series {name}")
                continue
            for label, op, value in matchers:
                if label not in labels_seen[name]:
                    problems.append(f"{where}: {name} has no label {label}")
                elif op in ("=", "=~") and not await live.query(f'{name}{{{label}{op}"{value}"}}'):
                    problems.append(f'{where}: no series {name}{{{label}{op}"{value}"}}')
        if metrics:
            known = set().union(*(labels_seen[m] for m in metrics)) | {"le"}
            for label in grouping_labels(expr) - known:
                problems.append(f"{where}: groups by {label}, which none of its series has")
    assert not problems, "\n".join(problems)

    # Prometheus loaded the alert rules and evaluates each one without an error.
    async with live.http.get(live.prometheus + "/api/v1/rules") as resp:
        rules = [r for g in (await resp.json())["data"]["groups"] for r in g["rules"]]
    assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}
    assert all(r["health"] == "ok" and not r.get("lastError") for r in rules), rules


def test_the_shipped_prometheus_config_loads_the_alerts():
    """deploy/compose.yaml mounts alerts.yml where deploy/prometheus.yml names it."""
    shipped = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert shipped["rule_files"] == ["/etc/prometheus/alerts.yml"]
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes
    promtool = require("promtool", "prometheus")
    # promtool resolves rule files against the config's folder: check a copy that names ours.
    staged = {**shipped, "rule_files": [str(ALERTS)]}
    checked = subprocess.run(
        [promtool, "check", "config", "/dev/stdin"],
        input=yaml.safe_dump(staged),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

