"""deploy/grafana/casino-gateway.json is a dashboard Grafana can import: every panel queries the
Prometheus data source the importer picks, ids are unique, the grid holds, and each subject
the operators need has its row. (Its queries are checked against live series by
tests/integration/test_prometheus.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "casino-gateway.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"timeseries", "stat", "state-timeline", "table"}


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def test_the_dashboard_has_a_stable_uid_and_a_data_source_variable() -> None:
    doc = load()
    assert (doc["uid"], doc["title"]) == ("casino-gateway", "casino-gateway")
    assert isinstance(doc["schemaVersion"], int)
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["datasource"] == DATASOURCE
    assert variables["instance"]["includeAll"] and variables["instance"]["allValue"] == ".*"


def test_every_panel_queries_prometheus_with_unique_ids() -> None:
    panels = load()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels:
        if panel["type"] == "row":
            continue
        title = panel["title"]
        assert panel["type"] in PANEL_TYPES, title
        assert panel["datasource"] == DATASOURCE, title
        targets = panel["targets"]
        assert targets, f"{title}: no query"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), f"{title}: refIds repeat"
        for target in targets:
            assert target["datasource"] == DATASOURCE, title
            assert "gateway_" in target["expr"], title
            assert target.get("legendFormat"), title
            picker = 'instance=~"$instance"'
            assert picker in target["expr"], f"{title}: ignores the instance picker"


def test_panels_sit_on_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in load()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                 for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_each_subject_has_its_row_and_panels() -> None:
    panels = load()["panels"]
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == [
        "Traffic",
        "Providers",
        "Cache and catalog",
        "Payments",
        "Wallet",
        "Events to the casino backend",
        "Gateway state",
    ]
    exprs = " ".join(t["expr"] for p in panels for t in p.get("targets", []))
    for metric in (
        "gateway_requests_total",
        "gateway_request_duration_seconds_bucket",
        "gateway_provider_healthy",
        "gateway_breaker_state",
        "gateway_failovers_total",
        "gateway_cache_requests_total",
        "gateway_catalog_snapshot_age_seconds",
        "gateway_rate_limited_total",
        "gateway_wallet_requests_total",
        "gateway_wallet_backend_duration_seconds_bucket",
        "gateway_event_deliveries_pending",
        "gateway_config_reloads_total",
        "gateway_ledger_up",
    ):
        assert metric in exprs, metric
    assert 'status="202"' in exprs
