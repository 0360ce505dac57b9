"""The servers the rows measure: nginx as the upstream and as row B's proxy, the bare
aiohttp proxy of row C, the gateway of rows D to Q (each with its own config and ledger);
each started, then waited for until it answers."""

from __future__ import annotations

import grp
import gzip
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from credentials import Secrets
from http_checks import http_get, wait_until
from paths import (
    BENCH,
    FIXTURES,
    GATEWAY_TEMPLATE,
    GZIPPED_FIXTURES,
    INTENT_PATH,
    NGINX_TEMPLATE,
    ROOT,
)
from procfs import listening_sockets
from procs import Proc, Procs, free_port, free_ports, project_env, tool_path
from settings import Settings


class Servers:
    """Starts each server on a free port of 127.0.0.1 in the run's folder; nginx's two ports
    are chosen once, for the whole run."""

    def __init__(self, settings: Settings, workdir: Path, procs: Procs, keys: Secrets) -> None:
        self.settings = settings
        self.workdir = workdir
        self.procs = procs
        self.keys = keys
        self.upstream_port, self.nginx_proxy_port = free_ports(2)
        self.upstream = f"http://127.0.0.1:{self.upstream_port}"

    def sqlite_ledger(self, name: str) -> dict[str, Any]:
        """A ledger file of this gateway's own in the run's folder (removed with it)."""
        return {"backend": "sqlite", "path": str(self.workdir / f"ledger-{name}.db")}

    def _gateway_config(self, name: str, ledger: dict[str, Any]) -> Path:
        # JSON is YAML: the ledger block goes in as a flow mapping.
        text = (
            GATEWAY_TEMPLATE.read_text()
            .replace("@@UPSTREAM@@", self.upstream)
            .replace("@@LEDGER@@", json.dumps(ledger))
        )
        path = self.workdir / f"{name}.yaml"
        path.write_text(text)
        return path

    def start_nginx(self) -> Proc:
        prefix = self.workdir / "nginx"
        prefix.mkdir()
        # nginx's workers drop root privileges; they must be able to read the fixtures.
        fixtures = prefix / "fixtures"
        fixtures.mkdir()
        for path in FIXTURES.glob("*.json"):
            shutil.copy(path, fixtures / path.name)
        for name in GZIPPED_FIXTURES:
            data = (FIXTURES / name).read_bytes()
            # mtime=0: the same bytes every run.
            (fixtures / f"{name}.gz").write_bytes(gzip.compress(data, 9, mtime=0))
        for path in (self.workdir, prefix, fixtures):
            path.chmod(0o755)
        for path in fixtures.iterdir():
            path.chmod(0o644)
        user = ""
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            user = f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};"
        conf = (
            NGINX_TEMPLATE.read_text()
            .replace("@@USER@@", user)
            .replace("@@WORKERS@@", str(self.settings.nginx_workers))
            .replace("@@PREFIX@@", str(prefix))
            .replace("@@FIXTURES@@", str(fixtures))
            .replace("@@UPSTREAM_PORT@@", str(self.upstream_port))
            .replace("@@PROXY_PORT@@", str(self.nginx_proxy_port))
        )
        conf_path = prefix / "nginx.conf"
        conf_path.write_text(conf)
        argv = [tool_path("nginx"), "-p", str(prefix), "-c", str(conf_path)]
        proc = self.procs.start("nginx", argv)
        for port in (self.upstream_port, self.nginx_proxy_port):
            url = f"http://127.0.0.1:{port}{INTENT_PATH}"

            def serving(url: str = url) -> bool:
                return http_get(url).status == 200

            wait_until(f"nginx on port {port}", serving, proc)
        return proc

    def start_proxy(self) -> tuple[Proc, str]:
        port = free_port()
        argv = [sys.executable, str(BENCH / "proxy.py"), "--upstream", self.upstream]
        proc = self.procs.start("proxy", [*argv, "--port", str(port)], project_env())
        url = f"http://127.0.0.1:{port}"
        wait_until("bench/proxy.py", lambda: http_get(url + INTENT_PATH).status == 200, proc)
        return proc, url

    def start_gateway(
        self,
        name: str,
        workers: int,
        ledger: dict[str, Any] | None = None,
        log_level: str | None = None,
        env: dict[str, str] | None = None,
    ) -> tuple[Proc, str]:
        """`ledger`: the config's ledger block (a SQLite file of its own by default); `env`:
        more variables for it (the PostgreSQL URL that `url_env` names). As installed: the
        config's log level (access log on) unless `log_level` is given; the log goes to the
        row's log file."""
        port = free_port()
        config = self._gateway_config(name, ledger or self.sqlite_ledger(name))
        env = {**project_env(), **self.keys.env(), **(env or {})}
        # The run decides the process count, metrics mode and logging, not the caller's shell.
        env.pop("GATEWAY_WORKERS", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.pop("GATEWAY_LOG_LEVEL", None)
        argv = [
            sys.executable, "-m", "gateway", "run",
            "--config", str(config),
            "--port", str(port),
        ]  # fmt: skip
        if log_level is not None:
            argv += ["--log-level", log_level]
        if workers != 1:
            argv += ["--workers", str(workers)]
        proc = self.procs.start(name, argv, env)
        url = f"http://127.0.0.1:{port}"
        wait_until(f"{name} /readyz", lambda: http_get(url + "/readyz").status == 200, proc)
        if workers > 1:
            wait_until(
                f"{workers} {name} workers listening",
                lambda: listening_sockets(port) >= workers,
                proc,
            )
        return proc, url


def workers_flag_missing() -> str | None:
    """Why `casino-gateway run --workers N` cannot be used, or None when it can."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=project_env(),
        timeout=30,
    )
    if done.returncode != 0 or "--workers" not in done.stdout:
        return "`casino-gateway run` has no --workers option"
    return None
