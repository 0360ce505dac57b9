"""Stripe's wire conventions, shared by every endpoint of the simulator.

Random ids, the `{"error": {...}}` object (`StripeApiError`, `error_response`), JSON
answers, the API key check, the ``Stripe-Version`` header and the decoding of
form-encoded bodies in Stripe's bracket notation.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import string
from typing import Any

from aiohttp import web

from simulators.stripe.state import StripeState

VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z_]+)?")
_KEY_RE = re.compile(r"([A-Za-z0-9_]+)((?:\[[^\[\]]*\])*)")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")
_ALNUM = string.ascii_letters + string.digits
DOCS_URL = "https://stripe.com/docs/error-codes"


def rand(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


class StripeApiError(Exception):
    """Rendered as Stripe's `{"error": {...}}` by the error middleware."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"type": error_type, "message": message}
        if code is not None:
            self.error["code"] = code
            self.error["doc_url"] = f"{DOCS_URL}#{code.replace('_', '-')}"
        if param is not None:
            self.error["param"] = param


def error_response(status: int, message: str) -> web.Response:
    return json_response(status, {"error": {"type": "api_error", "message": message}})


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, indent=2).encode("utf-8")


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=dumps(payload), content_type="application/json", headers=headers
    )


def authenticate(request: web.Request, state: StripeState) -> None:
    value = request.headers.get("Authorization", "")
    scheme, _, credential = value.partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = credential.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credential.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    if not key:
        raise StripeApiError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').",
            error_type="authentication_error",
        )
    if not hmac.compare_digest(key.encode("utf-8", "replace"), state.secret_key.encode()):
        shown = f"{key[:8]}{'*' * max(len(key) - 12, 0)}{key[-4:]}" if len(key) > 12 else "****"
        raise StripeApiError(
            401, f"Invalid API Key provided: {shown}", error_type="authentication_error"
        )


def request_version(request: web.Request, state: StripeState) -> str:
    version = request.headers.get("Stripe-Version")
    if version is None:
        return state.api_version
    if not VERSION_RE.fullmatch(version):
        raise StripeApiError(400, f"Invalid Stripe API version: {version}")
    return version


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation: `a[b]=x` is a hash, `a[]=x` appends to an array."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY_RE.fullmatch(key)
        if match is None:
            raise StripeApiError(400, f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *_PART_RE.findall(match.group(2))]
        node: Any = out
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if part == "":
                if not last or not isinstance(node, list):
                    raise StripeApiError(400, f"Invalid array: {key}", param=path[0])
                node.append(value)
                break
            if not isinstance(node, dict):
                raise StripeApiError(400, f"Invalid hash: {key}", param=path[0])
            if last:
                if isinstance(node.get(part), dict | list):
                    raise StripeApiError(400, f"Invalid hash: {key}", param=path[0])
                node[part] = value
                break
            wanted: dict[str, Any] | list[str] = [] if path[i + 1] == "" else {}
            child = node.setdefault(part, wanted)
            if type(child) is not type(wanted):
                raise StripeApiError(400, f"Invalid hash: {key}", param=path[0])
            node = child
    return out
