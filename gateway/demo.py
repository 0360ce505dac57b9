"""`casino-gateway demo`: every simulator plus the gateway, with keys made at start.

The only command that imports `simulators/`: a demo needs providers to talk to.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import os
import shlex
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.config.errors import ConfigError
from gateway.config.load import load_config
from gateway.http.server import ListenError, check_can_listen, serve
from simulators.stack import DEFAULT_PORTS, DemoSecrets, make_secrets, ports_from, start_stack

SIM_HOST = "127.0.0.1"  # the simulators listen on loopback whatever the config's URLs say
SIM_PORTS_TOO_HIGH = "the simulators' four ports would pass 65535: choose a lower --port"


def _loopback_simulated(spec: Any) -> bool:
    """Is this provider one the demo starts a simulator for (its adapter's, on loopback)?"""
    if not isinstance(spec, dict) or spec.get("adapter") not in DEFAULT_PORTS:
        return False
    return urlsplit(str(spec.get("base_url", ""))).hostname in ("127.0.0.1", "localhost", "::1")


def simulator_ports(doc: dict[str, Any]) -> dict[str, int]:
    """Which simulator to start on which port, read from the providers' loopback base_urls."""
    ports: dict[str, int] = {}
    for spec in (doc.get("providers") or {}).values():
        if _loopback_simulated(spec):
            url = urlsplit(spec["base_url"])
            ports.setdefault(spec["adapter"], url.port or DEFAULT_PORTS[spec["adapter"]])
    return ports


def moved_config(path: Path, doc: dict[str, Any], ports: dict[str, int], folder: Path) -> Path:
    """A copy of the config in `folder`, its simulated providers on `ports`.

    Relative `*_file` paths are made absolute: the copy lives in another folder.
    """
    doc = copy.deepcopy(doc)
    for spec in doc["providers"].values():
        if _loopback_simulated(spec):
            url = urlsplit(spec["base_url"])
            host = f"[{url.hostname}]" if ":" in str(url.hostname) else url.hostname
            spec["base_url"] = url._replace(netloc=f"{host}:{ports[spec['adapter']]}").geturl()

    def absolute(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: str(path.parent.resolve() / v)
                if str(k).endswith("_file") and isinstance(v, str)
                else absolute(v)
                for k, v in node.items()
            }
        return [absolute(v) for v in node] if isinstance(node, list) else node

    copied = folder / path.name
    copied.write_text(yaml.safe_dump(absolute(doc), sort_keys=False))
    return copied


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


async def run_demo(
    path: Path,
    port: int | None = None,
    sim_base_port: int | None = None,
    auto_complete_s: float = 5.0,
) -> int:
    """Serve until stopped. `port` moves the gateway and, unless `sim_base_port` says
    otherwise, the simulators to the four ports after it."""
    demo = make_secrets()
    os.environ.update(demo.env())  # this process only: the keys die with it
    # A throwaway folder: the ledger (the demo's payments need not outlive it, nor litter
    # the current one) and, when the simulators move, the config naming their ports.
    workdir = tempfile.TemporaryDirectory(prefix="casino-gateway-demo-")
    try:
        return await _run(path, port, sim_base_port, auto_complete_s, demo, Path(workdir.name))
    finally:
        workdir.cleanup()


async def _run(
    path: Path,
    port: int | None,
    sim_base_port: int | None,
    auto_complete_s: float,
    demo: DemoSecrets,
    workdir: Path,
) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 1
    doc = yaml.safe_load(path.read_bytes())  # valid: load_config has just read it
    sims = simulator_ports(doc)
    served = path
    if sim_base_port is None and port is not None:
        sim_base_port = port + 1
    if sim_base_port is not None:
        sims = ports_from(sim_base_port, sims)
        if any(p > 65535 for p in sims.values()):
            print(f"casino-gateway demo: {SIM_PORTS_TOO_HIGH}", file=sys.stderr)
            return 1
        served = moved_config(path, doc, sims, workdir)
        config = load_config(served)
    host = config.listen_host
    gw_port = port if port is not None else config.listen_port
    listeners = {"the gateway": (host, gw_port)}
    listeners.update({f"the {name} simulator": (SIM_HOST, p) for name, p in sims.items()})
    for what, (at_host, at_port) in listeners.items():
        try:
            check_can_listen(at_host, at_port)
        except ListenError as exc:
            print(cannot_listen(exc, what), file=sys.stderr)
            return 1
    base = f"http://{host}:{gw_port}"
    try:
        stack = await start_stack(
            demo, sims, webhook_base_url=base, auto_complete_s=auto_complete_s, host=SIM_HOST
        )
    except OSError as exc:  # a port taken since the check above
        print(f"casino-gateway demo: cannot start the simulators: {exc}", file=sys.stderr)
        return 1
    ready = asyncio.Event()
    ledger = dataclasses.replace(config.ledger, backend="sqlite", path=str(workdir / "ledger.db"))
    server = asyncio.create_task(
        serve(config, port=gw_port, config_path=str(served), ledger=ledger, ready=ready)
    )
    try:
        await asyncio.wait(
            {server, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if server.done():
            try:
                await server
            except ListenError as exc:  # taken since the check above
                print(cannot_listen(exc, "the gateway"), file=sys.stderr)
            return 1
        api_key = demo.client_key if config.clients else None
        moved = f"; simulators' ports in a copy: {served}" if served != path else ""
        lines = [
            f"casino-gateway demo: gateway on {base} ({path}{moved})",
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


def cannot_listen(exc: ListenError, what: str) -> str:
    todo = (
        "stop what uses it (another demo?) or move the demo with --port PORT (the gateway "
        "on PORT, the simulators on the four ports after it)"
        if exc.in_use
        else "check the config's listen.host and the ports given"
    )
    return f"casino-gateway demo: cannot listen on {exc.address} for {what}: {exc.reason}; {todo}"
