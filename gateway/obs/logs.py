"""Structured JSON logs: one line per request, built from an allow-list of fields.

Redaction is by construction: a request line holds only the fields named here (no headers,
no bodies, no query strings), and every record passes a filter that masks card-number-like
digit runs and any configured secret as a second line of defence. `trace_id` is the request's
W3C trace id (`gateway.obs.tracing`), whether the caller sent it or the gateway started it.

The access log is on by default, so it is built for the hot path: no `LogRecord`, one
`orjson.dumps` of the allow-listed fields, redaction only of the fields a client chooses
(remembered per distinct value), and the writing done by a thread (`LineSink`) in batches.
Every other record goes the usual way through `logging`, to the same sink.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from gateway.obs.log_sink import LineSink

ACCESS = logging.getLogger("gateway.access")
_PAN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Credentials a provider may echo back in an error even when the gateway never configured
# them (another environment's key, a token in a header dump).
_CREDENTIALS = re.compile(
    r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|\bwhsec_[A-Za-z0-9]{8,}"
)
SCRUB_MEMO_SIZE = 4096
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Hex ids no client can fill with a card number: a trace id (checked to be 32 hex digits by
# gateway.obs.tracing) and config hashes (the gateway's SHA-256). About one in 55 holds a
# 13-digit run, and masking it would break the correlation it is logged for.
_HEX_IDS = frozenset({"trace_id", "config_hash", "old_hash", "new_hash"})


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
        self._scrubbed: dict[str, str] = {}

    def scrub(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub("[REDACTED]", text)
        text = _CREDENTIALS.sub("[REDACTED]", text)
        return _PAN.sub("[PAN]", text)

    def scrub_cached(self, text: str) -> str:
        """`scrub`, remembered: request paths repeat (the same game, the same payment)."""
        done = self._scrubbed.get(text)
        if done is None:
            if len(self._scrubbed) >= SCRUB_MEMO_SIZE:
                self._scrubbed.clear()
            done = self._scrubbed[text] = self.scrub(text)
        return done

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
            if (
                key not in _RESERVED
                and key not in _HEX_IDS
                and isinstance(value, str | list | tuple | dict)
            ):
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
        return orjson.dumps(out, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class SinkHandler(logging.Handler):
    """Formats a record where it is logged; the sink's thread writes it."""

    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.put(self.format(record).encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.sink.flush()

    def close(self) -> None:
        self.sink.close()
        super().close()


REDACTOR = RedactingFilter()
_FIXED_LEVEL: str | None = None  # from --log-level or GATEWAY_LOG_LEVEL: beats the config
_SINK: LineSink | None = None  # where access lines go once `configure` has run


def configure(level: str = "INFO", stream: Any = None, *, fixed: str | None = None) -> None:
    """Install the JSON handler. `fixed` (flag or env) wins over the config's `log_level`."""
    global _FIXED_LEVEL, _SINK
    _FIXED_LEVEL = fixed or os.environ.get("GATEWAY_LOG_LEVEL") or None
    level = _FIXED_LEVEL or level
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, SinkHandler):
            root.removeHandler(old)
            old.close()  # writes what it still holds
    _SINK = LineSink(stream or sys.stderr)
    handler = SinkHandler(_SINK)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(REDACTOR)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def reset() -> None:
    """Remove what `configure` installed, writing out what its sink still holds: for code
    that embeds the gateway (and tests) and hands logging back as it found it."""
    global _FIXED_LEVEL, _SINK
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, SinkHandler):
            root.removeHandler(old)
            old.close()
    _SINK = None
    _FIXED_LEVEL = None


def set_level(level: str) -> None:
    """Follow the config's log level, once `configure` has installed the gateway's handler."""
    root = logging.getLogger()
    if _FIXED_LEVEL is None and any(isinstance(h, SinkHandler) for h in root.handlers):
        root.setLevel(level.upper())


def access_log(request: web.Request, status: int, elapsed_s: float, ctx: dict[str, Any]) -> None:
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    scrub = REDACTOR.scrub_cached
    # Only the method, path and a request id sent by the client come from the client: the
    # rest is the gateway's own words (route names, config ids, ids it made so that no
    # digit run is card-like), so the filter's full pass is not needed.
    request_id = ctx["request_id"]
    if ctx["request_id_chosen"]:
        request_id = REDACTOR.scrub(request_id)
    fields = {
        "request_id": request_id,
        "client_id": ctx["client_id"],
        "client_ip": ctx["client_ip"],
        "route": ctx["route"],
        "method": scrub(request.method),
        "path": scrub(request.path),
        "status": status,
        "duration_ms": round(elapsed_s * 1000, 2),
        "provider": ctx["provider"],
        "cache": ctx["cache"],
        "failover": ctx["failover"],
        "trace_id": ctx["trace_id"],
    }
    sink = _SINK
    if sink is None:  # not configured (embedded, tests): through `logging` like the rest
        ACCESS.info("request", extra=fields)
        return
    # The same fields as a record through JsonFormatter would have, in one dump.
    sink.put(
        orjson.dumps(
            {
                "ts": round(time.time(), 3),
                "level": "info",
                "logger": "gateway.access",
                "msg": "request",
                **fields,
            }
        )
    )
