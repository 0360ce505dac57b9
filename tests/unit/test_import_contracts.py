"""The import contracts in pyproject.toml hold, and each one fails when its rule is broken.

`lint-imports` runs over a copy of the source tree; every case adds one forbidden import to
the copy and expects exit status 1 with that contract reported BROKEN.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "adapters", "policies", "simulators")
LINT_IMPORTS = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")


def _copy_tree(dest: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, ahead of any installed copy of the project.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _add_import(path: Path, statement: str) -> None:
    text = path.read_text()
    marker = "from __future__ import annotations\n"
    assert marker in text, path
    path.write_text(text.replace(marker, marker + "\n" + statement + "\n", 1))


def test_the_source_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        (
            "gateway/problems/codes.py",
            "import gateway.http.app  # a bottom layer reaching for the top",
            "gateway: each folder imports only the folders below it",
        ),
        (
            "gateway/upstream/selection.py",
            "from gateway.runtime import gateway as _runtime  # a lower folder imports a higher",
            "gateway: each folder imports only the folders below it",
        ),
        (
            "gateway/games/merge.py",
            "import gateway.payments.records  # siblings stay independent",
            "gateway: each folder imports only the folders below it",
        ),
        (
            "policies/failover.py",
            "import gateway.config.model",
            "policies import nothing from the server and know no provider",
        ),
        (
            "policies/health.py",
            "import adapters.base",
            "policies import nothing from the server and know no provider",
        ),
        (
            "adapters/base.py",
            "import policies.failover",
            "adapters translate only: no server, no policies, no fakes",
        ),
        (
            "gateway/http/api.py",
            "import simulators.faults",
            "only the demo command starts simulators",
        ),
        (
            "simulators/faults.py",
            "import adapters.base",
            "simulators share no code with the product",
        ),
    ],
)
def test_each_contract_fails_when_broken(
    tmp_path: Path, module: str, statement: str, contract: str
) -> None:
    tree = _copy_tree(tmp_path)
    _add_import(tree / module, statement)
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract} BROKEN" in result.stdout, result.stdout
    assert "1 broken" in result.stdout, result.stdout
