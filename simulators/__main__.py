"""`python -m simulators`: run one or all provider simulators until SIGINT or SIGTERM.

    python -m simulators                              # all five, on 127.0.0.1, default ports
    python -m simulators --host 0.0.0.0               # in a container (deploy/compose.yaml)
    python -m simulators stripe --port 9203           # one simulator on another port
    python -m simulators --port hub88=0 --port adyen=0   # 0: any free port (printed)
    python -m simulators --print-env --out deploy      # throwaway credentials: deploy/.env
                                                       # and the PEM keys beside it

Credentials come from the environment under the names the gateway's config uses
(`simulators.stack.DemoSecrets.env`), plus the keys only a simulator holds: HUB88_PUBLIC_KEY
(the Hub88 simulator needs only the operator's public key; without it, the public half of
HUB88_PRIVATE_KEY is used), TRUSTLY_SIGNING_KEY (Trustly's own private key, whose public half
the gateway has as TRUSTLY_PUBLIC_KEY) and TRUSTLY_MERCHANT_PUBLIC_KEY (without it, the
public half of TRUSTLY_PRIVATE_KEY). As for the gateway, a variable NAME that is not set may
be given as NAME_FILE, a file holding it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from simulators.stack import DEFAULT_PORTS, DemoSecrets, make_secrets, start_stack

HUB88_PUBLIC_KEY = "HUB88_PUBLIC_KEY"
TRUSTLY_SIGNING_KEY = "TRUSTLY_SIGNING_KEY"
TRUSTLY_MERCHANT_PUBLIC_KEY = "TRUSTLY_MERCHANT_PUBLIC_KEY"


def _env_names() -> dict[str, str]:
    """DemoSecrets field -> environment variable, read from `DemoSecrets.env` itself."""
    probe = DemoSecrets(**{f.name: f.name for f in dataclasses.fields(DemoSecrets)})
    names = {field: var for var, field in probe.env().items()}
    names["hub88_public_pem"] = HUB88_PUBLIC_KEY
    names["trustly_private_pem"] = TRUSTLY_SIGNING_KEY
    names["trustly_merchant_public_pem"] = TRUSTLY_MERCHANT_PUBLIC_KEY
    return names


ENV_NAMES = _env_names()

# What each simulator needs (required) and can use (optional), as DemoSecrets fields.
_REQUIRED = {
    "hub88": ("hub88_public_pem",),
    "slotegrator": ("slotegrator_key",),
    "stripe": ("stripe_secret_key",),
    "adyen": ("adyen_api_key",),
    "trustly": ("trustly_password", "trustly_merchant_public_pem", "trustly_private_pem"),
}
_OPTIONAL = {
    "hub88": (),
    "slotegrator": (),
    "stripe": ("stripe_webhook_secret",),
    "adyen": ("adyen_hmac_key",),
    "trustly": (),
}
# A public key a simulator may derive from the private one the gateway's config names.
_DERIVED = {
    "hub88_public_pem": "hub88_private_pem",
    "trustly_merchant_public_pem": "trustly_merchant_private_pem",
}
REQUIRED_ENV = {name: tuple(ENV_NAMES[f] for f in fs) for name, fs in _REQUIRED.items()}
OPTIONAL_ENV = {name: tuple(ENV_NAMES[f] for f in fs) for name, fs in _OPTIONAL.items()}

# Not simulator credentials: the gateway's own, and the password of deploy/compose.yaml's
# ledger database (its `postgres` service; the gateways' LEDGER_DATABASE_URL is built from
# it), printed by --print-env so one .env file serves deploy/compose.yaml whole.
LEDGER_DB_PASSWORD = "LEDGER_DB_PASSWORD"
EXTRA_GATEWAY_ENV = ("PAYMENT_ID_SECRET", LEDGER_DB_PASSWORD)


# A PEM key spans lines, which no .env line can hold: --print-env writes these to files
# beside the .env and sets NAME_FILE to their path.
PEM_FILES = {
    "HUB88_PRIVATE_KEY": "hub88_private_key.pem",
    HUB88_PUBLIC_KEY: "hub88_public_key.pem",
    # Hub88's own public key, which the gateway checks wallet callbacks with.
    "HUB88_WALLET_PUBLIC_KEY": "hub88_wallet_public_key.pem",
    # The merchant's Trustly key (the gateway signs) and Trustly's pair (the simulator signs
    # with the private half, the gateway checks with the public one).
    "TRUSTLY_PRIVATE_KEY": "trustly_private_key.pem",
    "TRUSTLY_PUBLIC_KEY": "trustly_public_key.pem",
    TRUSTLY_MERCHANT_PUBLIC_KEY: "trustly_merchant_public_key.pem",
    TRUSTLY_SIGNING_KEY: "trustly_signing_key.pem",
}
ENV_FILE = ".env"
_ENV_HEADER = "# Throwaway credentials for the simulators (python -m simulators --print-env)"
# Read alike, verbatim, by `docker run --env-file` (which keeps quotes as part of the value),
# docker compose's .env (which strips quotes, reads `$`, `#`, `\` and blanks) and `set -a;
# . ./file` (the shell: quotes, `$`, `~`, blanks and more): so nothing else is written.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_./:@+,-]*")


class MissingCredentials(Exception):
    pass


def env_value(env: Mapping[str, str], name: str) -> str:
    """NAME's value, or the content of the file NAME_FILE names (as the gateway reads it)."""
    value = env.get(name, "")
    path = env.get(f"{name}_FILE", "")
    if value or not path:
        return value
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise MissingCredentials(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None


def _public_from_private(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _derived_public(env: Mapping[str, str], private_field: str) -> str:
    """The public half of the private key named by `private_field`'s variable, or ""."""
    private_pem = env_value(env, ENV_NAMES[private_field])
    if not private_pem:
        return ""
    try:
        return _public_from_private(private_pem)
    except (ValueError, TypeError) as exc:
        raise MissingCredentials(
            f"{ENV_NAMES[private_field]} is not a PEM private key: {exc}"
        ) from None


def secrets_from_env(names: Sequence[str], env: Mapping[str, str]) -> DemoSecrets:
    """The credentials the named simulators need, read from `env`; the rest left empty."""
    values = {f.name: "" for f in dataclasses.fields(DemoSecrets)}
    missing: list[str] = []
    for sim in names:
        for field in _REQUIRED[sim] + _OPTIONAL[sim]:
            values[field] = env_value(env, ENV_NAMES[field])
        for public, private in _DERIVED.items():
            if public in _REQUIRED[sim] and not values[public]:
                values[public] = _derived_public(env, private)
        missing += [ENV_NAMES[f] for f in _REQUIRED[sim] if not values[f]]
    if missing:
        hint = "".join(
            f" ({ENV_NAMES[public]} may be replaced by {ENV_NAMES[private]})"
            for public, private in _DERIVED.items()
            if ENV_NAMES[public] in missing
        )
        raise MissingCredentials(
            f"environment variables not set: {', '.join(missing)}{hint}; "
            "`python -m simulators --print-env --out DIR` makes a throwaway set"
        )
    return DemoSecrets(**values)


def simulator_only_env(demo: DemoSecrets) -> dict[str, str]:
    """The keys only the simulators hold (the gateway has the other halves)."""
    return {
        HUB88_PUBLIC_KEY: demo.hub88_public_pem,
        TRUSTLY_MERCHANT_PUBLIC_KEY: demo.trustly_merchant_public_pem,
        TRUSTLY_SIGNING_KEY: demo.trustly_private_pem,
    }


def dotenv_lines(demo: DemoSecrets, extra: Mapping[str, str], folder: Path) -> list[str]:
    """`NAME=value` lines, bare; each PEM key as NAME_FILE, its file's path in `folder`."""
    items = {**demo.env(), **simulator_only_env(demo), **extra}
    out = [_ENV_HEADER, "# Never real ones; do not commit. Load: set -a; . ./.env; set +a"]
    for name, value in items.items():
        if name in PEM_FILES:
            name, value = f"{name}_FILE", str(folder / PEM_FILES[name])
        if not _PLAIN_VALUE.fullmatch(value):
            raise ValueError(f"{name}: {value!r} cannot be written bare in a .env file")
        out.append(f"{name}={value}")
    return out


def write_env(folder: Path, demo: DemoSecrets, extra: Mapping[str, str]) -> list[Path]:
    """Write folder/.env and the PEM keys beside it; the paths written, the .env first."""
    folder = folder.resolve()
    env_file = folder / ENV_FILE
    if env_file.exists() and not env_file.read_text().startswith(_ENV_HEADER):
        raise ValueError(f"{env_file} exists and was not written by --print-env; not replacing it")
    lines = dotenv_lines(demo, extra, folder)  # refuses a folder whose path is not plain
    folder.mkdir(parents=True, exist_ok=True)
    every = {**demo.env(), **simulator_only_env(demo)}
    pems = {name: every[name] for name in PEM_FILES}
    written = [env_file]
    for name, pem in pems.items():
        path = folder / PEM_FILES[name]
        path.write_text(pem.strip() + "\n")
        # Readable by others: compose mounts these into containers running as another user
        # (the image's 10001). They are throwaway keys for the simulators.
        path.chmod(0o644)
        written.append(path)
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)
    return written


def parse_ports(names: Sequence[str], given: Sequence[str]) -> dict[str, int]:
    ports = {name: DEFAULT_PORTS[name] for name in names}
    for item in given:
        name, sep, port_text = item.rpartition("=")
        if not sep:
            if len(names) != 1:
                raise ValueError(f"--port {item}: say which simulator, e.g. --port stripe={item}")
            name = names[0]
        if name not in ports:
            raise ValueError(f"--port {item}: {name!r} is not one of the simulators started")
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"--port {item}: {port_text!r} is not a port number") from None
        if not 0 <= port <= 65535:
            raise ValueError(f"--port {item}: out of range")
        ports[name] = port
    return ports


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators",
        description="Run the Hub88, Slotegrator, Stripe, Adyen and Trustly simulators.",
        epilog="Credentials (environment): "
        + "; ".join(
            f"{name}: {', '.join(REQUIRED_ENV[name])}"
            + (f" (optional {', '.join(OPTIONAL_ENV[name])})" if OPTIONAL_ENV[name] else "")
            for name in DEFAULT_PORTS
        ),
    )
    parser.add_argument(
        "simulators",
        nargs="*",
        metavar="NAME",
        help=f"which to start: {', '.join(DEFAULT_PORTS)} (default: all)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="[NAME=]PORT",
        help="listen port of one simulator (repeatable; 0 = any free port); defaults: "
        + ", ".join(f"{n}={p}" for n, p in DEFAULT_PORTS.items()),
    )
    parser.add_argument(
        "--auto-complete-s",
        type=float,
        default=None,
        help="payment simulators complete pending payments after this many seconds",
    )
    parser.add_argument(
        "--webhook-base-url",
        default=None,
        help="deliver payment webhooks to URL/v1/webhooks/<provider> (default: none)",
    )
    parser.add_argument("--per-page", type=int, default=8, help="Slotegrator catalog page size")
    parser.add_argument(
        "--print-env",
        action="store_true",
        help="write fresh throwaway credentials for the simulators, the gateway and the "
        "ledger database of deploy/compose.yaml to DIR/.env (the PEM keys as files beside "
        "it), and exit",
    )
    parser.add_argument(
        "--out", metavar="DIR", type=Path, default=None, help="where --print-env writes"
    )
    return parser


async def serve(
    demo: DemoSecrets,
    ports: Mapping[str, int],
    *,
    host: str,
    webhook_base_url: str | None = None,
    auto_complete_s: float | None = None,
    per_page: int = 8,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> dict[str, str]:
    """Run until `stop` is set; without one, until SIGINT or SIGTERM. Returns the URLs."""
    stack = await start_stack(
        demo,
        ports,
        webhook_base_url=webhook_base_url,
        auto_complete_s=auto_complete_s,
        per_page=per_page,
        host=host,
    )
    urls = {name: server.url for name, server in stack.servers.items()}
    try:
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
        print("\n".join(f"{name} simulator on {url}" for name, url in urls.items()), flush=True)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await stack.close()
    return urls


def print_env(parser: argparse.ArgumentParser, out: Path | None) -> int:
    import secrets

    if out is None:
        parser.error("--print-env needs --out DIR: it writes DIR/.env and the PEM keys beside it")
    extra = {name: secrets.token_urlsafe(32) for name in EXTRA_GATEWAY_ENV}
    try:
        env_file, *pems = write_env(out, make_secrets(), extra)
    except (ValueError, OSError) as exc:
        print(f"python -m simulators: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(pem.name for pem in pems)
    print(f"wrote {env_file} and beside it {names} (throwaway credentials; never commit them)")
    print(f"load them into a shell: set -a; . {env_file}; set +a")
    print(f"or give them to a container: docker run --env-file {env_file} ...")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.print_env:
        return print_env(parser, args.out)
    names = list(dict.fromkeys(args.simulators)) or list(DEFAULT_PORTS)
    unknown = [name for name in names if name not in DEFAULT_PORTS]
    if unknown:
        parser.error(f"unknown simulator {unknown[0]!r} (choose from {', '.join(DEFAULT_PORTS)})")
    try:
        ports = parse_ports(names, args.port)
        demo = secrets_from_env(names, os.environ)
    except (ValueError, MissingCredentials) as exc:
        parser.error(str(exc))
    try:
        asyncio.run(
            serve(
                demo,
                ports,
                host=args.host,
                webhook_base_url=args.webhook_base_url,
                auto_complete_s=args.auto_complete_s,
                per_page=args.per_page,
            )
        )
    except (ValueError, OSError) as exc:  # a bad setting, or a port already taken
        print(f"python -m simulators: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
