"""Structured JSON logs: one line per request, built from an allow-list of fields.

Redaction is by construction: a request line holds only the fields named here (no headers,
no bodies, no query strings), and every record passes a filter that masks card-number-like
digit runs and any configured secret as a second line of defence.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

ACCESS = logging.getLogger("gateway.access")
_PAN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Credentials a provider may echo back in an error even when the gateway never configured
# them (another environment's key, a token in a header dump).
_CREDENTIALS = re.compile(
    r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|\bwhsec_[A-Za-z0-9]{8,}"
)
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Masks 13-19 digit runs (card numbers) and known secret values in every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        # Added to, never replaced: a key rotated out of the config may still show up in
        # an error from a request that started before the reload.
        self._known = getattr(self, "_known", set()) | {s for s in secrets if s and len(s) >= 6}
        values = sorted(self._known, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, values))) if values else None

    def scrub(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub("[REDACTED]", text)
        text = _CREDENTIALS.sub("[REDACTED]", text)
        return _PAN.sub("[PAN]", text)

    def _scrub_any(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list | tuple):
            return [self._scrub_any(v) for v in value]
        if isinstance(value, dict):
            return {k: self._scrub_any(v) for k, v in value.items()}
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _RESERVED and isinstance(value, str | list | tuple | dict):
                setattr(record, key, self._scrub_any(value))
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, default=str, separators=(",", ":"))


REDACTOR = RedactingFilter()
_FIXED_LEVEL: str | None = None  # from --log-level or GATEWAY_LOG_LEVEL: beats the config


def configure(level: str = "INFO", stream: Any = None, *, fixed: str | None = None) -> None:
    """Install the JSON handler. `fixed` (flag or env) wins over the config's `log_level`."""
    global _FIXED_LEVEL
    _FIXED_LEVEL = fixed or os.environ.get("GATEWAY_LOG_LEVEL") or None
    level = _FIXED_LEVEL or level
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_gateway", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._gateway = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter())
    handler.addFilter(REDACTOR)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def set_level(level: str) -> None:
    """Follow the config's log level, once `configure` has installed the gateway's handler."""
    root = logging.getLogger()
    if _FIXED_LEVEL is None and any(getattr(h, "_gateway", False) for h in root.handlers):
        root.setLevel(level.upper())


def access_log(request: web.Request, status: int, elapsed_s: float, ctx: dict[str, Any]) -> None:
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    ACCESS.info(
        "request",
        extra={
            "request_id": ctx["request_id"],
            "client_id": ctx["client_id"],
            "client_ip": ctx.get("client_ip"),
            "route": ctx["route"],
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round(elapsed_s * 1000, 2),
            "provider": ctx["provider"],
            "cache": ctx["cache"],
            "failover": ctx["failover"],
            "at": time.time(),
        },
    )
