"""The config as a viewer may see it: secrets, their locations and URL passwords masked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

SECRET_SUFFIXES = ("_env", "_file")
REDACTED = "***"
SECRET_WORDS = ("key", "secret", "token", "password")


def redact(doc: Any, parent_key: str = "") -> Any:
    """The config as written, with anything secret-looking replaced (for the admin API).

    Values of `*_env`/`*_file` keys only name where a secret lives, but are redacted too:
    a path or variable name is still more than a viewer needs.
    """
    if isinstance(doc, dict):
        return {k: _redact_value(k, v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [redact(v, parent_key) for v in doc]
    return doc


def _redact_value(key: str, value: Any) -> Any:
    lowered = str(key).lower()
    if any(word in lowered for word in SECRET_WORDS) or lowered.endswith(SECRET_SUFFIXES):
        return REDACTED  # whatever its shape: a list of tokens is still tokens
    if isinstance(value, dict | list):
        return redact(value, key)
    if isinstance(value, str) and "@" in value and "://" in value:
        return _without_password(value)
    return value


def _without_password(url: str) -> str:
    """`redis://:pw@host` -> `redis://***@host`: credentials inside a URL are secrets too."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=f"{REDACTED}@{host}").geturl()
