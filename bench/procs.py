"""Starting and stopping the run's processes: free ports, each server in a session of its
own, the temporary folder they work in, Debian's tools and the environment that finds the
project's packages."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paths import ROOT
from progress import progress

STOP_TIMEOUT_S = 10.0


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1, all different: the sockets are held open until all are bound."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    return free_ports(1)[0]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: Any

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Procs:
    """Every process the run starts, each in its own session so its whole group can be
    stopped (the gateway with --workers has children of its own)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log_path = self.workdir / f"{name}.log"
        log_file = log_path.open("wb")
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = Proc(name, popen, log_path, log_file)
        self.running.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(5)
        # Whatever is left in the group (a worker that outlived its supervisor) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.log_file.close()
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                progress(f"could not stop {proc.name}: {exc}")


def tool_path(name: str) -> str:
    """A Debian tool: on PATH, or in /usr/sbin, which a non-login root shell may not have."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin") or name


def project_env() -> dict[str, str]:
    """This environment with the repository root on PYTHONPATH: the servers and clients the
    run starts import the project's packages from there."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


@contextlib.contextmanager
def workspace() -> Iterator[tuple[Path, Procs]]:
    workdir = Path(tempfile.mkdtemp(prefix="casino-bench-"))
    procs = Procs(workdir)
    try:
        yield workdir, procs
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short (it is bounded anyway).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
