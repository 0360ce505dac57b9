"""A newcomer's first steps, as processes: `check` names every problem and says how to get
throwaway variables; the file `python -m simulators --print-env` writes is read alike by
`docker run --env-file`, compose and `set -a; . file`, and drives simulators and gateway."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import yaml

from gateway.cli import UNSET_VARIABLES_HINT
from tests.procs import ROOT, GatewayProcess

SECRET_VARS = (
    "HUB88_PRIVATE_KEY",
    "SLOTEGRATOR_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "ADYEN_API_KEY",
    "ADYEN_HMAC_KEY",
    "WEB_API_KEY",
)


def newcomer_folder(tmp_path: Path) -> Path:
    """A folder with the shipped config, and a `python` on PATH as the README's commands say."""
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "providers.yaml", tmp_path / "config" / "providers.yaml")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(sys.executable)
    return tmp_path


def shell_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS and "_FILE" not in k}
    env["PATH"] = f"{folder / 'bin'}:{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def bash(script: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        env=shell_env(folder),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_names_every_problem_and_the_hints_commands_fix_the_variables(tmp_path: Path):
    folder = newcomer_folder(tmp_path)
    doc = yaml.safe_load((folder / "config" / "providers.yaml").read_text())
    doc["providers"]["adyen"]["timeout_ms"] = "fast"
    doc["routes"]["games.get"]["providers"] = ["hub88", "hub99"]
    (folder / "broken.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    run = bash("python -m gateway check broken.yaml", folder)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "invalid config: broken.yaml",
        "  providers.adyen.timeout_ms: 'fast' is not of type 'integer'",
        "  providers.hub88.credentials.private_key_env: "
        "environment variable 'HUB88_PRIVATE_KEY' is not set",
        "  providers.slotegrator.credentials.merchant_key_env: "
        "environment variable 'SLOTEGRATOR_KEY' is not set",
        "  providers.stripe.credentials.secret_key_env: "
        "environment variable 'STRIPE_SECRET_KEY' is not set",
        "  providers.stripe.credentials.webhook_secret_env: "
        "environment variable 'STRIPE_WEBHOOK_SECRET' is not set",
        "  providers.adyen.credentials.api_key_env: "
        "environment variable 'ADYEN_API_KEY' is not set",
        "  providers.adyen.credentials.hmac_key_env: "
        "environment variable 'ADYEN_HMAC_KEY' is not set",
        "  providers.trustly.credentials.password_env: "
        "environment variable 'TRUSTLY_PASSWORD' is not set",
        "  providers.trustly.credentials.private_key_env: "
        "environment variable 'TRUSTLY_PRIVATE_KEY' is not set",
        "  providers.trustly.credentials.trustly_public_key_env: "
        "environment variable 'TRUSTLY_PUBLIC_KEY' is not set",
        "  routes.games.get.providers[1]: unknown provider 'hub99'",
        UNSET_VARIABLES_HINT,
    ]
    # The hint's two commands, as printed, make the shipped config pass.
    make, load = re.findall(r"`([^`]+)`", run.stderr.splitlines()[-1])
    fixed = bash(f"{make} >/dev/null && {load} && python -m gateway check config/providers.yaml",
                 folder)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith("ok: config/providers.yaml: 5 providers; ")


def docker_env_file(text: str) -> dict[str, str]:
    """How `docker run --env-file` reads a file: NAME=value taken verbatim, quotes included;
    blank lines and lines starting with # skipped."""
    out = {}
    for line in text.splitlines():
        line = line.lstrip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name] = value
    return out


def test_print_env_is_read_alike_by_docker_compose_and_the_shell(tmp_path: Path):
    folder = newcomer_folder(tmp_path)
    made = bash("python -m simulators --print-env --out demo-env", folder)
    assert made.returncode == 0, made.stderr
    env_file = folder / "demo-env" / ".env"
    assert made.stdout.splitlines()[1] == f"load them into a shell: set -a; . {env_file}; set +a"
    text = env_file.read_text()
    as_docker = docker_env_file(text)
    # No quotes, no escapes, one NAME=value a line: what compose would read differently
    # from docker (quotes, `$`, `#`, backslashes, blanks) is absent.
    for name, value in as_docker.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), name
        assert re.fullmatch(r"[A-Za-z0-9_./:@+,-]+", value), (name, value)
    as_shell_run = subprocess.run(
        ["env", "-i", "sh", "-c", "set -a; . ./.env; set +a; exec env -0"],
        cwd=env_file.parent, capture_output=True, text=True, timeout=10, check=True,
    )
    as_shell = dict(
        item.partition("=")[::2] for item in as_shell_run.stdout.split("\0") if item
    )
    assert {k: as_shell.get(k) for k in as_docker} == as_docker
    # The PEM keys are files beside it, named by NAME_FILE.
    assert set(as_docker) >= {"HUB88_PRIVATE_KEY_FILE", "HUB88_PUBLIC_KEY_FILE"}
    assert "BEGIN PRIVATE KEY" in Path(as_docker["HUB88_PRIVATE_KEY_FILE"]).read_text()
    assert "BEGIN PUBLIC KEY" in Path(as_docker["HUB88_PUBLIC_KEY_FILE"]).read_text()
    assert not any(k in as_docker for k in ("HUB88_PRIVATE_KEY", "HUB88_PUBLIC_KEY"))


def test_print_env_refuses_to_replace_a_dotenv_it_did_not_write(tmp_path: Path):
    folder = newcomer_folder(tmp_path)
    (folder / ".env").write_text("DATABASE_URL=postgresql://real\n")
    run = bash("python -m simulators --print-env --out .", folder)
    assert run.returncode == 1
    assert run.stderr == (
        f"python -m simulators: {folder.resolve() / '.env'} exists and was not written by "
        "--print-env; not replacing it\n"
    )
    assert (folder / ".env").read_text() == "DATABASE_URL=postgresql://real\n"


async def test_the_env_file_drives_the_simulators_and_the_gateway(tmp_path: Path):
    folder = newcomer_folder(tmp_path)
    assert bash("python -m simulators --print-env --out demo-env", folder).returncode == 0
    loaded = bash("set -a; . demo-env/.env; set +a; exec env -0", folder)
    env = dict(item.partition("=")[::2] for item in loaded.stdout.split("\0") if item)
    assert "HUB88_PUBLIC_KEY" not in env and env["HUB88_PUBLIC_KEY_FILE"]
    sims = subprocess.Popen(
        [sys.executable, "-m", "simulators", *(f"--port={n}=0" for n in
         ("hub88", "slotegrator", "stripe", "adyen", "trustly"))],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    gateway = None
    try:
        assert sims.stdout is not None
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 20
        while len(urls) < 5 and time.monotonic() < deadline:
            match = re.fullmatch(r"(\w+) simulator on (\S+)\n", sims.stdout.readline())
            assert match, sims.stderr.read() if sims.stderr else ""
            urls[match[1]] = match[2]
        doc = yaml.safe_load((folder / "config" / "providers.yaml").read_text())
        for name, spec in doc["providers"].items():
            spec["base_url"] = urls[name]
        doc["ledger"] = {"backend": "sqlite", "path": str(folder / "ledger.db")}
        gateway = await GatewayProcess(doc, env, folder).start()
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{gateway.url}/v1/games?page_size=1") as resp,
        ):
            body = await resp.json()
        # Hub88's simulator checked the gateway's signature with the public key file.
        assert resp.status == 200, body
        assert body["meta"]["partial"] is False
        assert body["meta"]["providers"] == {"hub88": "ok", "slotegrator": "ok"}
    finally:
        if gateway is not None:
            gateway.stop()
        sims.terminate()
        sims.wait(10)
        for stream in (sims.stdout, sims.stderr):
            if stream is not None:
                stream.close()
