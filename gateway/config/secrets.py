"""Secrets for the config: `*_env` from the environment, `*_file` from files, nowhere else.

A variable NAME that is not set may be given as NAME_FILE, the path of a file holding it
(Docker's convention). Every value read is remembered, so logs and errors can mask it, and
every problem is collected by key path rather than raised at the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.base import AdapterSpec
from gateway.config.values import split_secret_key

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretReader:
    """Reads secrets and collects problems (and the secret values read, to mask them)."""

    def __init__(self, env: Mapping[str, str], base_dir: Path) -> None:
        self.env = env
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.secret_values: list[str] = []

    def fail(self, path: str, problem: str) -> None:
        self.problems.append(f"{path}: {problem}")

    def credentials(
        self, path: str, given: dict[str, Any], spec: AdapterSpec
    ) -> dict[str, Any] | None:
        resolved: dict[str, Any] = {}
        ok = True
        known = set(spec.credentials) | set(spec.optional)
        for key, value in given.items():
            kpath = f"{path}.credentials.{key}"
            base, suffix = split_secret_key(key)
            if base not in known:
                self.fail(
                    kpath, f"unknown credential for adapter (expected one of {sorted(known)})"
                )
                ok = False
                continue
            if suffix is None and base in spec.secrets:
                self.fail(kpath, f"'{base}' is a secret: give it as {base}_env or {base}_file")
                ok = False
                continue
            if suffix == "_env":
                secret = self.secret_from_env(kpath, value)
            elif suffix == "_file":
                secret = self.secret_from_file(kpath, value)
            else:
                resolved[base] = value
                continue
            if secret is None:
                ok = False
            else:
                resolved[base] = secret
        for required in spec.credentials:
            if required not in resolved and ok:
                hint = f"{required}_env" if required in spec.secrets else required
                self.fail(f"{path}.credentials", f"missing '{hint}'")
                ok = False
        return resolved if ok else None

    def secret_from_env(self, path: str, name: Any) -> str | None:
        # Not echoed when it is no variable name: it may be the secret itself, pasted here.
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            self.fail(path, "must name an environment variable (letters, digits, _)")
            return None
        value = self.env.get(name)
        if not value and self.env.get(f"{name}_FILE"):
            # Docker's convention (POSTGRES_PASSWORD_FILE): NAME_FILE names a file holding
            # the value, for values no one-line .env entry can hold, like a PEM key.
            return self.secret_from_file(path, self.env[f"{name}_FILE"])
        if not value:
            self.fail(path, f"environment variable '{name}' is not set")
            return None
        self.secret_values.append(value)
        return value

    def secret_from_file(self, path: str, name: Any) -> str | None:
        if not isinstance(name, str) or not name:
            self.fail(path, "must name a file")
            return None
        file = Path(name) if Path(name).is_absolute() else self.base_dir / name
        try:
            value = file.read_text().strip()
        except OSError as exc:
            self.fail(path, f"cannot read secret file '{name}': {exc.strerror or exc}")
            return None
        self.secret_values.append(value)
        return value
