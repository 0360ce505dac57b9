"""The admin API over real sockets: roles, redaction, drain/enable, cache flush, reload, audit."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.runtime.gateway import Gateway
from simulators.stack import Stack
from tests.conftest import GatewayUnderTest, MakeGateway, base_config, build_config, merge

HUB88_LIST = "/operator/generic/v2/game/list"
HUB88_LAUNCH = "/operator/generic/v2/game/url"
SLOT_INIT = "/games/init"
SLOT_LIST = "/games"
SHARED_GAME = "pragmatic-play:sweet-bonanza"  # sold by both aggregators
REAL_LAUNCH = {
    "player_id": "player-42",
    "currency": "EUR",
    "mode": "real",
    "session_token": "sess-1",
    "return_url": "https://casino.example/lobby",
}

# Fresh keys each run: none of them may ever show up in an admin answer.
KEYS = {
    "WEB_KEY": "web_" + secrets.token_urlsafe(24),
    "VIEW_KEY": "view_" + secrets.token_urlsafe(24),
    "OP_KEY": "op_" + secrets.token_urlsafe(24),
}
ROOT_KEY = "root_" + secrets.token_urlsafe(24)
CLIENTS = {
    "clients": [
        {"id": "web", "key_env": "WEB_KEY", "roles": ["client"]},
        {"id": "ops-viewer", "key_env": "VIEW_KEY", "roles": ["viewer"]},
        {"id": "ops", "key_env": "OP_KEY", "roles": ["operator"]},
        {
            "id": "root",
            "key_sha256": hashlib.sha256(ROOT_KEY.encode()).hexdigest(),
            "roles": ["admin"],
        },
    ]
}
WEB = {"X-API-Key": KEYS["WEB_KEY"]}
VIEWER = {"X-API-Key": KEYS["VIEW_KEY"]}
OPERATOR = {"X-API-Key": KEYS["OP_KEY"]}
ROOT = {"X-API-Key": ROOT_KEY}

FileGateway = Callable[..., Awaitable[tuple[GatewayUnderTest, Path]]]


@pytest.fixture
def file_gateway(
    make_gateway: MakeGateway, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> FileGateway:
    """A gateway started from a YAML file, so POST /admin/reload has something to read."""
    # The watcher resolves *_env from the process environment.
    for name, value in {**stack.secrets.env(), **KEYS}.items():
        monkeypatch.setenv(name, value)

    async def make(changes: dict[str, Any] | None = None) -> tuple[GatewayUnderTest, Path]:
        changes = merge(CLIENTS, changes or {})
        doc = merge(base_config(stack), changes)
        path = tmp_path / "providers.yaml"
        path.write_text(yaml.safe_dump(doc))
        gateway = Gateway(build_config(doc, stack.secrets, KEYS))
        # Read when the app starts: the poller must not reload behind the test's back.
        gateway.reload_interval_s = 3600
        gw = await make_gateway(changes, env=KEYS, gateway=gateway, config_path=str(path))
        return gw, path

    return make


@pytest.fixture
async def admin_gw(make_gateway: MakeGateway) -> GatewayUnderTest:
    return await make_gateway(CLIENTS, env=KEYS)


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    return [
        (r.actor, r.action, r.target)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "gateway.audit" and r.levelno == logging.INFO
    ]


@pytest.fixture
def audit_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="gateway.audit"):
        yield caplog


# ---- who may do what ------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/admin/config"),
    ("GET", "/admin/config/status"),
    ("GET", "/admin/providers"),
    ("GET", "/admin/catalog"),
    ("POST", "/admin/reload"),
    ("POST", "/admin/providers/hub88/drain"),
    ("POST", "/admin/providers/hub88/enable"),
    ("DELETE", "/admin/cache"),
    ("POST", "/admin/catalog/refresh"),
]
READS, ACTIONS = ENDPOINTS[:4], ENDPOINTS[4:]


def expect(reads: int, actions: int) -> dict[str, int]:
    return {f"{m} {p}": reads for m, p in READS} | {f"{m} {p}": actions for m, p in ACTIONS}


ROLE_TABLE = [
    pytest.param(WEB, expect(403, 403), id="client"),
    pytest.param(VIEWER, expect(200, 403), id="viewer"),
    pytest.param(OPERATOR, expect(200, 200), id="operator"),
    pytest.param(ROOT, expect(200, 200), id="admin-by-sha256"),
    pytest.param({}, expect(401, 401), id="no-key"),
    pytest.param(
        {"X-API-Key": "wrong_" + secrets.token_urlsafe(24)}, expect(401, 401), id="wrong-key"
    ),
]


@pytest.mark.parametrize(("headers", "expected"), ROLE_TABLE)
async def test_each_role_on_each_endpoint(
    file_gateway: FileGateway, headers: dict[str, str], expected: dict[str, int]
):
    gw, _ = await file_gateway()
    got: dict[str, int] = {}
    for method, path in ENDPOINTS:
        resp = await gw.client.request(method, path, headers=headers)
        got[f"{method} {path}"] = resp.status
        if resp.status >= 400:
            problem = await resp.json()
            assert resp.content_type == "application/problem+json"
            assert problem["code"] == {401: "unauthorized", 403: "forbidden"}[resp.status]
    assert got == expected


async def test_refused_action_changes_nothing_and_is_logged(
    admin_gw: GatewayUnderTest, audit_log: pytest.LogCaptureFixture
):
    resp = await admin_gw.client.post("/admin/providers/hub88/drain", headers=VIEWER)
    assert resp.status == 403
    assert "operator role" in (await resp.json())["detail"]
    assert admin_gw.gateway.registry.get("hub88").drained is False  # type: ignore[union-attr]
    refused = [r for r in audit_log.records if r.levelno == logging.WARNING]
    assert [(r.actor, r.target) for r in refused] == [  # type: ignore[attr-defined]
        ("ops-viewer", "/admin/providers/hub88/drain")
    ]


async def test_without_clients_the_admin_api_is_closed(gw: GatewayUnderTest):
    # No clients: the unified API is open, but there is no admin key to match.
    assert (await gw.client.get("/v1/games")).status == 200
    resp = await gw.client.get("/admin/config", headers={"X-API-Key": "anything-at-all"})
    assert resp.status == 401
    problem = await resp.json()
    assert problem["code"] == "unauthorized"
    assert "no API keys are configured" in problem["detail"]


# ---- reads ----------------------------------------------------------------------------


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


async def test_config_never_shows_a_secret(admin_gw: GatewayUnderTest):
    resp = await admin_gw.client.get("/admin/config", headers=VIEWER)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    text = await resp.text()
    body = await resp.json()
    known = [*KEYS.values(), ROOT_KEY, *admin_gw.stack.secrets.env().values()]
    # PEM keys are multi-line: no line of one may show either.
    pieces = [*known, *(ln for v in known for ln in v.splitlines() if len(ln) >= 16)]
    shown = list(strings(body))
    for secret in pieces:
        assert secret not in text
        assert not any(secret in s for s in shown)
    assert hashlib.sha256(ROOT_KEY.encode()).hexdigest() not in text
    config = body["config"]
    assert config["providers"]["hub88"]["credentials"] == {
        "operator_id": 1,
        "private_key_env": "***",
    }
    assert config["providers"]["slotegrator"]["credentials"]["merchant_key_env"] == "***"
    assert config["providers"]["slotegrator"]["credentials"]["merchant_id"] == "demo"
    assert [c["key_env"] for c in config["clients"][:3]] == ["***"] * 3
    assert config["clients"][3] == {"id": "root", "key_sha256": "***", "roles": ["admin"]}
    assert body["hash"] == admin_gw.gateway.runtime.config.hash


async def test_config_status_without_a_file(admin_gw: GatewayUnderTest):
    resp = await admin_gw.client.get("/admin/config/status", headers=VIEWER)
    assert resp.status == 200
    status = await resp.json()
    rt = admin_gw.gateway.runtime
    assert status["hash"] == rt.config.hash
    assert status["loaded_at"] == rt.loaded_at
    assert status["file"] is None and status["watching"] is False
    assert status["last_reload"]["result"] == "success"
    resp = await admin_gw.client.post("/admin/reload", headers=OPERATOR)
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["code"] == "invalid_request"


async def test_provider_states(admin_gw: GatewayUnderTest):
    resp = await admin_gw.client.get("/admin/providers", headers=VIEWER)
    assert resp.status == 200
    providers = (await resp.json())["providers"]
    assert sorted(providers) == ["adyen", "hub88", "slotegrator", "stripe"]
    hub88 = providers["hub88"]
    assert hub88["healthy"] is True and hub88["drained"] is False
    assert hub88["drained_by"] is None and hub88["cooldown_s"] == 0
    assert hub88["last_error"] is None and hub88["kind"] == "games"
    assert set(hub88) >= {"health", "breakers", "last_error_at", "adapter"}


# ---- drain and enable -----------------------------------------------------------------


async def launch(gw: GatewayUnderTest) -> str:
    resp = await gw.client.post(f"/v1/games/{SHARED_GAME}/launch", json=REAL_LAUNCH, headers=WEB)
    assert resp.status == 200
    provider: str = (await resp.json())["provider"]
    return provider


async def test_drain_takes_a_provider_out_and_enable_brings_it_back(
    admin_gw: GatewayUnderTest,
    audit_log: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    shared: list[tuple[str, bool, str | None]] = []

    async def on_drain_change(name: str, drained: bool, actor: str | None = None) -> None:
        shared.append((name, drained, actor))

    monkeypatch.setattr(admin_gw.gateway, "on_drain_change", on_drain_change)
    await admin_gw.catalog_ready()
    resp = await admin_gw.client.post("/admin/providers/hub88/drain", headers=OPERATOR)
    assert resp.status == 200
    state = await resp.json()
    assert state["name"] == "hub88"
    assert state["drained"] is True and state["drained_by"] == "ops"

    resp = await admin_gw.client.get("/v1/games", headers=WEB)
    assert resp.status == 200
    meta = (await resp.json())["meta"]
    # Selection decides who is called, not which games exist: Hub88's stay listed.
    assert meta["providers"] == {"hub88": "ok", "slotegrator": "ok"}
    assert meta["partial"] is False and meta["total"] == 34
    assert await launch(admin_gw) == "slotegrator"
    assert admin_gw.calls("hub88", HUB88_LAUNCH) == 0
    assert admin_gw.calls("hub88", HUB88_LIST) == 1  # the catalog fetched at start
    ready = await (await admin_gw.client.get("/readyz")).json()
    for route in ("games.list", "games.get", "games.launch"):
        assert ready["routes"][route]["skipped"] == {"hub88": "drained"}
    metrics = (await (await admin_gw.client.get("/metrics")).text()).splitlines()
    assert 'gateway_provider_drained{provider="hub88"} 1.0' in metrics

    resp = await admin_gw.client.post("/admin/providers/hub88/enable", headers=ROOT)
    assert resp.status == 200
    state = await resp.json()
    assert state["drained"] is False and state["drained_by"] is None
    assert await launch(admin_gw) == "hub88"
    assert admin_gw.calls("hub88", HUB88_LAUNCH) == 1
    metrics = (await (await admin_gw.client.get("/metrics")).text()).splitlines()
    assert 'gateway_provider_drained{provider="hub88"} 0.0' in metrics

    assert shared == [("hub88", True, "ops"), ("hub88", False, "root")]
    assert audit_lines(audit_log) == [
        ("ops", "provider.drain", "hub88"),
        ("root", "provider.enable", "hub88"),
    ]


async def test_drain_shows_in_provider_states(admin_gw: GatewayUnderTest):
    await admin_gw.client.post("/admin/providers/slotegrator/drain", headers=OPERATOR)
    resp = await admin_gw.client.get("/admin/providers", headers=VIEWER)
    providers = (await resp.json())["providers"]
    assert providers["slotegrator"]["drained"] is True
    assert providers["slotegrator"]["drained_by"] == "ops"
    assert providers["hub88"]["drained"] is False


async def test_drain_of_an_unknown_provider_is_404(admin_gw: GatewayUnderTest):
    resp = await admin_gw.client.post("/admin/providers/hub99/drain", headers=OPERATOR)
    assert resp.status == 404
    assert (await resp.json())["code"] == "not_found"
    resp = await admin_gw.client.post("/admin/providers/hub99/enable", headers=OPERATOR)
    assert resp.status == 404


async def test_failing_share_hook_keeps_the_local_drain(
    admin_gw: GatewayUnderTest, monkeypatch: pytest.MonkeyPatch
):
    def on_drain_change(name: str, drained: bool, actor: str | None = None) -> None:
        raise ConnectionError("shared store down")

    monkeypatch.setattr(admin_gw.gateway, "on_drain_change", on_drain_change)
    resp = await admin_gw.client.post("/admin/providers/hub88/drain", headers=OPERATOR)
    assert resp.status == 503
    assert (await resp.json())["code"] == "unavailable"
    assert admin_gw.gateway.registry.get("hub88").drained is True  # type: ignore[union-attr]


# ---- cache ----------------------------------------------------------------------------

CACHED = {
    "routes": {
        "games.list": {"cache": {"ttl_s": 60}},
        "payments.get": {"cache": {"ttl_s": 5}},
    }
}


async def list_games(gw: GatewayUnderTest) -> str:
    resp = await gw.client.get("/v1/games", headers=WEB)
    assert resp.status == 200
    return resp.headers["X-Cache"]


async def test_games_routes_are_refreshed_not_flushed(
    make_gateway: MakeGateway, audit_log: pytest.LogCaptureFixture
):
    gw = await make_gateway(merge(CLIENTS, CACHED), env=KEYS)
    await gw.catalog_ready()
    assert await list_games(gw) == "HIT"
    resp = await gw.client.delete("/admin/cache", params={"route": "games.list"}, headers=OPERATOR)
    assert resp.status == 409
    problem = await resp.json()
    assert problem["code"] == "conflict"
    assert "POST /admin/catalog/refresh" in problem["detail"]
    assert await list_games(gw) == "HIT"
    assert (gw.calls("hub88", HUB88_LIST), gw.calls("slotegrator", SLOT_LIST)) == (1, 3)
    assert audit_lines(audit_log) == []


async def test_flushing_payments_leaves_catalogs(make_gateway: MakeGateway):
    gw = await make_gateway(merge(CLIENTS, CACHED), env=KEYS)
    deposit = {
        "type": "deposit",
        "amount": 2500,
        "currency": "EUR",
        "player_id": "player-42",
        "method": {"type": "card"},
        "return_url": "https://casino.example/cashier",
    }
    headers = {**WEB, "Idempotency-Key": uuid.uuid4().hex}
    resp = await gw.client.post("/v1/payments", json=deposit, headers=headers)
    assert resp.status == 201
    payment_id = (await resp.json())["payment_id"]
    for expected in ("MISS", "HIT"):
        resp = await gw.client.get(f"/v1/payments/{payment_id}", headers=WEB)
        assert resp.headers["X-Cache"] == expected
    await gw.catalog_ready()
    resp = await gw.client.delete(
        "/admin/cache", params={"route": "payments.get"}, headers=OPERATOR
    )
    assert await resp.json() == {"flushed": 1}
    assert await list_games(gw) == "HIT"
    resp = await gw.client.get(f"/v1/payments/{payment_id}", headers=WEB)
    assert resp.headers["X-Cache"] == "MISS"
    resp = await gw.client.delete("/admin/cache", headers=ROOT)
    assert await resp.json() == {"flushed": 1}  # everything the cache holds: the payment
    assert await list_games(gw) == "HIT"  # catalogs are not cache entries


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"route": "games.nope"}, 404, "not_found"),
        ({"route": ""}, 404, "not_found"),
        ({"route": "payments.create"}, 409, "conflict"),
        ({"rout": "games.list"}, 400, "invalid_request"),
    ],
)
async def test_flush_refuses_what_it_cannot_name(
    make_gateway: MakeGateway, params: dict[str, str], status: int, code: str
):
    gw = await make_gateway(merge(CLIENTS, CACHED), env=KEYS)
    await list_games(gw)
    resp = await gw.client.delete("/admin/cache", params=params, headers=OPERATOR)
    assert resp.status == status
    assert (await resp.json())["code"] == code
    assert await list_games(gw) == "HIT"  # nothing was flushed


# ---- reload ---------------------------------------------------------------------------


async def status_of(gw: GatewayUnderTest) -> dict[str, Any]:
    resp = await gw.client.get("/admin/config/status", headers=VIEWER)
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def test_reload_applies_a_valid_file_and_refuses_a_bad_one(
    file_gateway: FileGateway, stack: Stack, audit_log: pytest.LogCaptureFixture
):
    gw, path = await file_gateway()
    await gw.catalog_ready()
    before = await status_of(gw)
    assert before["file"] == str(path) and before["watching"] is True

    valid = yaml.safe_dump(merge(base_config(stack), merge(CLIENTS, CACHED))).encode()
    path.write_bytes(valid)
    resp = await gw.client.post("/admin/reload", headers=OPERATOR)
    assert resp.status == 200
    result = await resp.json()
    new_hash = hashlib.sha256(valid).hexdigest()
    assert result["result"] == "success" and result["hash"] == new_hash
    assert result["trigger"] == "admin" and result["actor"] == "ops"
    after = await status_of(gw)
    assert after["hash"] == new_hash != before["hash"]
    assert after["loaded_at"] > before["loaded_at"]
    assert after["last_reload"]["result"] == "success"
    # The same aggregators with the same settings: the catalogs carry over the reload.
    assert await list_games(gw) == "HIT"
    assert gw.calls("hub88", HUB88_LIST) == 1

    bad = merge(base_config(stack), CLIENTS)
    bad["routes"]["games.list"]["providers"] = ["hub88", "hub99"]
    path.write_text(yaml.safe_dump(bad))
    resp = await gw.client.post("/admin/reload", headers=ROOT)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["code"] == "invalid_request"
    assert problem["errors"] == ["routes.games.list.providers[1]: unknown provider 'hub99'"]

    # The old config keeps serving, and the status tells why the new one was refused.
    assert await list_games(gw) == "HIT"
    refused = await status_of(gw)
    assert refused["hash"] == new_hash
    assert refused["last_reload"]["result"] == "failure"
    assert refused["last_reload"]["errors"] == problem["errors"]
    assert refused["last_reload"]["actor"] == "root"
    assert audit_lines(audit_log) == [
        ("ops", "config.reload", str(path)),
        ("root", "config.reload", str(path)),
    ]
    assert [r.result for r in audit_log.records if r.levelno == logging.INFO] == [  # type: ignore[attr-defined]
        "success",
        "failure",
    ]


async def test_status_says_the_file_matches_the_running_config_after_a_revert(
    file_gateway: FileGateway, stack: Stack
):
    gw, path = await file_gateway()
    good = path.read_bytes()
    assert (await status_of(gw))["file_matches_running"] is True
    bad = merge(base_config(stack), CLIENTS)
    bad["routes"]["games.list"]["providers"] = ["hub88", "hub99"]
    path.write_text(yaml.safe_dump(bad))
    watcher = gw.gateway.watcher
    assert watcher is not None
    assert (await watcher.reload("file_change", force=False)).result == "failure"
    refused = await status_of(gw)
    assert (refused["last_reload"]["result"], refused["file_matches_running"]) == (
        "failure", False
    )
    path.write_bytes(good)  # the edit reverted
    assert (await watcher.reload("file_change", force=False)).result == "unchanged"
    reverted = await status_of(gw)
    assert reverted["last_reload"]["result"] == "unchanged"
    assert reverted["last_reload"]["errors"] == []
    assert reverted["file_matches_running"] is True


async def test_reads_are_audited_at_debug_only(
    admin_gw: GatewayUnderTest, audit_log: pytest.LogCaptureFixture
):
    for path in ("/admin/config", "/admin/config/status", "/admin/providers", "/admin/catalog"):
        assert (await admin_gw.client.get(path, headers=VIEWER)).status == 200
    assert audit_lines(audit_log) == []
    reads = [(r.actor, r.action) for r in audit_log.records]  # type: ignore[attr-defined]
    assert reads == [
        ("ops-viewer", "config.read"),
        ("ops-viewer", "config.status"),
        ("ops-viewer", "providers.read"),
        ("ops-viewer", "catalog.read"),
    ]
