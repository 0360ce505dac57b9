"""`casino-gateway check PATH`: exit 0 and a summary, or exit 1 and every problem by key path."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli import UNSET_VARIABLES_HINT, main
from simulators.stack import DemoSecrets, make_secrets

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "config" / "providers.yaml"
PACKAGED = ROOT / "gateway" / "data" / "providers.yaml"
SECRET_VARS = (
    "HUB88_PRIVATE_KEY",
    "SLOTEGRATOR_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "ADYEN_API_KEY",
    "ADYEN_HMAC_KEY",
    "WEB_API_KEY",
)

VALID = """\
version: 1
defaults:
  timeout_ms: 500
providers:
  hub88:
    adapter: hub88
    base_url: http://127.0.0.1:9101
    credentials: {operator_id: 1, private_key_env: HUB88_PRIVATE_KEY}
  slotegrator:
    adapter: slotegrator
    base_url: http://127.0.0.1:9102
    credentials: {merchant_id: demo, merchant_key_env: SLOTEGRATOR_KEY}
  stripe:
    adapter: stripe
    base_url: http://127.0.0.1:9103
    credentials: {secret_key_env: STRIPE_SECRET_KEY, webhook_secret_env: STRIPE_WEBHOOK_SECRET}
  adyen:
    adapter: adyen
    base_url: http://127.0.0.1:9104
    credentials: {api_key_env: ADYEN_API_KEY, merchant_account: DemoCasino}
routes:
  games.list: {providers: [hub88, slotegrator]}
  games.get: {providers: [hub88, slotegrator]}
  games.launch: {providers: [slotegrator, hub88]}
  payments.create: {providers: [stripe, adyen]}
  payments.get: {providers: [stripe, adyen]}
"""
VALID_SUMMARY = (
    "4 providers; games.list -> hub88/slotegrator, games.get -> hub88/slotegrator, "
    "games.launch -> slotegrator/hub88, payments.create -> stripe/adyen, "
    "payments.get -> stripe/adyen"
)
CATALOG_LINES = (
    "  catalog hub88: refreshed every 300 s (jittered), kept 86400 s while refreshes fail\n"
    "  catalog slotegrator: refreshed every 300 s (jittered), kept 86400 s while refreshes "
    "fail\n"
)

# name -> (the file, the env variable left out or None, the one problem `check` must name)
BROKEN: dict[str, tuple[str, str | None, str]] = {
    "unknown_provider": (
        VALID.replace(
            "games.get: {providers: [hub88, slotegrator]}", "games.get: {providers: [hub88, hub99]}"
        ),
        None,
        "routes.games.get.providers[1]: unknown provider 'hub99'",
    ),
    "missing_variable": (
        VALID,
        "STRIPE_SECRET_KEY",
        "providers.stripe.credentials.secret_key_env: "
        "environment variable 'STRIPE_SECRET_KEY' is not set",
    ),
    "bad_url": (
        VALID.replace("http://127.0.0.1:9104", "ftp://127.0.0.1:9104"),
        None,
        "providers.adyen.base_url: 'ftp://127.0.0.1:9104' is not an http(s) URL",
    ),
    "payments_by_games_adapter": (
        VALID.replace(
            "payments.get: {providers: [stripe, adyen]}",
            "payments.get: {providers: [stripe, slotegrator]}",
        ),
        None,
        "routes.payments.get.providers[1]: provider 'slotegrator' uses the games adapter "
        "'slotegrator', which cannot serve payments.get",
    ),
}


ALL_BROKEN = (
    VALID.replace("[hub88, slotegrator]}\n  games.launch", "[hub88, hub99]}\n  games.launch")
    .replace("http://127.0.0.1:9104", "ftp://127.0.0.1:9104")
    .replace(
        "payments.get: {providers: [stripe, adyen]}",
        "payments.get: {providers: [stripe, slotegrator]}",
    )
)


@pytest.fixture(scope="module")
def demo() -> DemoSecrets:
    return make_secrets()


@dataclass
class Run:
    path: str
    code: int
    out: str
    err: str


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SECRET_VARS}


@pytest.fixture(scope="module")
def runs(demo: DemoSecrets, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every `python -m gateway check` of this module, started at once and awaited together."""
    folder = tmp_path_factory.mktemp("check")
    jobs: dict[str, tuple[list[str], dict[str, str]]] = {}
    jobs["no_variables"] = (["config/providers.yaml"], base_env())
    jobs["shipped"] = (["config/providers.yaml"], {**base_env(), **demo.env()})
    # One file holding every broken case at once, run without the one missing variable.
    broken = folder / "broken.yaml"
    broken.write_text(ALL_BROKEN)
    env = {k: v for k, v in demo.env().items() if k != "STRIPE_SECRET_KEY"}
    jobs["broken"] = ([str(broken)], {**base_env(), **env})
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "gateway", "check", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, env) in jobs.items()
    }
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        results[name] = Run(jobs[name][0][0], proc.returncode, out, err)
    return results


# ---- as a command --------------------------------------------------------------------------



def test_broken_file_exits_1_naming_each_key_path_and_problem(runs: dict[str, Run]):
    run = runs["broken"]
    assert run.code == 1
    assert run.out == ""
    assert run.err.splitlines() == [
        f"invalid config: {run.path}",
        f"  {BROKEN['missing_variable'][2]}",
        f"  {BROKEN['bad_url'][2]}",
        f"  {BROKEN['unknown_provider'][2]}",
        f"  {BROKEN['payments_by_games_adapter'][2]}",
        UNSET_VARIABLES_HINT,
    ]


def test_without_the_variables_every_missing_one_is_named(runs: dict[str, Run]):
    run = runs["no_variables"]
    assert run.code == 1
    assert run.out == ""
    assert run.err.splitlines() == [
        "invalid config: config/providers.yaml",
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
        UNSET_VARIABLES_HINT,
    ]


def test_shipped_config_passes_with_the_demo_variables(runs: dict[str, Run]):
    run = runs["shipped"]
    assert run.code == 0, run.err
    assert run.err == ""
    assert run.out == (
        "ok: config/providers.yaml: 5 providers; games.list -> hub88/slotegrator, "
        "games.get -> hub88/slotegrator, games.launch -> hub88/slotegrator, "
        "payments.create -> stripe/adyen, payments.get -> stripe/adyen/trustly\n"
        "ledger: sqlite file data/ledger.db, settled records kept 120 days\n" + CATALOG_LINES
    )


def test_no_secret_reaches_the_output(runs: dict[str, Run], demo: DemoSecrets):
    text = "".join(run.out + run.err for run in runs.values())
    for value in demo.env().values():
        assert value not in text
    assert "PRIVATE KEY" not in text


def test_packaged_copy_is_the_shipped_config():
    assert PACKAGED.read_bytes() == SHIPPED.read_bytes()


# ---- in process ----------------------------------------------------------------------------


@pytest.fixture
def demo_env(demo: DemoSecrets, monkeypatch: pytest.MonkeyPatch) -> DemoSecrets:
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in demo.env().items():
        monkeypatch.setenv(name, value)
    return demo


def test_main_check_valid(demo_env: DemoSecrets, tmp_path: Path, capsys):
    path = tmp_path / "providers.yaml"
    path.write_text(VALID)
    assert main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == (
        f"ok: {path}: {VALID_SUMMARY}\n"
        "ledger: sqlite file data/ledger.db, settled records kept 120 days\n"
        f"{CATALOG_LINES}"
    )
    assert captured.err == ""


def test_main_check_explains_cache_on_games_routes_and_jurisdiction(
    demo_env: DemoSecrets, tmp_path: Path, capsys
):
    path = tmp_path / "providers.yaml"
    text = VALID.replace(
        "games.list: {providers: [hub88, slotegrator]}",
        "games.list: {providers: [hub88, slotegrator], cache: {ttl_s: 60, stale_if_error_s: 9}}",
    ).replace(
        "    credentials: {merchant_id: demo, merchant_key_env: SLOTEGRATOR_KEY}\n",
        "    credentials: {merchant_id: demo, merchant_key_env: SLOTEGRATOR_KEY}\n"
        "    blocked_countries: [NL, DE]\n"
        "    catalog: {refresh_s: 45, max_stale_s: 3600}\n",
    )
    path.write_text(text + "studios:\n  PragmaticPlay: {blocked_countries: [GB]}\n")
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "ledger: sqlite file data/ledger.db, settled records kept 120 days",
        "  catalog hub88: refreshed every 60 s (jittered), kept 86400 s while refreshes fail",
        "  catalog slotegrator: refreshed every 45 s (jittered), kept 3600 s while refreshes "
        "fail; offers blocked in DE, NL",
        "  studio pragmaticplay: games blocked in GB",
        "note: routes.games.list.cache: games routes now read the catalog snapshot kept warm "
        "in the background, and no request fetches a catalog. ttl_s 60 sets catalog.refresh_s "
        "of hub88; the stale_* windows no longer apply (catalog.max_stale_s keeps a catalog "
        "while its refreshes fail).",
    ]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_main_check_broken(
    demo_env: DemoSecrets, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, name: str
):
    text, left_out, problem = BROKEN[name]
    if left_out is not None:
        monkeypatch.delenv(left_out)
    path = tmp_path / "providers.yaml"
    path.write_text(text)
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    hint = f"{UNSET_VARIABLES_HINT}\n" if left_out else ""
    assert captured.err == f"invalid config: {path}\n  {problem}\n{hint}"


def test_main_check_reports_several_problems(demo_env: DemoSecrets, tmp_path: Path, capsys):
    path = tmp_path / "providers.yaml"
    path.write_text(BROKEN["unknown_provider"][0].replace("http://127.0.0.1:9104", "http://"))
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"invalid config: {path}\n"
        "  providers.adyen.base_url: 'http://' has no host\n"
        "  routes.games.get.providers[1]: unknown provider 'hub99'\n"
    )


def test_main_check_invalid_yaml(demo_env: DemoSecrets, tmp_path: Path, capsys):
    path = tmp_path / "providers.yaml"
    path.write_text(
        VALID.replace("  games.get: {providers: [hub88, slotegrator]}", "  games.get: {")
    )
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"invalid config: {path}\n"
        "  line 25, column 3: invalid YAML: expected ',' or '}', but got '<scalar>'\n"
    )


def test_main_check_missing_file(tmp_path: Path, capsys):
    path = tmp_path / "absent.yaml"
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"invalid config: {path}\n  cannot read file: No such file or directory\n"
    )


def test_main_check_shipped_config(demo_env: DemoSecrets, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["check", "config/providers.yaml"]) == 0
    assert capsys.readouterr().out.startswith("ok: config/providers.yaml: 5 providers; ")


def test_check_needs_a_path(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check"])
    assert info.value.code == 2
    assert "the following arguments are required: path" in capsys.readouterr().err
