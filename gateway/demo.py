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
from simulators.stack import (
    DEFAULT_PORTS,
    WALLET_PLAYERS,
    DemoSecrets,
    make_secrets,
    ports_from,
    start_stack,
)

SIM_HOST = "127.0.0.1"  # the simulators listen on loopback whatever the config's URLs say
SIM_PORTS_TOO_HIGH = (
    "the simulators' and the casino wallet's ports would pass 65535: choose a lower --port"
)
# The reference casino wallet, the gateway's wallet backend in the demo: on this port, or
# the one after the simulators' when they move.
WALLET_PORT = 9200
WALLET_SECRET_ENV = "WALLET_SIGNING_SECRET"
HUB88_WALLET_KEY_ENV = "HUB88_WALLET_PUBLIC_KEY"


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


def wallet_port(doc: dict[str, Any]) -> int | None:
    """The port of the reference casino wallet the demo starts: the config's own
    `wallet.backend_url` when it is on loopback, WALLET_PORT when there is no `wallet`
    block (the demo adds one), None when the config's wallet is elsewhere."""
    wallet = doc.get("wallet")
    if not isinstance(wallet, dict):
        return WALLET_PORT
    url = urlsplit(str(wallet.get("backend_url", "")))
    if url.hostname in ("127.0.0.1", "localhost", "::1"):
        return url.port or 80
    return None


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if ":" in str(parts.hostname) else parts.hostname
    return parts._replace(netloc=f"{host}:{port}").geturl()


def moved_config(
    path: Path,
    doc: dict[str, Any],
    ports: dict[str, int],
    folder: Path,
    wallet: int | None = None,
    gateway_url: str | None = None,
) -> Path:
    """A copy of the config in `folder`, its simulated providers on `ports`, and with a
    `wallet` port, its wallet backend the demo's reference wallet on it (the `wallet` block
    added when there is none, and Hub88's wallet key for a simulated Hub88 that has none).
    A simulated Trustly notifies `gateway_url`, where the gateway listens.

    Relative `*_file` paths are made absolute: the copy lives in another folder.
    """
    doc = copy.deepcopy(doc)
    for name, spec in doc["providers"].items():
        if _loopback_simulated(spec):
            spec["base_url"] = _with_port(spec["base_url"], ports[spec["adapter"]])
            credentials = spec.setdefault("credentials", {})
            if gateway_url is not None and spec["adapter"] == "trustly":
                credentials["notification_url"] = f"{gateway_url}/v1/webhooks/{name}"
            if wallet is not None and spec["adapter"] == "hub88" and not any(
                key.startswith("hub88_public_key") for key in credentials
            ):
                credentials["hub88_public_key_env"] = HUB88_WALLET_KEY_ENV
    if wallet is not None:
        block = doc.setdefault(
            "wallet", {"backend_url": f"http://{SIM_HOST}/wallet", "secret_env": WALLET_SECRET_ENV}
        )
        block["backend_url"] = _with_port(block["backend_url"], wallet)

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


def wallet_examples(hub88_url: str, wallet_url: str) -> list[str]:
    """A round played by the Hub88 simulator on the session the launch above opened: its
    signed bet and win callbacks reach the gateway, which settles them at the casino wallet."""
    round_ = (
        '{"token":"sess-123","user":"player-42","currency":"EUR","game_code":"pp_sweet_bonanza",'
        '"bet":100000,"win":250000}'
    )
    balance = f"curl -s '{wallet_url}/_sim/players/player-42'"
    return [
        f"{balance}   # the player's balance at the casino wallet (minor units)",
        f"curl -s -X POST '{hub88_url}/_sim/rounds' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(round_)} | python3 -m json.tool   # bet EUR 1.00, win EUR 2.50",
        f"{balance}   # EUR 1.50 up",
    ]


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
    withdrawal = (
        '{"type":"withdrawal","amount":5000,"currency":"EUR","player_id":"player-42",'
        '"method":{"type":"bank_transfer"},"country":"SE"}'
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
        f"curl -s{auth} -X POST '{base}/v1/payments' -H 'Content-Type: application/json' "
        f"-H 'Idempotency-Key: {uuid.uuid4().hex}' -d {shlex.quote(withdrawal)}"
        "   # a payout through Trustly",
    ]


async def run_demo(
    path: Path,
    port: int | None = None,
    sim_base_port: int | None = None,
    auto_complete_s: float = 5.0,
) -> int:
    """Serve until stopped. `port` moves the gateway and, unless `sim_base_port` says
    otherwise, the simulators to the five ports after it and the casino wallet to the next."""
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
    wallet = wallet_port(doc)
    if sim_base_port is None and port is not None:
        sim_base_port = port + 1
    if sim_base_port is not None:
        sims = ports_from(sim_base_port, sims)
        wallet = None if wallet is None else sim_base_port + len(DEFAULT_PORTS)
        if any(p > 65535 for p in [*sims.values(), wallet or 0]):
            print(f"casino-gateway demo: {SIM_PORTS_TOO_HIGH}", file=sys.stderr)
            return 1
    if wallet is not None:
        # The reference wallet checks the gateway's calls with the demo's secret, under
        # whatever variable the config names.
        os.environ[config_secret_env(doc)] = demo.wallet_secret
    host = config.listen_host
    gw_port = port if port is not None else config.listen_port
    base = f"http://{host}:{gw_port}"
    served = path
    if sim_base_port is not None or wallet is not None or port is not None:
        served = moved_config(path, doc, sims, workdir, wallet, base)
        config = load_config(served)
    listeners = {"the gateway": (host, gw_port)}
    listeners.update({f"the {name} simulator": (SIM_HOST, p) for name, p in sims.items()})
    if wallet is not None:
        listeners["the casino wallet"] = (SIM_HOST, wallet)
    for what, (at_host, at_port) in listeners.items():
        try:
            check_can_listen(at_host, at_port)
        except ListenError as exc:
            print(cannot_listen(exc, what), file=sys.stderr)
            return 1
    try:
        started = {**sims, "wallet": wallet} if wallet is not None else sims
        stack = await start_stack(
            demo, started, webhook_base_url=base, auto_complete_s=auto_complete_s, host=SIM_HOST
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
        moved = f"; the demo's ports and wallet in a copy: {served}" if served != path else ""
        sim_urls = {n: s.url for n, s in stack.servers.items() if n != "wallet"}
        examples = curl_examples(base, api_key)
        lines = [
            f"casino-gateway demo: gateway on {base} ({path}{moved})",
            "simulators: " + ", ".join(f"{n} {url}" for n, url in sim_urls.items()),
        ]
        if "wallet" in stack.servers:
            player, (currency, balance) = next(iter(WALLET_PLAYERS.items()))
            lines.append(
                f"casino wallet: {stack.url('wallet')}/wallet (the gateway's wallet backend; "
                f"{player} holds {currency} {balance // 100}.{balance % 100:02d})"
            )
            if "hub88" in sim_urls:
                examples += wallet_examples(sim_urls["hub88"], stack.url("wallet"))
        lines += ["", "Try:", *(f"  {line}" for line in examples), "", "Ctrl-C stops everything."]
        print("\n".join(lines), flush=True)
        await server
        return 0
    finally:
        if not server.done():
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
        await stack.close()


def config_secret_env(doc: dict[str, Any]) -> str:
    wallet = doc.get("wallet")
    name = wallet.get("secret_env") if isinstance(wallet, dict) else None
    return name if isinstance(name, str) and name else WALLET_SECRET_ENV


def cannot_listen(exc: ListenError, what: str) -> str:
    todo = (
        "stop what uses it (another demo?) or move the demo with --port PORT (the gateway "
        "on PORT, the simulators and the casino wallet on the six ports after it)"
        if exc.in_use
        else "check the config's listen.host and the ports given"
    )
    return f"casino-gateway demo: cannot listen on {exc.address} for {what}: {exc.reason}; {todo}"
