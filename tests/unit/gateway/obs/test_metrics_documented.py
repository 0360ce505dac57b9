"""Every metric the gateway registers is in the README's metrics table, with its type."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.obs.metrics import Metrics

README = Path(__file__).resolve().parents[4] / "README.md"


def test_every_metric_is_in_the_readme_table_with_its_type() -> None:
    row = r"^\| `(gateway_[a-z_]+)` \| (counter|gauge|histogram) \|"
    documented = dict(re.findall(row, README.read_text(), re.M))
    registered = {}
    for family in Metrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        registered[name] = family.type
    assert registered, "no metric registered"
    assert registered == documented
