"""providers.yaml: parse, validate whole, resolve secrets, build typed settings.

A config is accepted only when every check passes; `ConfigError` lists every problem found,
each named by its key path (`routes.games.list.providers[1]: unknown provider 'hub99'`).
Secrets are read from the environment (`*_env`) or files (`*_file`) here and nowhere else,
and the typed settings never print them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gateway.config.build import Builder
from gateway.config.errors import ConfigError
from gateway.config.model import Config
from gateway.config.redact import SECRET_SUFFIXES, SECRET_WORDS


@cache
def config_schema() -> dict[str, Any]:
    text = resources.files("gateway").joinpath("schemas/config.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = config_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read file: {exc.strerror or exc}"], str(path)) from None
    return parse_config(data, source=str(path), env=env, base_dir=path.parent)


def parse_config(
    data: bytes,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    env = os.environ if env is None else env
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}invalid YAML: {problem}"], source) from None
    if not isinstance(doc, dict):
        raise ConfigError(["the file must hold a mapping (version, providers, routes)"], source)
    bad_keys = list(_non_string_keys(doc))
    if bad_keys:
        raise ConfigError(bad_keys, source)
    problems = [
        f"{key_path(err.absolute_path)}: {_schema_message(err)}"
        for err in sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.path)))
    ]
    if problems:
        raise ConfigError(problems, source)
    builder = Builder(doc, env, base_dir or Path.cwd())
    config = builder.build(source, hashlib.sha256(data).hexdigest())
    if builder.problems:
        raise ConfigError(builder.problems, source)
    return config


def _schema_message(err: jsonschema.ValidationError) -> str:
    """The schema's message, unless the value may be a secret pasted in the wrong place."""
    last = str(err.absolute_path[-1]).lower() if err.absolute_path else ""
    if last.endswith(SECRET_SUFFIXES) or any(word in last for word in SECRET_WORDS):
        return f"not a valid value for {last} (the value is not repeated here)"
    return str(err.message)


def _non_string_keys(node: Any, path: tuple[Any, ...] = ()) -> Iterable[str]:
    """YAML allows `1:` as a key; everything here expects names."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                yield f"{key_path(path)}: key {key!r} must be a string"
            else:
                yield from _non_string_keys(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _non_string_keys(value, (*path, i))


def key_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"
