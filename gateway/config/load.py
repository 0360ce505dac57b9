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

from adapters.base import OPERATIONS
from gateway.config.build import Builder
from gateway.config.errors import ConfigError
from gateway.config.model import Config
from gateway.config.redact import SECRET_SUFFIXES, SECRET_WORDS

_WHOLE = object()  # stands for "the whole section" among a section's refused members
# Settings of a provider or route that have defaults: one the schema refuses is left out,
# and the rest of its provider or route is still checked.
_DEFAULTED = {
    "providers": frozenset({"timeout_ms", "rate_limit", "breaker", "health", "max_connections"}),
    "routes": frozenset({"cache", "rate_limit", "rules", "cascade_soft_declines"}),
}


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
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.path)))
    problems = [f"{key_path(err.absolute_path)}: {_schema_message(err)}" for err in errors]
    # The checks of meaning run too, on what the schema accepted: one run of `check` names
    # every problem, instead of hiding the semantic ones until the schema ones are fixed.
    buildable, unchecked = schema_valid_parts(doc, errors)
    builder = Builder(buildable, env, base_dir or Path.cwd(), unchecked_providers=unchecked)
    config = builder.build(source, hashlib.sha256(data).hexdigest())
    problems += builder.problems
    if problems:
        raise ConfigError(problems, source)
    return config


def schema_valid_parts(
    doc: dict[str, Any], errors: Iterable[jsonschema.ValidationError]
) -> tuple[dict[str, Any], frozenset[str]]:
    """`doc` without the parts the schema refused, and the providers to leave unchecked.

    The Builder expects schema-valid input. Providers, routes and clients are kept or left
    out one by one, a refused setting with a default is left out alone (so a bad timeout
    does not hide the provider's credentials), and any other section with an error is left
    out whole, its defaults applying. A refused provider stays in the document, unchecked,
    so that the routes naming it are not also reported as naming an unknown provider.
    """
    bad: dict[str, set[Any]] = {}
    dropped: dict[tuple[str, str], set[str]] = {}  # (section, member) -> settings left out
    for err in errors:
        path = list(err.absolute_path)
        if not path:
            continue  # a missing or unknown top-level key: the sections are handled below
        section = str(path[0])
        members = bad.setdefault(section, set())
        if len(path) > 2 and path[2] in _DEFAULTED.get(section, ()):
            dropped.setdefault((section, str(path[1])), set()).add(str(path[2]))
        elif len(path) == 2 and section in _DEFAULTED and err.validator == "additionalProperties":
            continue  # an unknown setting of a provider or route: nothing reads it
        elif len(path) > 1:
            members.add(path[1])
        elif isinstance(err.instance, str):
            members.add(err.instance)  # a member's name the schema refuses
        elif err.validator != "additionalProperties":  # unknown routes are dropped below
            members.add(_WHOLE)
    out = {key: value for key, value in doc.items() if key not in bad}

    def kept(section: str, known: Iterable[str] | None = None) -> dict[str, Any]:
        given = doc.get(section)
        if not isinstance(given, dict) or _WHOLE in bad.get(section, ()):
            return {}
        return {
            name: _without(spec, dropped.get((section, name), set()))
            for name, spec in given.items()
            if name not in bad.get(section, ()) or section == "providers"
            if known is None or name in known
        }

    out["providers"] = kept("providers")
    out["routes"] = kept("routes", OPERATIONS)
    clients = doc.get("clients", [])
    if isinstance(clients, list) and _WHOLE not in bad.get("clients", ()):
        out["clients"] = [c for i, c in enumerate(clients) if i not in bad.get("clients", ())]
    else:
        out["clients"] = []
    refused = bad.get("providers", set()) & set(out["providers"])
    return out, frozenset(refused)


def _without(spec: Any, keys: set[str]) -> Any:
    return {k: v for k, v in spec.items() if k not in keys} if keys else spec


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
