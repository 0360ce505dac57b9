"""`casino-gateway demo`: every simulator plus the gateway, with keys made at start.

The only command that imports `simulators/`: a demo needs providers to talk to.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from gateway.config.errors import ConfigError
from gateway.config.load import load_config
from gateway.http.server import serve
from simulators.stack import DEFAULT_PORTS, make_secrets, start_stack


def simulator_ports(path: Path) -> dict[str, int]:
    """Which simulator to start on which port, read from the providers' loopback base_urls."""
    import yaml

    doc = yaml.safe_load(path.read_text())
    ports: dict[str, int] = {}
    for spec in (doc.get("providers") or {}).values():
        adapter = spec.get("adapter")
        url = urlsplit(str(spec.get("base_url", "")))
        if adapter in DEFAULT_PORTS and url.hostname in ("127.0.0.1", "localhost", "::1"):
            ports.setdefault(adapter, url.port or DEFAULT_PORTS[adapter])
    return ports


def curl_examples(base: str, api_key: str | None) -> list[str]:
    auth = f" -H 'X-API-Key: {api_key}'" if api_key else ""
    deposit = (
        '{"type":"deposit","amount":2500,"currency":"EUR","player_id":"player-42",'
        '"method":{"type":"card"},"return_url":"https://casino.example/cashier"}'
    )
    launch = (
        '{"player_id":"player-42","currency":"EUR","mode":"real","platform":"desktop",'
        '"language":"en","session_token":"sess-123","return_url":"https://casino.example/lobby"}'
    )
    key = uuid.uuid4().hex
    return [
        f"curl -sN{auth} '{base}/v1/events?player_id=player-42' &   # live payment events",
        f"curl -s{auth} '{base}/v1/games?page_size=5' | python3 -m json.tool",
        f"curl -s{auth} '{base}/v1/games/pragmatic-play:sweet-bonanza' | python3 -m json.tool",
        f"curl -s{auth} -X POST '{base}/v1/games/pragmatic-play:sweet-bonanza/launch' "
        f"-H 'Content-Type: application/json' -d {shlex.quote(launch)}",
        f"curl -s{auth} -X POST '{base}/v1/payments' -H 'Content-Type: application/json' "
        f"-H 'Idempotency-Key: {key}' -d {shlex.quote(deposit)} | tee /tmp/payment.json",
        f'curl -s{auth} "{base}/v1/payments/$(python3 -c '
        '\'import json;print(json.load(open("/tmp/payment.json"))["payment_id"])\')"',
    ]


async def run_demo(path: Path, port: int | None = None, auto_complete_s: float = 5.0) -> int:
    demo = make_secrets()
    os.environ.update(demo.env())  # this process only: the keys die with it
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 1
    host = config.listen_host
    gw_port = port if port is not None else config.listen_port
    base = f"http://{host}:{gw_port}"
    stack = await start_stack(
        demo, simulator_ports(path), webhook_base_url=base, auto_complete_s=auto_complete_s
    )
    ready = asyncio.Event()
    # A throwaway ledger: the demo's payments need not outlive it, nor litter the folder.
    workdir = tempfile.TemporaryDirectory(prefix="casino-gateway-demo-")
    ledger = dataclasses.replace(
        config.ledger, backend="sqlite", path=str(Path(workdir.name) / "ledger.db")
    )
    server = asyncio.create_task(
        serve(config, port=gw_port, config_path=str(path), ledger=ledger, ready=ready)
    )
    try:
        await asyncio.wait(
            {server, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if server.done():
            await server
            return 1
        api_key = demo.client_key if config.clients else None
        lines = [
            f"casino-gateway demo: gateway on {base} ({path})",
            "simulators: " + ", ".join(f"{n} {s.url}" for n, s in stack.servers.items()),
            "",
            "Try:",
            *(f"  {line}" for line in curl_examples(base, api_key)),
            "",
            "Ctrl-C stops everything.",
        ]
        print("\n".join(lines), flush=True)
        await server
        return 0
    finally:
        if not server.done():
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
        await stack.close()
        workdir.cleanup()
