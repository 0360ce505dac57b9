"""The `casino-gateway` command: run, check, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from gateway.config.errors import ConfigError
from gateway.config.load import load_config
from gateway.config.model import Config
from gateway.http.server import maybe_uvloop, serve
from gateway.obs import logs

log = logging.getLogger("gateway")


def default_config_path() -> Path:
    """`config/providers.yaml` of the current folder, else the copy shipped in the package."""
    local = Path("config/providers.yaml")
    if local.is_file():
        return local
    return Path(str(resources.files("gateway").joinpath("data/providers.yaml")))


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 1
    workers = (
        args.workers
        if args.workers is not None
        else int(os.environ.get("GATEWAY_WORKERS", "1") or 1)
    )
    if workers > 1 and config.storage.backend == "memory" and "payments.create" in config.routes:
        # Each process would keep its own idempotency records: a double-click landing on two
        # processes could be charged twice.
        print(
            "config error: --workers above 1 with a payments.create route needs "
            "storage.backend: redis, so every process shares the idempotency records",
            file=sys.stderr,
        )
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
        return supervise(passed, workers)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not args.reuse_port:
        # One process on a metrics volume that survived a restart: drop the old values.
        from gateway.http.workers import prepare_metrics_dir

        prepare_metrics_dir()
    logs.configure(config.log_level, fixed=args.log_level)
    maybe_uvloop()
    asyncio.run(
        serve(
            config,
            host=args.host,
            port=args.port,
            config_path=args.config,
            reuse_port=args.reuse_port,
        )
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.path)
    except ConfigError as exc:
        print(f"invalid config: {args.path}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    routes = ", ".join(f"{op} -> {'/'.join(r.providers)}" for op, r in config.routes.items())
    print(f"ok: {args.path}: {len(config.providers)} providers; {routes}")
    for line in catalog_summary(config):
        print(f"  {line}")
    for note in config.notes:
        print(f"note: {note}")
    if args.against:
        return _print_diff(
            args.against, args.api_key or os.environ.get("GATEWAY_ADMIN_KEY"), dict(config.redacted)
        )
    return 0


def catalog_summary(config: Config) -> list[str]:
    """How each aggregator behind a games route keeps its catalog, one line each."""
    named = dict.fromkeys(
        name for op, route in config.routes.items() if op.startswith("games.")
        for name in route.providers
    )
    lines = []
    for name in named:
        provider = config.providers.get(name)
        if provider is None:
            continue
        line = (
            f"catalog {name}: refreshed every {provider.catalog.refresh_s:g} s (jittered), "
            f"kept {provider.catalog.max_stale_s:g} s while refreshes fail"
        )
        if provider.blocked_countries:
            line += f"; offers blocked in {', '.join(sorted(provider.blocked_countries))}"
        lines.append(line)
    for studio, countries in sorted(config.studio_blocked_countries.items()):
        lines.append(f"studio {studio}: games blocked in {', '.join(sorted(countries))}")
    return lines


def _print_diff(url: str, api_key: str | None, candidate: dict[str, object]) -> int:
    """Compare with the config a running gateway serves at /admin/config (viewer role)."""
    import json
    import urllib.error
    import urllib.request

    from gateway.config.diff import diff_configs

    request = urllib.request.Request(
        url.rstrip("/") + "/admin/config", headers={"X-API-Key": api_key or ""}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            running = json.load(resp)["config"]
    except urllib.error.HTTPError as exc:
        print(
            f"cannot read the running config: HTTP {exc.code} from {url} "
            "(give a viewer key with --api-key or GATEWAY_ADMIN_KEY)",
            file=sys.stderr,
        )
        return 2
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        print(f"cannot read the running config from {url}: {exc}", file=sys.stderr)
        return 2
    lines = diff_configs(running, candidate)
    print(f"against {url}: " + ("no changes" if not lines else f"{len(lines)} change(s)"))
    for line in lines:
        print(f"  {line}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    logs.configure("WARNING", fixed=args.log_level)
    path = Path(args.config) if args.config else default_config_path()
    return asyncio.run(run_demo(path, port=args.port))


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
    run.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate a config file")
    check.add_argument("path")
    check.add_argument("--against", metavar="URL", help="a running gateway to diff against")
    check.add_argument(
        "--api-key", default=None, help="viewer key for --against (default: $GATEWAY_ADMIN_KEY)"
    )
    check.set_defaults(func=cmd_check)

    demo = sub.add_parser("demo", help="start the simulators and the gateway with demo keys")
    demo.add_argument("--config", default=None, help="defaults to config/providers.yaml")
    demo.add_argument("--port", type=int, default=None, help="override listen.port")
    demo.add_argument("--log-level", default=None)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
