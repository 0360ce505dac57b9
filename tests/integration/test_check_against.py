"""`casino-gateway check FILE --against URL` on running gateways: exit 0 the same, 1
different (the changes listed), 2 the running config could not be read (and why)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.stack import DemoSecrets
from tests.procs import ROOT, GatewayProcess, free_port

VIEWER_KEY = "viewer-key-for-the-check-against-test"
FRONTEND_KEY = "frontend-key-for-the-check-against-test"


def config(tmp_path: Path, clients: list[dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "config" / "providers.yaml").read_text())
    doc["ledger"] = {"backend": "sqlite", "path": str(tmp_path / "ledger.db")}
    for spec in doc["providers"].values():
        spec["base_url"] = f"http://127.0.0.1:{free_port()}"  # nobody: only the config matters
    if clients:
        doc["clients"] = clients
    return doc


def env(demo_secrets: DemoSecrets) -> dict[str, str]:
    return {**demo_secrets.env(), "VIEWER_KEY": VIEWER_KEY, "FRONTEND_KEY": FRONTEND_KEY}


@pytest.fixture
async def open_gateway(
    tmp_path: Path, demo_secrets: DemoSecrets
) -> AsyncIterator[tuple[GatewayProcess, dict[str, Any]]]:
    clients = [
        {"id": "ops", "key_env": "VIEWER_KEY", "roles": ["viewer"]},
        {"id": "web", "key_env": "FRONTEND_KEY"},
    ]
    doc = config(tmp_path, clients)
    gateway = await GatewayProcess(doc, env(demo_secrets), tmp_path).start()
    yield gateway, doc
    gateway.stop()


def check(
    doc: dict[str, Any], url: str, tmp_path: Path, demo_secrets: DemoSecrets, *key: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(doc))
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check", str(path), "--against", url, *key],
        cwd=tmp_path,
        env={**os.environ, **env(demo_secrets), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_same_config_exits_0(open_gateway, tmp_path: Path, demo_secrets: DemoSecrets):
    gateway, doc = open_gateway
    done = check(doc, gateway.url, tmp_path, demo_secrets, "--api-key", VIEWER_KEY)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[-1] == f"against {gateway.url}: no changes"


def test_a_different_config_exits_1_listing_the_changes(
    open_gateway, tmp_path: Path, demo_secrets: DemoSecrets
):
    gateway, doc = open_gateway
    changed = copy.deepcopy(doc)
    changed["providers"]["hub88"]["timeout_ms"] = 900
    del changed["routes"]["games.launch"]
    done = check(changed, gateway.url, tmp_path, demo_secrets, "--api-key", VIEWER_KEY)
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.splitlines()[-3:] == [
        f"against {gateway.url}: 2 change(s)",
        "  ~ provider hub88: timeout_ms",
        "  - route games.launch",
    ]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ((), "HTTP 401, no key given: pass a viewer key with --api-key or GATEWAY_ADMIN_KEY"),
        (
            ("--api-key", "not-a-key"),
            "HTTP 401, the key given is unknown: pass a viewer key with --api-key or "
            "GATEWAY_ADMIN_KEY",
        ),
        (
            ("--api-key", FRONTEND_KEY),
            "HTTP 403, the key has no viewer role: use a key whose client has roles [viewer] "
            "(or operator, admin)",
        ),
    ],
)
def test_a_refused_key_exits_2_saying_what_to_pass(
    open_gateway, tmp_path: Path, demo_secrets: DemoSecrets, key: tuple[str, ...], reason: str
):
    gateway, doc = open_gateway
    done = check(doc, gateway.url, tmp_path, demo_secrets, *key)
    assert done.returncode == 2
    assert done.stderr == f"cannot compare with {gateway.url}: {reason}\n"


async def test_a_gateway_without_clients_is_said_to_have_its_admin_api_closed(
    tmp_path: Path, demo_secrets: DemoSecrets
):
    doc = config(tmp_path, clients=[])  # as the demo runs: no clients, so no admin key
    gateway = await GatewayProcess(doc, env(demo_secrets), tmp_path).start()
    try:
        done = check(doc, gateway.url, tmp_path, demo_secrets, "--api-key", VIEWER_KEY)
    finally:
        gateway.stop()
    assert done.returncode == 2
    assert done.stderr == (
        f"cannot compare with {gateway.url}: its admin API is closed (its config has no "
        "clients, as in the demo); give it a client with the viewer role, e.g. {id: ops, "
        "key_env: OPS_KEY, roles: [viewer]}, and pass that key with --api-key or "
        "GATEWAY_ADMIN_KEY\n"
    )


def test_nothing_listening_exits_2(tmp_path: Path, demo_secrets: DemoSecrets):
    url = f"http://127.0.0.1:{free_port()}"
    done = check(config(tmp_path, []), url, tmp_path, demo_secrets)
    assert done.returncode == 2
    assert done.stderr == (
        f"cannot compare with {url}: its running config is unreadable "
        "([Errno 111] Connection refused)\n"
    )
