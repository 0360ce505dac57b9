"""The deployment files agree with the code.

No container engine runs here, so the Dockerfile, .dockerignore and deploy/ (Kubernetes
manifests, compose file, nginx and Prometheus configs, the compose config variant) are parsed
and checked against what the code defines: the CLI's flags, the app's routes, the config
schema and the secrets a config names, the ledger's settings, the simulators' ports and
credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import posixpath
import re
import shlex
import string
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gateway.cli import build_parser, cmd_ledger
from gateway.config.errors import ConfigError
from gateway.config.load import parse_config
from gateway.config.model import Config, LedgerSettings
from gateway.http.app import create_app
from simulators import __main__ as sim_cli
from simulators.stack import DEFAULT_PORTS, DemoSecrets, make_secrets

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_CONFIG = DEPLOY / "providers.compose.yaml"
NGINX = DEPLOY / "nginx.conf"
PROMETHEUS = DEPLOY / "prometheus.yml"

# PostgreSQL's default max_connections (100) less its superuser_reserved_connections (3): what
# the gateways may use at most. "Well under" it: a quarter stays free for migrations, psql,
# monitoring and the connections a managed service keeps for itself.
PG_USABLE_CONNECTIONS = 97
PG_CONNECTION_BUDGET = PG_USABLE_CONNECTIONS * 3 // 4
POSTGRES_SCHEMES = ("postgresql", "postgres")


# ---- shared helpers ------------------------------------------------------------------------------


@cache
def demo() -> DemoSecrets:
    return make_secrets()  # one RSA key pair for the module: key generation is slow


def demo_env() -> dict[str, str]:
    """Valid-looking values for the variables the configs name (a real Hub88 PEM included)."""
    return demo().env()


def dummy_env(names: Iterable[str]) -> dict[str, str]:
    """A value for each name, and only those names: a config parses only if they suffice."""
    known = demo_env()
    # Padded: some secrets have a minimum length (an HS256 player-token secret, 32 bytes).
    return {name: known.get(name, f"dummy-{name.lower()}".ljust(40, "x")) for name in names}


def env_names(doc: Any) -> set[str]:
    """Every variable a config names through a `*_env` key, at any depth."""
    if isinstance(doc, dict):
        out = set()
        for key, value in doc.items():
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                out.add(value)
            else:
                out |= env_names(value)
        return out
    if isinstance(doc, list):
        return set().union(*map(env_names, doc)) if doc else set()
    return set()


def load_config(text: str, env: Mapping[str, str], source: str) -> Config:
    try:
        return parse_config(text.encode(), source=source, env=env)
    except ConfigError as exc:
        pytest.fail(f"{source} is not a valid config with the environment given:\n{exc}")


def main_config_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "config" / "providers.yaml").read_text())
    return doc


def check_deploy_variant(doc: dict[str, Any], config: Config, source: str) -> None:
    """What every container config must hold, whatever its providers' URLs."""
    assert config.listen_host == "0.0.0.0", f"{source}: a container must listen on 0.0.0.0"
    assert config.listen_port == image_port(), f"{source}: listen.port is not the image's port"
    # Money state: one PostgreSQL ledger for every replica, its URL (a password) from a secret.
    assert config.ledger.backend == "postgres", f"{source}: replicas must share one ledger"
    url_env = doc.get("ledger", {}).get("url_env")
    assert url_env, f"{source}: ledger.url_env must name the variable holding the URL"
    assert config.ledger.url, f"{source}: ledger.url_env gave no URL"
    # What may be lost (rate limits, cache, breakers): shared in Redis.
    assert config.storage.backend == "redis", f"{source}: replicas share rate limits in Redis"
    assert config.storage.url and urlsplit(config.storage.url).scheme == "redis"
    main = main_config_doc()
    assert doc["routes"] == main["routes"], f"{source}: routes drifted from config/providers.yaml"
    assert {n: p["adapter"] for n, p in doc["providers"].items()} == {
        n: p["adapter"] for n, p in main["providers"].items()
    }, f"{source}: providers drifted from config/providers.yaml"
    assert env_names(main) <= env_names(doc)


# ---- Dockerfile ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


@cache
def dockerfile() -> tuple[Instruction, ...]:
    """Instructions with continuation lines joined and comment lines dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        assert stage >= 0, f"instruction before FROM: {line}"
        out.append(Instruction(stage, keyword, args.strip()))
    assert not pending, "the Dockerfile ends in a line continuation"
    return tuple(out)


def stage_count() -> int:
    return max(i.stage for i in dockerfile()) + 1


def final(keyword: str) -> list[str]:
    last = stage_count() - 1
    return [i.args for i in dockerfile() if i.stage == last and i.keyword == keyword]


def stage_names() -> dict[str, int]:
    names = {}
    for i in dockerfile():
        if i.keyword == "FROM":
            parts = i.args.split()
            if len(parts) == 3 and parts[1].upper() == "AS":
                names[parts[2]] = i.stage
    return names


@cache
def image_env() -> dict[str, str]:
    """ENV of the final stage, `${VAR}` references to earlier ENV values resolved."""
    env: dict[str, str] = {}
    for args in final("ENV"):
        for item in shlex.split(args):
            name, sep, value = item.partition("=")
            assert sep, f"ENV {args}: use the NAME=value form"
            env[name] = string.Template(value).safe_substitute(env)
    return env


def image_port() -> int:
    ports = [int(p.split("/")[0]) for args in final("EXPOSE") for p in args.split()]
    assert len(ports) == 1, f"the image exposes {ports}, expected one port"
    return ports[0]


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"use the exec (JSON) form: {args}"
    value: list[str] = json.loads(args)
    return value


def shell_command_argv(command: list[str], env: Mapping[str, str]) -> list[str]:
    """`/bin/sh -c "exec casino-gateway ..."` -> the argv the shell execs, variables expanded."""
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 3, command
    script = command[2]
    assert script.startswith("exec "), f"the shell must exec the server (PID 1): {script}"
    argv = shlex.split(script)[1:]
    try:
        return [string.Template(arg).substitute(env) for arg in argv]
    except KeyError as exc:
        pytest.fail(f"{script}: {exc} is not set in the container's environment")


def image_command() -> list[str]:
    cmds = final("CMD")
    assert len(cmds) == 1, "the final stage needs exactly one CMD"
    assert not final("ENTRYPOINT"), "CMD alone, so a compose/k8s command replaces it cleanly"
    return exec_form(cmds[0])


def parse_gateway_argv(argv: list[str]) -> Any:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv[0] in scripts and scripts[argv[0]] == "gateway.cli:main", argv
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(
            f"`{shlex.join(argv)}` is not a valid gateway command: {stderr.getvalue().strip()}"
        )


def container_args() -> Any:
    return parse_gateway_argv(shell_command_argv(image_command(), image_env()))


def config_path() -> str:
    path: str = container_args().config
    return path


def test_dockerfile_builds_on_slim_python_in_stages() -> None:
    bases = [i.args.split()[0] for i in dockerfile() if i.keyword == "FROM"]
    assert bases and all(b == "python:3.11-slim" for b in bases), bases
    assert stage_count() >= 2, "multi-stage: build tools and caches stay out of the image"
    build = stage_names().get("build")
    assert build is not None and build < stage_count() - 1
    runs = [i.args for i in dockerfile() if i.stage == build and i.keyword == "RUN"]
    installs = [r for r in runs if re.search(r"\bpip install\b", r)]
    assert installs and any(re.search(r"pip install (--\S+ )*\.(\s|$)", r) for r in installs)
    assert not any("[test]" in r or ".[" in r for r in installs), "no test extra in the image"
    copies = [i.args.split() for i in dockerfile() if i.stage == build and i.keyword == "COPY"]
    sources = {src.rstrip("/") for args in copies for src in args[:-1] if not src.startswith("-")}
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for pattern in packages:
        assert pattern.rstrip("*") in sources, f"the build does not copy package {pattern}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pyproject.get("readme", "README.md") in sources, "pip install . needs the readme"
    build_name = next(name for name, index in stage_names().items() if index == build)
    assert any(f"--from={build_name}" in c and "/opt/venv" in c for c in final("COPY"))


def test_uvloop_is_installed_by_default_on_linux_and_in_the_image() -> None:
    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (uvloop,) = [Requirement(d) for d in deps if Requirement(d).name == "uvloop"]
    assert uvloop.marker is not None
    for platform, wanted in (("linux", True), ("darwin", True), ("win32", False)):
        env = {"sys_platform": platform, "platform_python_implementation": "CPython"}
        assert uvloop.marker.evaluate(env) is wanted, platform
    build = stage_names()["build"]
    runs = " ".join(i.args for i in dockerfile() if i.stage == build and i.keyword == "RUN")
    assert 'python -c "import uvloop"' in runs


def test_dockerfile_runtime_settings() -> None:
    users = final("USER")
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users
    assert user.isdigit(), "a numeric USER lets Kubernetes check runAsNonRoot"
    assert image_port() == 8080
    assert final("STOPSIGNAL") == ["SIGTERM"]
    env = image_env()
    assert env["GATEWAY_WORKERS"] == "2"
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert "/opt/venv/bin" in env["PATH"].split(":")[0]
    checks = final("HEALTHCHECK")
    assert len(checks) == 1
    assert f"127.0.0.1:{image_port()}/healthz" in checks[0]
    assert "curl" not in checks[0] and "wget" not in checks[0], "slim images have neither"


def test_container_command_is_the_gateway_run_command() -> None:
    argv = shell_command_argv(image_command(), image_env())
    assert argv[:2] == ["casino-gateway", "run"]
    args = container_args()
    assert args.command == "run"
    assert args.config == "/etc/casino-gateway/providers.yaml"
    assert getattr(args, "workers", None) == int(image_env()["GATEWAY_WORKERS"]), (
        "casino-gateway run must take --workers"
    )
    assert "${GATEWAY_WORKERS}" in image_command()[2]


def image_user_names(uid: str) -> set[str]:
    """The uid and the name a `useradd --uid` of the final stage gives it."""
    names = {uid}
    for run in final("RUN"):
        for part in re.split(r"&&|;", run):
            words = shlex.split(part)
            uid_at = words.index("--uid") + 1 if "--uid" in words else len(words)
            if words[:1] == ["useradd"] and words[uid_at : uid_at + 1] == [uid]:
                names.add(words[-1])
    return names


def made_writable_for(run: str, path: str, owners: set[str]) -> bool:
    """Does this RUN create or chown `path` for one of `owners`, writable by its owner?"""
    for part in re.split(r"&&|;", run):
        words = shlex.split(part)
        if words[:1] == ["install"] and "-d" in words:
            owner, mode, paths = None, None, []
            i = 1
            while i < len(words):
                if words[i] in ("-o", "-g", "-m"):
                    if words[i] == "-o":
                        owner = words[i + 1]
                    elif words[i] == "-m":
                        mode = words[i + 1]
                    i += 2
                    continue
                if not words[i].startswith("-"):
                    paths.append(words[i])
                i += 1
            writable = mode is None or bool(int(mode, 8) & 0o200)
            if path in paths and owner in owners and writable:
                return True
        if words[:1] == ["chown"]:
            operands = [w for w in words[1:] if not w.startswith("-")]
            if operands and operands[0].split(":")[0] in owners and path in operands[1:]:
                return True
    return False


def test_dockerfile_workdir_is_the_users_volume() -> None:
    workdirs = final("WORKDIR")
    assert workdirs, "the runtime stage needs a WORKDIR: the default SQLite ledger is under it"
    workdir = posixpath.normpath(workdirs[-1])
    assert posixpath.isabs(workdir), workdir
    # The default ledger file (a config without a `ledger` block) lands in it.
    default_path = LedgerSettings().path
    assert not posixpath.isabs(default_path)
    assert posixpath.join(workdir, default_path).startswith(workdir + "/")
    # Owned by the user the image runs as, made so before VOLUME freezes its content.
    last = stage_count() - 1
    stage = [i for i in dockerfile() if i.stage == last]
    owners = image_user_names(final("USER")[-1].split(":")[0])
    made = [
        n
        for n, i in enumerate(stage)
        if i.keyword == "RUN" and made_writable_for(i.args, workdir, owners)
    ]
    assert made, f"no RUN of the runtime stage makes {workdir} writable by {sorted(owners)}"
    # A volume: writable under the read-only root filesystem of deploy/.
    volumes = {}
    for n, i in enumerate(stage):
        if i.keyword == "VOLUME":
            paths = exec_form(i.args) if i.args.startswith("[") else i.args.split()
            volumes.update({posixpath.normpath(v): n for v in paths})
    assert workdir in volumes, f"declare VOLUME {workdir}"
    assert made[0] < volumes[workdir], "changes after VOLUME to its folder are discarded"


# ---- requirements.lock ---------------------------------------------------------------------------

LOCK = ROOT / "requirements.lock"
# The image's platform, for the environment markers of pyproject's dependencies.
IMAGE_MARKERS = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
PYPROJECT_VIA = "casino-gateway (pyproject.toml)"


@dataclass(frozen=True)
class Pin:
    version: str
    via: frozenset[str]


def lock_pins() -> dict[str, Pin]:
    """Each `name==version` of requirements.lock and what its `# via` comments name."""
    pins: dict[str, Pin] = {}
    name = None
    for line in LOCK.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            name = canonicalize_name(match[1])
            assert name not in pins, f"{name} is pinned twice"
            pins[name] = Pin(match[2], frozenset())
            continue
        via = re.fullmatch(r"\s+#\s+(?:via\s+)?(\S.*?)\s*", line)
        if name is not None and via and via[1] != "via":
            pins[name] = Pin(pins[name].version, pins[name].via | {via[1]})
    return pins


def runtime_requirements() -> dict[str, Requirement]:
    """pyproject's dependencies and its `speed` extra, as installed on the image's platform."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["speed"]]
    out = {}
    for text in wanted:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({**IMAGE_MARKERS, "extra": ""}):
            out[canonicalize_name(req.name)] = req
    return out


def test_the_lock_pins_exactly_the_runtime_dependencies_and_uvloop() -> None:
    regenerate = next(
        (ln.strip("# ") for ln in LOCK.read_text().splitlines() if "compile" in ln), "?"
    )
    pins, wanted = lock_pins(), runtime_requirements()
    missing = sorted(wanted.keys() - pins.keys())
    assert not missing, f"requirements.lock lacks {missing}; regenerate it: {regenerate}"
    for name, req in wanted.items():
        assert req.specifier.contains(pins[name].version, prereleases=True), (
            f"{name}=={pins[name].version} is not {req.specifier}; regenerate: {regenerate}"
        )
    direct = {name for name, pin in pins.items() if PYPROJECT_VIA in pin.via}
    assert direct == wanted.keys(), (
        f"pinned as pyproject's but not in it: {sorted(direct - wanted.keys())}; "
        f"regenerate: {regenerate}"
    )
    # Everything else is there because a pinned package needs it.
    for name, pin in pins.items():
        assert pin.via, f"{name}: no `# via` comment says why it is pinned"
        others = {canonicalize_name(v) for v in pin.via if v != PYPROJECT_VIA}
        assert others <= pins.keys() and (others or name in direct), (name, sorted(pin.via))
    assert "uvloop" in pins, "the image runs on uvloop (the `speed` extra)"
    assert "pytest" not in pins, "no test dependency in the image"


def test_the_image_installs_the_lock_and_nothing_else() -> None:
    build = stage_names()["build"]
    copied = [i.args.split() for i in dockerfile() if i.stage == build and i.keyword == "COPY"]
    assert any(LOCK.name in args[:-1] for args in copied), "the build must copy the lock"
    steps = [
        step.strip()
        for i in dockerfile()
        if i.stage == build and i.keyword == "RUN"
        for step in i.args.split("&&")
    ]
    installs = [shlex.split(step) for step in steps if re.search(r"\bpip install\b", step)]
    from_lock = [w for w in installs if "-r" in w and w[w.index("-r") + 1] == LOCK.name]
    assert len(from_lock) == 1, "one pip install -r requirements.lock"
    assert {"--no-deps", "--require-hashes"} <= set(from_lock[0]), from_lock[0]
    package = [w for w in installs if w[-1] == "."]
    assert len(package) == 1 and "--no-deps" in package[0], "the package adds no dependency"
    assert steps.index(shlex.join(package[0])) > steps.index(shlex.join(from_lock[0]))
    assert any(re.search(r"\bpip check$", step) for step in steps), "pip check the result"


# ---- .dockerignore -------------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or a parent folder decides."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negate, _glob_regex(pattern)))
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        "tests/unit/test_deploy_files.py",
        "tests/conftest.py",
        ".git/HEAD",
        "bench/run.py",
        "bench/results/latest.json",
        ".benchmarks/Linux-CPython-3.11/0001.json",
        "deploy/.env",
        ".env",
        "gateway/__pycache__/cli.cpython-311.pyc",
        ".venv/bin/python",
        ".mypy_cache/3.11/gateway/cli.data.json",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert dockerignored(path), f"{path} would be sent to the Docker build"


def test_dockerignore_keeps_what_the_build_copies() -> None:
    copies = [
        i.args.split() for i in dockerfile() if i.keyword == "COPY" and "--from" not in i.args
    ]
    sources = [src.rstrip("/") for args in copies for src in args[:-1]]
    for src in sources:
        files = (
            [src]
            if (ROOT / src).is_file()
            else [str(p.relative_to(ROOT)) for p in (ROOT / src).rglob("*") if p.is_file()]
        )
        kept = [f for f in files if "__pycache__" not in f and not dockerignored(f)]
        assert kept, f"COPY {src}: .dockerignore drops it"
    for needed in ("gateway/schemas/config.schema.json", "gateway/data/providers.yaml"):
        assert not dockerignored(needed), needed


# ---- the app serves what probes and scrapes ask for ----------------------------------------------


def app_get_paths(config: Config) -> set[str]:
    app = create_app(config)
    return {
        route.resource.canonical
        for route in app.router.routes()
        if route.method == "GET" and route.resource is not None
    }


# ---- Kubernetes ----------------------------------------------------------------------------------


@cache
def k8s_docs() -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def k8s_one(kind: str) -> dict[str, Any]:
    docs = k8s_docs().get(kind, [])
    assert len(docs) == 1, f"expected one {kind} in deploy/k8s, found {len(docs)}"
    return docs[0]


def gateway_container() -> dict[str, Any]:
    containers = k8s_one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def container_port(port: int | str) -> int:
    """A port number, or a container port's name, as the number."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in gateway_container()["ports"] if "name" in p}
    assert port in named, f"no container port named {port!r}"
    return int(named[port])


def container_env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in gateway_container().get("env", []) if "value" in e}


def init_containers() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = k8s_one("Deployment")["spec"]["template"]["spec"].get(
        "initContainers", []
    )
    return found


def k8s_argv(container: dict[str, Any]) -> list[str]:
    """What a container runs: its command (or the image's) and args, any shell expanded."""
    command = container.get("command", image_command()) + container.get("args", [])
    env = {**image_env()}
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    if command[:2] == ["/bin/sh", "-c"]:
        return shell_command_argv(command, env)
    return list(command)


def secret_keys() -> set[str]:
    secret = k8s_one("Secret")
    return set(secret.get("stringData", {})) | set(secret.get("data", {}))


def k8s_provided_env(container: dict[str, Any] | None = None) -> set[str]:
    """Variables a container (the gateway's) gets: its `env`, plus every key of the Secret."""
    container = container or gateway_container()
    secret_name = k8s_one("Secret")["metadata"]["name"]
    refs = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
    assert secret_name in refs, "the container must take its credentials from the Secret"
    return {e["name"] for e in container.get("env", [])} | secret_keys()


def k8s_config_text() -> str:
    data = k8s_one("ConfigMap")["data"]
    key = posixpath.basename(config_path())
    assert key in data, f"the ConfigMap has no {key!r} key"
    text: str = data[key]
    return text


def test_every_deploy_yaml_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert len(files) >= 10
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), path


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk
    kinds = set(k8s_docs())
    expected = {"Deployment", "ConfigMap", "Secret", "Service"}
    assert {*expected, "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds


def test_k8s_deployment() -> None:
    deployment = k8s_one("Deployment")
    assert deployment["apiVersion"] == "apps/v1"
    spec = deployment["spec"]
    assert "replicas" not in spec, "the HorizontalPodAutoscaler owns the replica count"
    selector = spec["selector"]["matchLabels"]
    pod = spec["template"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    container = gateway_container()

    assert [p["containerPort"] for p in container["ports"]] == [image_port()]
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz"
    assert liveness["httpGet"]["path"] == "/healthz"
    for probe in (readiness, liveness, container.get("startupProbe", liveness)):
        assert container_port(probe["httpGet"]["port"]) == image_port()

    # The command: the image's own, and it parses with the container's env.
    assert container.get("command", image_command()) == image_command()
    env = {**image_env(), **container_env()}
    args = parse_gateway_argv(shell_command_argv(container.get("command", image_command()), env))
    assert args.workers == int(env["GATEWAY_WORKERS"]) >= 1

    # Config: the ConfigMap mounted as a folder where the command reads it.
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config_dir = posixpath.dirname(config_path())
    assert config_dir in mounts, f"nothing mounted at {config_dir}"
    assert "subPath" not in mounts[config_dir], "subPath mounts never see ConfigMap updates"
    config_volume = volumes[mounts[config_dir]["name"]]
    assert config_volume["configMap"]["name"] == k8s_one("ConfigMap")["metadata"]["name"]

    # Metrics of the worker processes: a writable emptyDir at PROMETHEUS_MULTIPROC_DIR.
    multiproc = env["PROMETHEUS_MULTIPROC_DIR"]
    assert multiproc in mounts and "emptyDir" in volumes[mounts[multiproc]["name"]]
    assert not mounts[multiproc].get("readOnly", False)

    # Non-root, as the image's user.
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert str(security["runAsUser"]) == final("USER")[-1].split(":")[0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_k8s_configmap_is_a_valid_config_with_the_secret() -> None:
    text = k8s_config_text()
    doc = yaml.safe_load(text)
    names = env_names(doc)
    provided = k8s_provided_env()
    assert names <= provided, f"the Secret does not provide {sorted(names - provided)}"
    config = load_config(text, dummy_env(provided), "deploy/k8s/configmap.yaml")
    check_deploy_variant(doc, config, "deploy/k8s/configmap.yaml")
    # The probes and the scrape ask the app for paths it serves.
    paths = app_get_paths(config)
    container = gateway_container()
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in container:
            assert container[probe]["httpGet"]["path"] in paths, probe
    annotations = k8s_one("Deployment")["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/path", "/metrics") in paths
    assert int(annotations.get("prometheus.io/port", image_port())) == image_port()
    # Rate-limit shares while Redis is down: one per gateway process at the HPA's minimum.
    hpa_min = k8s_one("HorizontalPodAutoscaler")["spec"]["minReplicas"]
    workers = int(container_env().get("GATEWAY_WORKERS", image_env()["GATEWAY_WORKERS"]))
    assert config.storage.replicas == hpa_min * workers
    # The ledger's URL holds a password: from the Secret, never a plain `env` value.
    url_env = doc["ledger"]["url_env"]
    assert url_env in secret_keys(), f"{url_env} must be a key of the Secret"
    assert url_env not in container_env(), f"{url_env} must not be a plain env value"


def max_surge(pods: int) -> int:
    """Extra pods a rolling update may start (Kubernetes rounds a percentage up)."""
    strategy = k8s_one("Deployment")["spec"].get("strategy", {})
    surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    if isinstance(surge, str) and surge.endswith("%"):
        return -(-pods * int(surge[:-1]) // 100)
    return int(surge)


def test_k8s_ledger_connections_fit_postgres() -> None:
    """Every pod the HPA may run, a rollout's surge included, holds up to
    GATEWAY_WORKERS x ledger.pool_size connections to the one PostgreSQL."""
    config = load_config(k8s_config_text(), dummy_env(k8s_provided_env()), "configmap")
    hpa_max = k8s_one("HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    pods = hpa_max + max_surge(hpa_max)
    workers = int(container_env().get("GATEWAY_WORKERS", image_env()["GATEWAY_WORKERS"]))
    connections = pods * workers * config.ledger.pool_size
    assert connections <= PG_CONNECTION_BUDGET, (
        f"{pods} pods x {workers} workers x pool_size {config.ledger.pool_size} = "
        f"{connections} connections; keep it at {PG_CONNECTION_BUDGET} or less "
        f"(PostgreSQL lets ~{PG_USABLE_CONNECTIONS} in by default)"
    )


def test_k8s_init_container_migrates_the_ledger() -> None:
    inits = init_containers()
    assert len(inits) == 1, "one initContainer: the ledger migration"
    init = inits[0]
    assert "restartPolicy" not in init, "a plain initContainer, not a sidecar: it must finish"
    # The CLI's own command, as its parser reads it.
    args = parse_gateway_argv(k8s_argv(init))
    assert (args.command, getattr(args, "ledger_command", None)) == ("ledger", "migrate")
    assert args.func is cmd_ledger
    assert args.config == config_path(), "the config the gateway container reads"
    # The gateway's image, config mount and credentials.
    gateway = gateway_container()
    assert init["image"] == gateway["image"]
    config_dir = posixpath.dirname(config_path())
    init_mounts = {m["mountPath"]: m for m in init.get("volumeMounts", [])}
    gateway_mounts = {m["mountPath"]: m for m in gateway["volumeMounts"]}
    assert config_dir in init_mounts, f"nothing mounted at {config_dir}"
    assert init_mounts[config_dir]["name"] == gateway_mounts[config_dir]["name"]
    assert "subPath" not in init_mounts[config_dir]
    text = k8s_config_text()
    names = env_names(yaml.safe_load(text))
    provided = k8s_provided_env(init)
    assert names <= provided, f"the migration lacks {sorted(names - provided)}"
    config = load_config(text, dummy_env(provided), "deploy/k8s/configmap.yaml (migrate)")
    assert config.ledger.backend == "postgres"
    security = init.get("securityContext", {})
    assert security.get("allowPrivilegeEscalation") is False
    assert security.get("readOnlyRootFilesystem") is True


def test_k8s_secret_holds_placeholders_only() -> None:
    secret = k8s_one("Secret")
    assert secret["type"] == "Opaque"
    assert "data" not in secret, "base64 data would hide what is committed"
    values = secret["stringData"]
    for name, value in values.items():
        assert value.startswith("REPLACE_ME"), f"{name} must be a marked placeholder"
    # With the placeholders as they are, the gateway refuses to start.
    with pytest.raises(ConfigError, match="hub88"):
        parse_config(k8s_config_text().encode(), env=values)


def test_k8s_service_targets_the_gateway_port() -> None:
    service = k8s_one("Service")
    pod_labels = k8s_one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    targets = [container_port(p.get("targetPort", p["port"])) for p in service["spec"]["ports"]]
    assert targets == [image_port()]


def test_k8s_hpa_and_pdb() -> None:
    deployment = k8s_one("Deployment")
    hpa = k8s_one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    assert 2 <= low <= high
    cpu_requested = "cpu" in gateway_container()["resources"]["requests"]
    assert cpu_requested, "CPU utilization targets need a CPU request"

    pdb = k8s_one("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] < low, "a drain must be able to evict a pod"


# ---- compose -------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v) for k, v in env.items()}


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of each bind mount (paths relative to deploy/)."""
    out = {}
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            out[target] = (DEPLOY / source).resolve()
    return out


def gateway_services() -> dict[str, dict[str, Any]]:
    found = {
        name: svc
        for name, svc in services().items()
        if bind_mounts(svc).get(config_path()) == COMPOSE_CONFIG.resolve()
    }
    assert len(found) == 2, f"expected two gateway replicas, found {sorted(found)}"
    return found


def simulators_service() -> tuple[str, dict[str, Any]]:
    found = [
        (name, svc)
        for name, svc in services().items()
        if svc.get("command", [])[:3] == ["python", "-m", "simulators"]
    ]
    assert len(found) == 1, "expected one `python -m simulators` service"
    return found[0]


def service_with_image(prefix: str) -> str:
    found = [n for n, s in services().items() if str(s.get("image", "")).startswith(prefix)]
    assert len(found) == 1, f"expected one {prefix} service, found {found}"
    return found[0]


_COMPOSE_VAR = re.compile(
    r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)


def compose_refs(value: str) -> dict[str, str]:
    """Variables a compose value interpolates -> their operator ("", ":-", "-", ":?", "?")."""
    return {m[2] or m[5]: m[3] or "" for m in _COMPOSE_VAR.finditer(value) if not m[1]}


def compose_required_vars() -> set[str]:
    """Every variable compose.yaml refuses to start without (`${NAME:?...}`): deploy/.env's."""

    def walk(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set().union(set(), *map(walk, node.values()))
        if isinstance(node, list):
            return set().union(set(), *map(walk, node))
        if isinstance(node, str):
            return {n for n, op in compose_refs(node).items() if op in (":?", "?")}
        return set()

    return walk(compose())


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """`value` as compose reads it, with `env` as deploy/.env."""

    def one(m: re.Match[str]) -> str:
        if m[1]:
            return "$"
        name, op, arg = m[2] or m[5], m[3] or "", m[4] or ""
        got = env.get(name)
        if op in (":?", "?"):
            if got is None or (op == ":?" and not got):
                pytest.fail(f"compose refuses to start without {name}: {arg}")
            return got
        if op == ":-":
            return got or arg
        if op == "-":
            return arg if got is None else got
        return got or ""

    return _COMPOSE_VAR.sub(one, value)


def resolved_env(service: dict[str, Any], dotenv: Mapping[str, str]) -> dict[str, str]:
    """A service's environment as its container sees it, `dotenv` being deploy/.env."""
    return {k: interpolate(v, dotenv) for k, v in service_env(service).items()}


def compose_secrets(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host file of each compose secret a service gets (relative to deploy/)."""
    declared = compose().get("secrets") or {}
    out = {}
    for item in service.get("secrets") or []:
        name = item if isinstance(item, str) else item["source"]
        assert name in declared, f"secret {name} is not declared at the top level"
        target = item.get("target", name) if isinstance(item, dict) else name
        out[posixpath.join("/run/secrets", target)] = (DEPLOY / declared[name]["file"]).resolve()
    return out


def gives(env: Mapping[str, str], var: str) -> bool:
    """Does `env` give `var`, itself or as `var`_FILE (a file holding it)?"""
    return var in env or f"{var}_FILE" in env


@pytest.fixture(scope="module")
def print_env_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `python -m simulators --print-env --out DIR` writes (the Hub88 keys included)."""
    folder = tmp_path_factory.mktemp("print-env")
    sim_cli.write_env(folder, demo(), {name: f"dummy-{name}" for name in sim_cli.EXTRA_GATEWAY_ENV})
    return folder


def compose_container_env(
    service: dict[str, Any], dotenv: Mapping[str, str], folder: Path
) -> dict[str, str]:
    """resolved_env, with the service's compose secrets read from the files that
    --print-env wrote in `folder` (standing in for deploy/)."""
    env = resolved_env(service, dotenv)
    mounted = {t: folder / h.name for t, h in compose_secrets(service).items()}
    return {k: str(mounted.get(v, v)) if k.endswith("_FILE") else v for k, v in env.items()}


def named_volumes(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume (declared at the top level) of a service."""
    out = {}
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        if not source.startswith((".", "/")):
            assert source in (compose().get("volumes") or {}), f"volume {source} not declared"
            out[target] = source
    return out


def postgres_service() -> tuple[str, dict[str, Any]]:
    official = ("postgres", "library/postgres", "docker.io/library/postgres")
    found = [
        (name, svc)
        for name, svc in services().items()
        if str(svc.get("image", "")).split(":")[0] in official
    ]
    assert len(found) == 1, f"expected one service on the official postgres image: {found}"
    return found[0]


def compose_workers(service: dict[str, Any]) -> int:
    value = service_env(service).get("GATEWAY_WORKERS", image_env()["GATEWAY_WORKERS"])
    match = re.fullmatch(r"\$\{GATEWAY_WORKERS:-(\d+)\}|(\d+)", value)
    assert match, f"GATEWAY_WORKERS: {value}"
    return int(match[1] or match[2])


def test_compose_gateways() -> None:
    gateways = gateway_services()
    config_doc = yaml.safe_load(COMPOSE_CONFIG.read_text())
    config_names = env_names(config_doc)
    ledger_url_env = config_doc["ledger"]["url_env"]  # built from a password: checked below
    for name, svc in gateways.items():
        build = svc["build"]
        assert (DEPLOY / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == (
            ROOT / "Dockerfile"
        )
        assert "command" not in svc, f"{name}: runs the image's command"
        env = service_env(svc)
        missing = sorted(var for var in config_names if not gives(env, var))
        assert not missing, f"{name}: missing {missing}"
        for var in config_names - {ledger_url_env}:
            if var in env:
                assert env[var].startswith(f"${{{var}:?"), f"{name}: {var} comes from deploy/.env"
            else:
                assert env[f"{var}_FILE"] in compose_secrets(svc), (
                    f"{name}: {var}_FILE must name the file of one of its compose secrets"
                )
        multiproc = env.get("PROMETHEUS_MULTIPROC_DIR", image_env()["PROMETHEUS_MULTIPROC_DIR"])
        tmpfs = [t.split(":")[0] for t in svc.get("tmpfs", [])]
        assert multiproc in tmpfs, f"{name}: PROMETHEUS_MULTIPROC_DIR must be a tmpfs"
        assert compose_workers(svc) >= 1
        depends = svc.get("depends_on", {})
        assert service_with_image("redis") in depends
        assert simulators_service()[0] in depends
        pg_name = postgres_service()[0]
        assert isinstance(depends, dict) and pg_name in depends, f"{name}: needs the ledger"
        assert depends[pg_name].get("condition") == "service_healthy", name
        assert "ports" not in svc, f"{name}: reached through nginx only"
    images = {svc["image"] for svc in gateways.values()}
    assert len(images) == 1 and simulators_service()[1]["image"] in images


def test_compose_config_is_valid_with_the_compose_environment(print_env_folder: Path) -> None:
    text = COMPOSE_CONFIG.read_text()
    doc = yaml.safe_load(text)
    seen: set[frozenset[str]] = set()
    for name, svc in gateway_services().items():
        names = frozenset(service_env(svc))
        if names in seen:
            continue  # the same environment as a replica already checked
        seen.add(names)
        env = compose_container_env(svc, dummy_env(compose_required_vars()), print_env_folder)
        config = load_config(text, env, f"{COMPOSE_CONFIG} ({name})")
        check_deploy_variant(doc, config, str(COMPOSE_CONFIG))
        assert {"/healthz", "/readyz", "/metrics"} <= app_get_paths(config)
        redis_host = urlsplit(config.storage.url or "").hostname
        assert redis_host == service_with_image("redis")
        processes = sum(compose_workers(s) for s in gateway_services().values())
        assert config.storage.replicas == processes, "one rate-limit share per gateway process"


def test_compose_ledger_is_the_postgres_service(print_env_folder: Path) -> None:
    text = COMPOSE_CONFIG.read_text()
    url_env = yaml.safe_load(text)["ledger"]["url_env"]
    pg_name, pg = postgres_service()
    dotenv = dummy_env(compose_required_vars())
    pg_env = resolved_env(pg, dotenv)
    password_refs = compose_refs(service_env(pg).get("POSTGRES_PASSWORD", ""))
    assert password_refs and set(password_refs.values()) == {":?"}, (
        "POSTGRES_PASSWORD comes from deploy/.env, like every secret"
    )
    user = pg_env.get("POSTGRES_USER", "postgres")
    processes = 0
    for name, svc in gateway_services().items():
        env = compose_container_env(svc, dotenv, print_env_folder)
        assert url_env in env, f"{name}: {url_env} is not set"
        assert compose_refs(service_env(svc)[url_env]) == password_refs, (
            f"{name}: {url_env} must use the postgres service's password variable"
        )
        url = urlsplit(env[url_env])
        assert url.scheme in POSTGRES_SCHEMES, f"{name}: {url_env} is not a PostgreSQL URL"
        assert url.hostname == pg_name, f"{name}: {url_env} must name the {pg_name} service"
        assert (url.port or 5432) == int(pg_env.get("PGPORT", 5432))
        assert url.username == user
        assert unquote(url.password or "") == pg_env["POSTGRES_PASSWORD"]
        assert url.path.lstrip("/") == pg_env.get("POSTGRES_DB", user)
        config = load_config(text, env, f"{COMPOSE_CONFIG} ({name})")
        assert config.ledger.url == env[url_env]
        processes += compose_workers(svc) * config.ledger.pool_size
    assert processes <= PG_CONNECTION_BUDGET, f"{processes} ledger connections"
    # Healthy means accepting connections; the data in a named volume.
    test = pg["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(test[1:])
    data = pg_env.get("PGDATA", "/var/lib/postgresql/data")
    volumes = named_volumes(pg)
    assert any(data == t or data.startswith(t.rstrip("/") + "/") for t in volumes), (
        f"{pg_name}: {data} must be in a named volume"
    )
    assert "ports" not in pg, f"{pg_name}: the gateways' only (psql through `compose exec`)"


def test_compose_redis_keeps_an_append_only_file() -> None:
    name = service_with_image("redis")
    redis = services()[name]
    command = redis["command"]
    assert isinstance(command, list) and command[0] == "redis-server", command
    options: dict[str, str] = {}
    for i, arg in enumerate(command[1:], start=1):
        if arg.startswith("--"):
            following = command[i + 1] if i + 1 < len(command) else ""
            options[arg] = "" if following.startswith("--") else following
    assert options.get("--appendonly") == "yes", f"{name}: run with --appendonly yes"
    assert named_volumes(redis).get(options.get("--dir", "/data")), f"{name}: /data in a volume"


def test_compose_providers_are_the_simulators() -> None:
    doc = yaml.safe_load(COMPOSE_CONFIG.read_text())
    sim_name, sim = simulators_service()
    args = sim_cli.build_parser().parse_args(sim["command"][3:])
    assert args.host == "0.0.0.0"
    started = args.simulators or list(DEFAULT_PORTS)
    ports = sim_cli.parse_ports(started, args.port)
    for provider, spec in doc["providers"].items():
        url = urlsplit(spec["base_url"])
        assert url.hostname == sim_name, f"{provider}: base_url must name the simulators service"
        assert spec["adapter"] in ports, f"{provider}: its simulator is not started"
        assert url.port == ports[spec["adapter"]], provider
        assert str(url.port) in str(sim["healthcheck"]["test"]), "the healthcheck checks it"
    env = service_env(sim)
    gateway_env = service_env(next(iter(gateway_services().values())))
    for name in started:
        needed = sim_cli.REQUIRED_ENV[name] + sim_cli.OPTIONAL_ENV[name]
        assert all(gives(env, var) for var in needed), f"{sim_name}: {name} needs {needed}"
    for var in env.keys() & gateway_env.keys():
        assert env[var] == gateway_env[var], f"{var}: simulators and gateways must share it"
    assert not gives(env, "HUB88_PRIVATE_KEY"), "the Hub88 simulator gets the public key only"
    assert "hub88_private_key.pem" not in {p.name for p in compose_secrets(sim).values()}
    assert sim["healthcheck"]["test"][:2] == ["CMD", "python"], "not the image's /healthz check"


def test_nginx_balances_both_gateways() -> None:
    text = re.sub(r"#[^\n]*", "", NGINX.read_text())  # comments out
    upstreams = dict(re.findall(r"upstream\s+(\S+)\s*\{([^}]*)\}", text))
    assert len(upstreams) == 1
    ((name, body),) = upstreams.items()
    servers = re.findall(r"^\s*server\s+([^\s;]+)", body, re.M)
    expected = {f"{svc}:{image_port()}" for svc in gateway_services()}
    assert set(servers) == expected and len(servers) == len(expected)
    assert re.search(rf"proxy_pass\s+http://{re.escape(name)}\s*;", text)
    for retry in re.findall(r"proxy_next_upstream\s+([^;]*);", text):
        assert "non_idempotent" not in retry, "nginx must never resend a payment"
    assert text.count("{") == text.count("}")
    listen = re.findall(r"^\s*listen\s+(\d+)\s*;", text, re.M)
    nginx = services()[service_with_image("nginx")]
    published = [str(p).rsplit(":", 1)[-1] for p in nginx["ports"]]
    assert listen and set(listen) <= set(published)
    assert bind_mounts(nginx)["/etc/nginx/nginx.conf"] == NGINX.resolve()
    assert set(gateway_services()) <= set(nginx["depends_on"])


def test_prometheus_scrapes_both_gateways() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    expected = {f"{svc}:{image_port()}" for svc in gateway_services()}
    jobs = [
        job
        for job in config["scrape_configs"]
        if expected & {t for sc in job.get("static_configs", []) for t in sc["targets"]}
    ]
    assert len(jobs) == 1
    job = jobs[0]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == expected
    assert job.get("metrics_path", "/metrics") == "/metrics"
    prometheus = services()[service_with_image("prom/prometheus")]
    assert bind_mounts(prometheus)["/etc/prometheus/prometheus.yml"] == PROMETHEUS.resolve()


def test_compose_bind_mounts_exist() -> None:
    for name, svc in services().items():
        for target, source in bind_mounts(svc).items():
            assert source.exists(), f"{name}: {source} (for {target}) does not exist"


# ---- python -m simulators ------------------------------------------------------------------------


def test_simulators_command_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulators", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--host" in result.stdout and "--port" in result.stdout
    for name in DEFAULT_PORTS:
        assert name in result.stdout


def test_simulators_print_env_is_a_dotenv_for_compose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sim_cli.main(["--print-env", "--out", str(tmp_path)]) == 0
    lines = [
        line
        for line in (tmp_path / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    values = {}
    for line in lines:
        # Bare NAME=value, of characters that docker's --env-file, compose and the shell all
        # read verbatim: no quotes, `$`, `#`, backslashes or blanks.
        match = re.fullmatch(r"([A-Z0-9_]+)=([A-Za-z0-9_./:@+,-]*)", line)
        assert match, line
        values[match[1]] = match[2]
    # Everything compose.yaml refuses to start without (the ledger's password included).
    wanted = compose_required_vars()
    secret_files = {n for n in service_env(simulators_service()[1]) if n.endswith("_FILE")}
    assert set(service_env(simulators_service()[1])) - secret_files <= wanted
    assert wanted <= values.keys(), f"--print-env lacks {sorted(wanted - values.keys())}"
    # The PEM keys compose mounts as secrets are the files --print-env writes beside .env.
    declared = {Path(s["file"]) for s in (compose().get("secrets") or {}).values()}
    assert {(DEPLOY / f).resolve().parent for f in declared} == {DEPLOY.resolve()}
    assert {f.name for f in declared} == set(sim_cli.PEM_FILES.values())
    for name in sim_cli.PEM_FILES:
        assert Path(values[f"{name}_FILE"]) == tmp_path.resolve() / sim_cli.PEM_FILES[name]
    # What it writes is enough for the compose config, as compose hands it to the gateways
    # (the ledger's URL built from the password), for postgres, and for the simulators.
    text = COMPOSE_CONFIG.read_text()
    url_env = yaml.safe_load(text)["ledger"]["url_env"]
    pg_password = resolved_env(postgres_service()[1], values)["POSTGRES_PASSWORD"]
    for name, svc in gateway_services().items():
        env = compose_container_env(svc, values, tmp_path)
        config = load_config(text, env, f"providers.compose.yaml + --print-env ({name})")
        assert config.ledger.url
        assert unquote(urlsplit(config.ledger.url).password or "") == pg_password, url_env
    sim_env = compose_container_env(simulators_service()[1], values, tmp_path)
    got = sim_cli.secrets_from_env(list(DEFAULT_PORTS), sim_env)
    # The simulator's public key is the public half of the gateway's private key.
    private_pem = (tmp_path / sim_cli.PEM_FILES["HUB88_PRIVATE_KEY"]).read_text()
    assert sim_cli._public_from_private(private_pem).strip() == got.hub88_public_pem.strip()


def test_simulators_print_env_needs_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        sim_cli.main(["--print-env"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m simulators: error: --print-env needs --out DIR: "
        "it writes DIR/.env and the PEM keys beside it"
    )


def test_simulators_command_names_missing_credentials() -> None:
    with pytest.raises(sim_cli.MissingCredentials, match="STRIPE_SECRET_KEY"):
        sim_cli.secrets_from_env(["stripe"], {})
    # The Hub88 simulator can take the public half of the private key.
    got = sim_cli.secrets_from_env(["hub88"], {"HUB88_PRIVATE_KEY": demo().hub88_private_pem})
    assert got.hub88_public_pem.strip() == demo().hub88_public_pem.strip()


async def test_simulators_command_serves_until_stopped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {**demo_env(), **sim_cli.simulator_only_env(demo())}
    names = list(DEFAULT_PORTS)
    ports = sim_cli.parse_ports(names, [f"{n}=0" for n in names])
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        sim_cli.serve(
            sim_cli.secrets_from_env(names, env), ports, host="127.0.0.1", ready=ready, stop=stop
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 5)
        printed = dict(re.findall(r"^(\w+) simulator on (\S+)$", capsys.readouterr().out, re.M))
        assert set(printed) == set(names)
        async with aiohttp.ClientSession() as session:
            for url in printed.values():
                async with session.get(f"{url}/_sim/stats") as response:
                    assert response.status == 200
    finally:
        stop.set()
        urls = await asyncio.wait_for(task, 5)
    assert urls == printed
    async with aiohttp.ClientSession() as session:
        for url in urls.values():
            with pytest.raises(aiohttp.ClientConnectionError):
                async with session.get(f"{url}/_sim/stats"):
                    pass
