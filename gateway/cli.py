"""The `casino-gateway` command: run, check, ledger, wallet, demo."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from gateway.config import summary
from gateway.config.errors import ConfigError
from gateway.config.load import load_config
from gateway.config.model import Config, ledger_problem
from gateway.http.server import ListenError, check_can_listen, maybe_uvloop, serve
from gateway.obs import logs

log = logging.getLogger("gateway")


def default_config_path() -> Path:
    """`config/providers.yaml` of the current folder, else the copy shipped in the package."""
    local = Path("config/providers.yaml")
    if local.is_file():
        return local
    return Path(str(resources.files("gateway").joinpath("data/providers.yaml")))


# What `check` and `run` add when a problem is a variable that is not set.
UNSET_VARIABLES_HINT = (
    "hint: to try it on the simulators, make throwaway values with "
    "`python -m simulators --print-env --out demo-env` and load them with "
    "`set -a; . demo-env/.env; set +a`"
)
_UNSET = re.compile(r"environment variable '[^']*' is not set")


def print_config_error(heading: str, exc: ConfigError) -> None:
    print(heading, file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    if any(_UNSET.search(problem) for problem in exc.problems):
        print(UNSET_VARIABLES_HINT, file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print_config_error(f"config error: {args.config}", exc)
        return 1
    workers = (
        args.workers
        if args.workers is not None
        else int(os.environ.get("GATEWAY_WORKERS", "1") or 1)
    )
    problem = ledger_start_problem(config, workers, dev=args.dev)
    if problem:
        print(f"config error: {problem}", file=sys.stderr)
        return 1
    host = args.host or config.listen_host
    port = args.port if args.port is not None else config.listen_port
    if not args.reuse_port:  # a worker shares the port its supervisor has checked
        try:
            check_can_listen(host, port)
        except ListenError as exc:
            print(cannot_listen(exc), file=sys.stderr)
            return 1
    if workers > 1:
        from gateway.http.workers import supervise

        passed = ["--config", args.config]
        for flag, value in (
            ("--host", args.host),
            ("--port", args.port),
            ("--log-level", args.log_level),
        ):
            if value is not None:
                passed += [flag, str(value)]
        if args.dev:
            passed.append("--dev")
        # Migrated once here, before the workers race to it.
        migrated = _migrate(config)
        if migrated:
            return migrated
        return supervise(passed, workers)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not args.reuse_port:
        # One process on a metrics volume that survived a restart: drop the old values.
        from gateway.http.workers import prepare_metrics_dir

        prepare_metrics_dir()
    logs.configure(config.log_level, fixed=args.log_level)
    maybe_uvloop()
    from gateway.ledger.database import LedgerTooNew, LedgerUnavailable

    try:
        asyncio.run(
            serve(
                config,
                host=args.host,
                port=args.port,
                config_path=args.config,
                reuse_port=args.reuse_port,
                processes=max(1, args.processes or workers),
            )
        )
    except (LedgerUnavailable, LedgerTooNew) as exc:
        print(f"ledger error: {exc}", file=sys.stderr)
        return 1
    except ListenError as exc:  # taken since the check above
        print(cannot_listen(exc), file=sys.stderr)
        return 1
    return 0


def cannot_listen(exc: ListenError) -> str:
    if exc.in_use:
        todo = "stop what uses it (another gateway or demo?) or choose another port with --port"
    else:
        todo = "check --host and --port, or listen: in the config"
    return f"casino-gateway run: {exc}; {todo}"


def ledger_start_problem(config: Config, workers: int, *, dev: bool) -> str | None:
    if config.ledger.backend == "memory" and not (dev or config.ledger.accept_data_loss):
        return (
            "ledger.backend memory forgets every payment at restart: use sqlite (the default) "
            "or postgres, or say ledger.accept_data_loss: true, or run with --dev"
        )
    return ledger_problem(config, config.ledger, workers)


def _migrate(config: Config) -> int:
    """Bring the ledger's schema up to date; 0, or 1 after printing why not."""
    from gateway.ledger import schema
    from gateway.ledger.database import LedgerTooNew, LedgerUnavailable
    from gateway.ledger.ledger import open_database

    db = open_database(config.ledger)
    try:
        applied = db.run_now(schema.migrate)
    except (LedgerUnavailable, LedgerTooNew) as exc:
        print(f"ledger error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close_now()
    if applied:
        print(f"ledger ({db.description}): applied migrations {applied}", file=sys.stderr)
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 1
    from gateway.ledger import schema

    code = _migrate(config)
    if code == 0:
        print(f"ledger schema is at version {schema.LATEST}")
    return code


def cmd_wallet_export(args: argparse.Namespace) -> int:
    from gateway.wallet.export import run_export

    return run_export(args.config, args.date)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.path)
    except ConfigError as exc:
        print_config_error(f"invalid config: {args.path}", exc)
        return 1
    routes = ", ".join(f"{op} -> {'/'.join(r.providers)}" for op, r in config.routes.items())
    print(f"ok: {args.path}: {len(config.providers)} providers; {routes}")
    print(f"ledger: {summary.describe_ledger(config)}")
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in summary.catalog_summary(config) + summary.delivery_summary(config):
        print(f"  {line}")
    for note in config.notes:
        print(f"note: {note}")
    if args.against:
        return _print_diff(
            args.against, args.api_key or os.environ.get("GATEWAY_ADMIN_KEY"), dict(config.redacted)
        )
    return 0


def _print_diff(url: str, api_key: str | None, candidate: dict[str, object]) -> int:
    """Compare with the config a running gateway serves at /admin/config (viewer role).

    Exit codes, as diff(1): 0 the same, 1 different (the changes listed), 2 the running
    config could not be read (the reason on stderr).
    """
    from gateway.config.diff import diff_configs

    request = urllib.request.Request(
        url.rstrip("/") + "/admin/config", headers={"X-API-Key": api_key or ""}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            running = json.load(resp)["config"]
    except urllib.error.HTTPError as exc:
        print(f"cannot compare with {url}: {_refusal(exc, api_key)}", file=sys.stderr)
        return 2
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
        reason = getattr(exc, "reason", None) or exc
        print(
            f"cannot compare with {url}: its running config is unreadable ({reason})",
            file=sys.stderr,
        )
        return 2
    lines = diff_configs(running, candidate)
    print(f"against {url}: " + ("no changes" if not lines else f"{len(lines)} change(s)"))
    for line in lines:
        print(f"  {line}")
    return 1 if lines else 0


def _refusal(exc: urllib.error.HTTPError, api_key: str | None) -> str:
    """Why /admin/config refused, and what to do about it, from the gateway's problem."""
    try:
        detail = str(json.loads(exc.read()).get("detail", ""))
    except (ValueError, AttributeError, OSError):
        detail = ""
    if exc.code == 401 and "admin API is closed" in detail:
        # The demo's case: no `clients`, so no key of any role exists to read the config.
        return (
            "its admin API is closed (its config has no clients, as in the demo); give it a "
            "client with the viewer role, e.g. {id: ops, key_env: OPS_KEY, roles: [viewer]}, "
            "and pass that key with --api-key or GATEWAY_ADMIN_KEY"
        )
    if exc.code == 401:
        given = "the key given is unknown" if api_key else "no key given"
        return f"HTTP 401, {given}: pass a viewer key with --api-key or GATEWAY_ADMIN_KEY"
    if exc.code == 403:
        return (
            "HTTP 403, the key has no viewer role: use a key whose client has roles "
            "[viewer] (or operator, admin)"
        )
    return f"HTTP {exc.code} from {exc.url}" + (f": {detail}" if detail else "")


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    logs.configure("WARNING", fixed=args.log_level)
    path = Path(args.config) if args.config else default_config_path()
    return asyncio.run(run_demo(path, port=args.port, sim_base_port=args.sim_base_port))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casino-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="serve the gateway")
    run.add_argument("--config", default=str(default_config_path()), help="providers.yaml")
    run.add_argument("--host", default=None, help="override listen.host")
    run.add_argument("--port", type=int, default=None, help="override listen.port")
    run.add_argument("--log-level", default=None)
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        help="serving processes on one port (default: $GATEWAY_WORKERS or 1)",
    )
    run.add_argument(
        "--dev",
        action="store_true",
        help="allow ledger.backend memory (payments are forgotten at restart)",
    )
    run.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--processes", type=int, default=None, help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate a config file")
    check.add_argument("path")
    check.add_argument(
        "--against",
        metavar="URL",
        help="a running gateway to compare with: exit 0 the same, 1 different, 2 its config "
        "could not be read",
    )
    check.add_argument(
        "--api-key", default=None, help="viewer key for --against (default: $GATEWAY_ADMIN_KEY)"
    )
    check.set_defaults(func=cmd_check)

    ledger = sub.add_parser("ledger", help="manage the ledger (where money state lives)")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    migrate = ledger_sub.add_parser("migrate", help="apply the ledger's schema migrations")
    migrate.add_argument("--config", default=str(default_config_path()), help="providers.yaml")
    migrate.set_defaults(func=cmd_ledger)

    wallet = sub.add_parser("wallet", help="the seamless wallet's transactions")
    wallet_sub = wallet.add_subparsers(dest="wallet_command", required=True)
    export = wallet_sub.add_parser(
        "export", help="one UTC day's totals per provider and currency, as CSV on stdout"
    )
    export.add_argument("--date", type=_date, required=True, help="YYYY-MM-DD (UTC)")
    export.add_argument("--config", default=str(default_config_path()), help="providers.yaml")
    export.set_defaults(func=cmd_wallet_export)

    demo = sub.add_parser("demo", help="start the simulators and the gateway with demo keys")
    demo.add_argument("--config", default=None, help="defaults to config/providers.yaml")
    demo.add_argument(
        "--port",
        type=_port,
        default=None,
        help="the gateway's port (instead of listen.port); the simulators move to the five "
        "ports after it, the casino wallet to the next",
    )
    demo.add_argument(
        "--sim-base-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="the simulators on PORT..PORT+4 (hub88, slotegrator, stripe, adyen, trustly) and "
        "the casino wallet on PORT+5, instead of the config's ports",
    )
    demo.add_argument("--log-level", default=None)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
