"""Checks of single config values the Builder applies: secret key names, provider URLs."""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.config.redact import SECRET_SUFFIXES


def split_secret_key(key: str) -> tuple[str, str | None]:
    for suffix in SECRET_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)], suffix
    return key, None


def check_base_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"'{url}' is not an http(s) URL"
    if not parts.hostname:
        return f"'{url}' has no host"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return f"'{url}' has a bad port"
    if parts.query or parts.fragment:
        return f"'{url}' must not carry a query or fragment"
    return None
