"""Shared fixtures: the simulators and gateways on real loopback sockets."""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp.test_utils import TestClient, TestServer

from gateway.config.load import parse_config
from gateway.config.model import Config
from gateway.games.sync import CatalogSync
from gateway.http.app import create_app
from gateway.http.context import CATALOG, GATEWAY
from gateway.runtime.gateway import Gateway
from simulators.stack import TRUSTLY_USERNAME, DemoSecrets, Stack, make_secrets, start_stack

ALL_SIMULATORS = {"hub88": 0, "slotegrator": 0, "stripe": 0, "adyen": 0, "trustly": 0}


@pytest.fixture(scope="session")
def demo_secrets() -> DemoSecrets:
    return make_secrets()  # one RSA key for the whole run: key generation is slow


@pytest.fixture
async def stack(demo_secrets: DemoSecrets) -> AsyncIterator[Stack]:
    s = await start_stack(demo_secrets, ALL_SIMULATORS, per_page=8)
    yield s
    await s.close()


def base_config(stack: Stack) -> dict[str, Any]:
    """A config for tests: short timeouts, no background health probes unless asked."""
    return {
        "version": 1,
        # One process's memory: fast, and gone with the test (durability tests use files).
        "ledger": {"backend": "memory"},
        "studio_aliases": {
            "pragmaticplay": "pragmatic-play",
            "evolution-gaming": "evolution",
            "playn-go": "play-n-go",
        },
        "defaults": {
            "timeout_ms": 500,
            "breaker": {"failure_threshold": 5, "recovery_timeout_s": 30},
            "health": {"enabled": False, "interval_s": 0.2, "timeout_ms": 200},
        },
        "providers": {
            "hub88": {
                "adapter": "hub88",
                "base_url": stack.url("hub88"),
                "credentials": {"operator_id": 1, "private_key_env": "HUB88_PRIVATE_KEY"},
            },
            "slotegrator": {
                "adapter": "slotegrator",
                "base_url": stack.url("slotegrator"),
                "credentials": {"merchant_id": "demo", "merchant_key_env": "SLOTEGRATOR_KEY"},
            },
            "stripe": {
                "adapter": "stripe",
                "base_url": stack.url("stripe"),
                "credentials": {
                    "secret_key_env": "STRIPE_SECRET_KEY",
                    "webhook_secret_env": "STRIPE_WEBHOOK_SECRET",
                },
            },
            "adyen": {
                "adapter": "adyen",
                "base_url": stack.url("adyen"),
                "credentials": {
                    "api_key_env": "ADYEN_API_KEY",
                    "merchant_account": "DemoCasino",
                    "hmac_key_env": "ADYEN_HMAC_KEY",
                },
            },
        },
        "routes": {
            "games.list": {"providers": ["hub88", "slotegrator"]},
            "games.get": {"providers": ["hub88", "slotegrator"]},
            "games.launch": {"providers": ["hub88", "slotegrator"]},
            "payments.create": {"providers": ["stripe", "adyen"]},
            "payments.get": {"providers": ["stripe", "adyen"]},
        },
    }


def trustly_provider(stack: Stack, notification_url: str) -> dict[str, Any]:
    """A Trustly provider on the stack's simulator, notifying `notification_url`."""
    return {
        "adapter": "trustly",
        "base_url": stack.url("trustly"),
        "credentials": {
            "username": TRUSTLY_USERNAME,
            "password_env": "TRUSTLY_PASSWORD",
            "private_key_env": "TRUSTLY_PRIVATE_KEY",
            "trustly_public_key_env": "TRUSTLY_PUBLIC_KEY",
            "notification_url": notification_url,
        },
    }


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build_config(
    doc: dict[str, Any], secrets: DemoSecrets, env: dict[str, str] | None = None
) -> Config:
    return parse_config(
        yaml.safe_dump(doc).encode(),
        source="test",
        env={**os.environ, **secrets.env(), **(env or {})},
    )


@dataclass
class GatewayUnderTest:
    client: TestClient
    stack: Stack

    @property
    def gateway(self) -> Gateway:
        return self.client.server.app[GATEWAY]

    @property
    def catalog(self) -> CatalogSync:
        return self.client.server.app[CATALOG]

    async def catalog_ready(self) -> None:
        """Every aggregator's first catalog attempt has ended (fetched or failed)."""
        for tracker in list(self.catalog.trackers.values()):
            await tracker.wait_first()

    @property
    def url(self) -> str:
        return str(self.client.make_url(""))

    def calls(self, simulator: str, path: str) -> int:
        return self.stack.servers[simulator].stats[path]


MakeGateway = Callable[..., Awaitable[GatewayUnderTest]]


@pytest.fixture
async def make_gateway(stack: Stack) -> AsyncIterator[MakeGateway]:
    clients: list[TestClient] = []

    async def make(
        changes: dict[str, Any] | None = None, env: dict[str, str] | None = None, **kwargs: Any
    ) -> GatewayUnderTest:
        doc = merge(base_config(stack), changes or {})
        config = build_config(doc, stack.secrets, env)
        app = create_app(config, **kwargs)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return GatewayUnderTest(client, stack)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def gw(make_gateway: MakeGateway) -> GatewayUnderTest:
    return await make_gateway()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # a missing Redis must fail these tests, not skip them
        pytest.fail(f"Redis on 127.0.0.1:6379 is required: {exc}")
    value = f"gwtest:{uuid.uuid4().hex[:12]}:"
    yield value
    keys = [k async for k in client.scan_iter(match=value + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


# Fixtures shared by several modules; pytest finds them here.
from tests.wired import make_wired  # noqa: E402,F401
