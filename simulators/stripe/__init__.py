"""A Stripe PaymentIntents simulator speaking Stripe's real wire format.

API (form-encoded requests, JSON answers, ``Authorization: Bearer <secret_key>``; HTTP Basic
with the key as user name is accepted too, as Stripe does):

- ``POST /v1/payment_intents``: ``amount`` (positive integer, minor units, at most 99999999),
  ``currency`` (a supported ISO code), ``payment_method_types[]``,
  ``automatic_payment_methods[enabled]``, ``description``, ``metadata[<key>]``,
  ``capture_method``, ``confirm`` (only ``false``), ``receipt_email``. Any other parameter is
  refused with ``parameter_unknown`` as Stripe does. A JSON body is refused with 400.
  New intents are ``requires_payment_method`` with ``client_secret = <id>_secret_<random>``.
- ``GET /v1/payment_intents/{id}`` (404 ``resource_missing`` when unknown) and
  ``GET /v1/payment_intents?limit=N`` (a list object, newest first, 1 <= N <= 100).
- ``Stripe-Version`` request header: validated and echoed; when absent the account default
  (the ``api_version`` setting, ``2024-06-20`` unless given) applies. Versions from
  2024-04-10 default ``capture_method`` to ``automatic_async``; versions from 2023-08-16
  enable ``automatic_payment_methods`` when no ``payment_method_types`` is given.
- ``Idempotency-Key`` as Stripe implements it: a result is saved only once the endpoint ran
  (validation and authentication failures are not saved, so a corrected retry may reuse the
  key); the same key with the same parameters replays the saved status and body with
  ``Idempotent-Replayed: true``, including a saved 402 or 500; the same key with other
  parameters, or on another endpoint, is a 400 ``idempotency_error``. Keys do not expire.

Magic amounts, for failure tests:

- ``4000002``: the intent is created, then declined: 402 ``card_error`` with ``code``
  ``card_declined``, ``decline_code`` ``generic_decline`` and ``error.payment_intent`` = the
  intent (status ``requires_payment_method`` with ``last_payment_error``).
- ``4000500``: the intent is created and stored, then the answer is a 500 ``api_error``: an
  ambiguous failure where the provider did act. A replay with the same Idempotency-Key
  returns the saved 500, as Stripe does; ``GET`` / the list show the intent.

Settings of `create_app`: ``secret_key`` (required), ``webhook_url`` and ``webhook_secret``
(events are POSTed there, signed ``Stripe-Signature: t=<unix>,v1=<hex>,v0=<hex>``; the ``v0``
is a test-mode decoy made with another key), ``auto_complete_s`` (each new intent succeeds
after that many seconds, with its webhook), ``api_version`` (the account default).

Control endpoints (never faulted or counted):

- ``POST /_sim/payment_intents/{id}/complete`` JSON ``{"outcome": "succeeded" |
  "payment_failed" | "canceled" | "processing" | "requires_action", "decline_code": ...}``
  moves the intent and, when ``webhook_url`` is set, delivers the signed event before
  answering ``{"payment_intent", "event", "delivery": {"status", "error"} | null}``.
  ``succeeded`` on a ``capture_method=manual`` intent gives ``requires_capture`` and a
  ``payment_intent.amount_capturable_updated`` event. A succeeded or canceled intent cannot
  move (400 ``payment_intent_unexpected_state``).
- ``POST /_sim/events/{id}/resend`` delivers an event again (signed afresh), as Stripe's
  retries do; ``GET /_sim/events`` lists events with their delivery attempts.
- Fault controls and call counters from `simulators.faults`.

Webhook deliveries are single attempts (Stripe retries for days; use ``resend`` for that).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from simulators import faults

DEFAULT_PORT = 9103
DEFAULT_API_VERSION = "2024-06-20"

DECLINE_AMOUNT = 4000002
API_ERROR_AMOUNT = 4000500
MAX_AMOUNT = 99_999_999

CURRENCIES = frozenset((
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
    "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
    "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
    "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
    "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
    "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
    "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
    "thb", "tjs", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd", "vuv",
    "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
))

# Payment method types the simulated account has enabled, with the currencies each accepts
# (None: any).
PAYMENT_METHOD_TYPES: dict[str, frozenset[str] | None] = {
    "card": None,
    "link": None,
    "customer_balance": None,
    "sepa_debit": frozenset({"eur"}),
    "ideal": frozenset({"eur"}),
    "bancontact": frozenset({"eur"}),
    "us_bank_account": frozenset({"usd"}),
    "crypto": frozenset({"usd"}),
}

KNOWN_PARAMS = frozenset({
    "amount", "currency", "payment_method_types", "automatic_payment_methods", "description",
    "metadata", "capture_method", "confirm", "return_url", "receipt_email",
})

OUTCOMES = ("succeeded", "payment_failed", "canceled", "processing", "requires_action")
TERMINAL = frozenset({"succeeded", "canceled"})
MUTABLE = frozenset({
    "requires_payment_method", "requires_confirmation", "requires_action", "processing",
})

_VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z_]+)?")
_KEY_RE = re.compile(r"([A-Za-z0-9_]+)((?:\[[^\[\]]*\])*)")
_PART_RE = re.compile(r"\[([^\[\]]*)\]")
_ALNUM = string.ascii_letters + string.digits
_FORM = "application/x-www-form-urlencoded"
_DOCS = "https://stripe.com/docs/error-codes"


def _rand(n: int) -> str:
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
            self.error["doc_url"] = f"{_DOCS}#{code.replace('_', '-')}"
        if param is not None:
            self.error["param"] = param


@dataclass
class SavedResponse:
    endpoint: str
    params: tuple[tuple[str, str], ...]
    status: int
    body: bytes
    request_id: str
    version: str


@dataclass
class StripeState:
    secret_key: str
    webhook_url: str | None
    webhook_secret: str | None
    auto_complete_s: float | None
    api_version: str
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, SavedResponse] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None


STATE = web.AppKey("stripe_state", StripeState)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str) -> web.Response:
    return _json(status, {"error": {"type": "api_error", "message": message}})


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, indent=2).encode("utf-8")


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_dumps(payload), content_type="application/json", headers=headers
    )


# ---- request checks -----------------------------------------------------------------------


def _authenticate(request: web.Request, state: StripeState) -> None:
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


def _version(request: web.Request, state: StripeState) -> str:
    version = request.headers.get("Stripe-Version")
    if version is None:
        return state.api_version
    if not _VERSION_RE.fullmatch(version):
        raise StripeApiError(400, f"Invalid Stripe API version: {version}")
    return version


def _parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
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


def _as_list(value: Any, param: str) -> list[str]:
    if isinstance(value, dict) and all(k.isdigit() for k in value):
        value = [value[k] for k in sorted(value, key=int)]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StripeApiError(400, f"Invalid array: {param}", param=param)
    return value


def _amount(params: dict[str, Any]) -> int:
    raw = params.get("amount")
    if raw is None:
        raise StripeApiError(
            400, "Missing required param: amount.", code="parameter_missing", param="amount"
        )
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise StripeApiError(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param="amount"
        )
    amount = int(raw)
    if amount < 1:
        raise StripeApiError(
            400, "This value must be greater than or equal to 1.",
            code="parameter_invalid_integer", param="amount",
        )
    if amount > MAX_AMOUNT:
        raise StripeApiError(
            400, f"Amount must be no more than {MAX_AMOUNT}.", code="amount_too_large",
            param="amount",
        )
    return amount


def _currency(params: dict[str, Any]) -> str:
    raw = params.get("currency")
    if raw is None:
        raise StripeApiError(
            400, "Missing required param: currency.", code="parameter_missing", param="currency"
        )
    currency = raw.lower() if isinstance(raw, str) else ""
    if currency not in CURRENCIES:
        raise StripeApiError(
            400,
            f"Invalid currency: {raw}. Stripe currently supports these currencies: "
            f"{', '.join(sorted(CURRENCIES))}",
            param="currency",
        )
    return currency


def _metadata(params: dict[str, Any]) -> dict[str, str]:
    raw = params.get("metadata", {})
    if raw == "":
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise StripeApiError(400, "Invalid hash", param="metadata")
    metadata = {k: v for k, v in raw.items() if v != ""}
    if len(metadata) > 50:
        raise StripeApiError(400, "You can have up to 50 metadata keys.", param="metadata")
    for key, value in metadata.items():
        if len(key) > 40:
            raise StripeApiError(
                400, "Metadata keys can have up to 40 characters.", param=f"metadata[{key}]"
            )
        if len(value) > 500:
            raise StripeApiError(
                400, "Metadata values can have up to 500 characters.", param=f"metadata[{key}]"
            )
    return metadata


def _new_intent(params: dict[str, Any], version: str) -> dict[str, Any]:
    unknown = sorted(set(params) - KNOWN_PARAMS)
    if unknown:
        raise StripeApiError(
            400, f"Received unknown parameter: {unknown[0]}", code="parameter_unknown",
            param=unknown[0],
        )
    amount = _amount(params)
    currency = _currency(params)
    metadata = _metadata(params)

    confirm = params.get("confirm", "false")
    if confirm not in ("true", "false"):
        raise StripeApiError(400, f"Invalid boolean: {confirm}", param="confirm")
    if confirm == "true":
        raise StripeApiError(
            400,
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            code="payment_intent_unexpected_state", param="payment_method",
        )
    if "return_url" in params:
        raise StripeApiError(
            400, "You can only specify `return_url` when `confirm` is true.",
            param="return_url",
        )

    automatic: dict[str, Any] | None = None
    if "payment_method_types" in params:
        if "automatic_payment_methods" in params:
            raise StripeApiError(
                400,
                "You may only specify one of these parameters: automatic_payment_methods, "
                "payment_method_types.",
                param="payment_method_types",
            )
        types = _as_list(params["payment_method_types"], "payment_method_types")
        if not types:
            raise StripeApiError(400, "Invalid array", param="payment_method_types")
        for method in types:
            if method not in PAYMENT_METHOD_TYPES:
                raise StripeApiError(
                    400,
                    f'The payment method type "{method}" is invalid. Please ensure the '
                    "provided type is activated in your dashboard.",
                    code="payment_intent_invalid_parameter", param="payment_method_types",
                )
            allowed = PAYMENT_METHOD_TYPES[method]
            if allowed is not None and currency not in allowed:
                raise StripeApiError(
                    400,
                    f"The currency provided ({currency}) is invalid. Payments with {method} "
                    f"support the following currencies: {', '.join(sorted(allowed))}.",
                    code="payment_intent_invalid_parameter", param="currency",
                )
    else:
        apm = params.get("automatic_payment_methods")
        enabled = isinstance(apm, dict) and apm.get("enabled") == "true"
        if apm is not None and not isinstance(apm, dict):
            raise StripeApiError(400, "Invalid hash", param="automatic_payment_methods")
        if enabled or (apm is None and version >= "2023-08-16"):
            automatic = {"enabled": True, "allow_redirects": "always"}
        types = ["card"]

    capture = params.get("capture_method") or (
        "automatic_async" if version >= "2024-04-10" else "automatic"
    )
    if capture not in ("automatic", "automatic_async", "manual"):
        raise StripeApiError(400, f"Invalid capture_method: {capture}", param="capture_method")
    for name in ("description", "receipt_email"):
        if name in params and not isinstance(params[name], str):
            raise StripeApiError(400, f"Invalid string: {name}", param=name)

    intent_id = f"pi_{_rand(24)}"
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": automatic,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture,
        "client_secret": f"{intent_id}_secret_{_rand(25)}",
        "confirmation_method": "automatic",
        "created": int(time.time()),
        "currency": currency,
        "customer": None,
        "description": params.get("description"),
        "invoice": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {m: {} for m in types},
        "payment_method_types": types,
        "processing": None,
        "receipt_email": params.get("receipt_email"),
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def _decline(intent: dict[str, Any], decline_code: str) -> dict[str, Any]:
    """Marks the intent declined; returns the error object Stripe reports the decline with."""
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": decline_code,
        "doc_url": f"{_DOCS}#card-declined",
        "message": "Your card was declined.",
        "payment_method": {"id": f"pm_{_rand(24)}", "object": "payment_method", "type": "card"},
    }
    intent.update(
        status="requires_payment_method", last_payment_error=error, payment_method=None,
        next_action=None,
    )
    return error


# ---- API handlers -------------------------------------------------------------------------


def _headers(request_id: str, version: str, key: str | None) -> dict[str, str]:
    headers = {"Request-Id": request_id, "Stripe-Version": version}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def create_intent(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _authenticate(request, state)
    version = _version(request, state)
    body = await request.read()
    if body and request.content_type != _FORM:
        raise StripeApiError(
            400,
            "Invalid request (check that your POST content type is "
            "application/x-www-form-urlencoded). If you have any questions, we can help at "
            "https://support.stripe.com/.",
        )
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise StripeApiError(400, "Invalid request: the body is not UTF-8.") from None
    key = request.headers.get("Idempotency-Key")
    endpoint = "POST /v1/payment_intents"
    fingerprint = tuple(sorted(pairs))
    if key is not None:
        if not key or len(key) > 255:
            raise StripeApiError(
                400, "Idempotency keys must be between 1 and 255 characters long.",
                param="idempotency_key",
            )
        saved = state.idempotency.get(key)
        if saved is not None:
            if saved.endpoint != endpoint or saved.params != fingerprint:
                raise StripeApiError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                    error_type="idempotency_error",
                )
            headers = _headers(f"req_{_rand(14)}", saved.version, key)
            headers["Idempotent-Replayed"] = "true"
            headers["Original-Request"] = saved.request_id
            return web.Response(
                status=saved.status, body=saved.body, content_type="application/json",
                headers=headers,
            )

    intent = _new_intent(_parse_form(pairs), version)
    state.intents[intent["id"]] = intent
    status: int
    payload: Any
    if intent["amount"] == DECLINE_AMOUNT:
        error = _decline(intent, "generic_decline")
        status, payload = 402, {"error": {**error, "payment_intent": copy.deepcopy(intent)}}
    elif intent["amount"] == API_ERROR_AMOUNT:
        message = "An unknown error occurred while processing your request."
        status, payload = 500, {"error": {"type": "api_error", "message": message}}
        _schedule_auto_complete(request.app, intent["id"])
    else:
        status, payload = 200, intent
        _schedule_auto_complete(request.app, intent["id"])

    request_id = f"req_{_rand(14)}"
    encoded = _dumps(payload)
    if key is not None:
        state.idempotency[key] = SavedResponse(
            endpoint, fingerprint, status, encoded, request_id, version
        )
    return web.Response(
        status=status, body=encoded, content_type="application/json",
        headers=_headers(request_id, version, key),
    )


async def get_intent(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _authenticate(request, state)
    version = _version(request, state)
    intent_id = request.match_info["id"]
    intent = state.intents.get(intent_id)
    if intent is None:
        raise StripeApiError(
            404, f"No such payment_intent: '{intent_id}'", code="resource_missing",
            param="intent",
        )
    return _json(200, intent, _headers(f"req_{_rand(14)}", version, None))


async def list_intents(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _authenticate(request, state)
    version = _version(request, state)
    unknown = sorted(set(request.query) - {"limit"})
    if unknown:
        raise StripeApiError(
            400, f"Received unknown parameter: {unknown[0]}", code="parameter_unknown",
            param=unknown[0],
        )
    raw = request.query.get("limit", "10")
    if not raw.isascii() or not raw.isdigit():
        raise StripeApiError(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param="limit"
        )
    limit = int(raw)
    if not 1 <= limit <= 100:
        raise StripeApiError(
            400, "This value must be between 1 and 100.", code="parameter_invalid_integer",
            param="limit",
        )
    newest_first = list(reversed(state.intents.values()))
    payload = {
        "object": "list",
        "data": newest_first[:limit],
        "has_more": len(newest_first) > limit,
        "url": "/v1/payment_intents",
    }
    return _json(200, payload, _headers(f"req_{_rand(14)}", version, None))


async def unknown_route(request: web.Request) -> web.Response:
    raise StripeApiError(
        404, f"Unrecognized request URL ({request.method}: {request.path}).",
    )


# ---- outcomes and webhooks ----------------------------------------------------------------


def _apply_outcome(intent: dict[str, Any], outcome: str, decline_code: str) -> str:
    """Moves the intent; returns the type of the event Stripe would send."""
    if outcome == "succeeded":
        intent.update(
            payment_method=f"pm_{_rand(24)}", next_action=None, last_payment_error=None
        )
        if intent["capture_method"] == "manual":
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            return "payment_intent.amount_capturable_updated"
        intent.update(
            status="succeeded", amount_received=intent["amount"],
            latest_charge=f"ch_{_rand(24)}",
        )
        return "payment_intent.succeeded"
    if outcome == "payment_failed":
        _decline(intent, decline_code)
        return "payment_intent.payment_failed"
    if outcome == "canceled":
        intent.update(status="canceled", canceled_at=int(time.time()), next_action=None)
        return "payment_intent.canceled"
    if outcome == "processing":
        intent.update(status="processing", next_action=None)
        return "payment_intent.processing"
    intent.update(
        status="requires_action",
        next_action={
            "type": "redirect_to_url",
            "redirect_to_url": {
                "url": "https://hooks.stripe.com/3d_secure_2/hosted?payment_intent="
                f"{intent['id']}&payment_intent_client_secret={intent['client_secret']}",
                "return_url": None,
            },
        },
    )
    return "payment_intent.requires_action"


def _new_event(state: StripeState, event_type: str, intent: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"evt_{_rand(24)}",
        "object": "event",
        "api_version": state.api_version,
        "created": int(time.time()),
        "data": {"object": copy.deepcopy(intent)},
        "livemode": False,
        "pending_webhooks": 1 if state.webhook_url else 0,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    state.events[event["id"]] = event
    state.deliveries[event["id"]] = []
    return event


def sign(secret: str, timestamp: int, body: bytes) -> str:
    payload = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


async def _deliver(state: StripeState, event: dict[str, Any]) -> dict[str, Any] | None:
    if state.webhook_url is None or state.webhook_secret is None or state.session is None:
        return None
    body = json.dumps(event, indent=2).encode("utf-8")
    timestamp = int(time.time())
    # Test-mode deliveries also carry a v0 signature made with another secret.
    decoy = sign(f"v0:{state.webhook_secret}", timestamp, body)
    header = f"t={timestamp},v1={sign(state.webhook_secret, timestamp, body)},v0={decoy}"
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": header,
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    result: dict[str, Any]
    try:
        async with state.session.post(state.webhook_url, data=body, headers=headers) as resp:
            await resp.read()
            result = {"status": resp.status, "error": None}
    except (aiohttp.ClientError, TimeoutError) as exc:
        result = {"status": None, "error": f"{type(exc).__name__}: {exc}"}
    state.deliveries[event["id"]].append({"at": timestamp, **result})
    return result


async def _auto_complete(app: web.Application, intent_id: str, delay: float) -> None:
    await asyncio.sleep(delay)
    state = app[STATE]
    intent = state.intents.get(intent_id)
    if intent is None or intent["status"] not in MUTABLE:
        return
    event_type = _apply_outcome(intent, "succeeded", "generic_decline")
    await _deliver(state, _new_event(state, event_type, intent))


def _schedule_auto_complete(app: web.Application, intent_id: str) -> None:
    state = app[STATE]
    if state.auto_complete_s is None:
        return
    task = asyncio.create_task(_auto_complete(app, intent_id, state.auto_complete_s))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


# ---- control endpoints --------------------------------------------------------------------


def _control_error(status: int, message: str, code: str | None = None) -> web.Response:
    error: dict[str, Any] = {"type": "invalid_request_error", "message": message}
    if code is not None:
        error["code"] = code
    return _json(status, {"error": error})


async def complete_intent(request: web.Request) -> web.Response:
    state = request.app[STATE]
    intent = state.intents.get(request.match_info["id"])
    if intent is None:
        return _control_error(404, f"No such payment_intent: '{request.match_info['id']}'",
                              "resource_missing")
    try:
        data = await request.json()
    except ValueError:
        return _control_error(400, "body must be a JSON object")
    if not isinstance(data, dict) or data.get("outcome") not in OUTCOMES:
        return _control_error(400, f"outcome must be one of {', '.join(OUTCOMES)}")
    decline_code = data.get("decline_code", "generic_decline")
    if not isinstance(decline_code, str) or not decline_code:
        return _control_error(400, "decline_code must be a non-empty string")
    if intent["status"] in TERMINAL:
        return _control_error(
            400,
            f"This PaymentIntent's status is {intent['status']}; it cannot change.",
            "payment_intent_unexpected_state",
        )
    event_type = _apply_outcome(intent, data["outcome"], decline_code)
    event = _new_event(state, event_type, intent)
    delivery = await _deliver(state, event)
    return _json(200, {"payment_intent": intent, "event": event, "delivery": delivery})


async def resend_event(request: web.Request) -> web.Response:
    state = request.app[STATE]
    event = state.events.get(request.match_info["id"])
    if event is None:
        return _control_error(404, f"No such event: '{request.match_info['id']}'",
                              "resource_missing")
    if state.webhook_url is None:
        return _control_error(400, "no webhook_url configured")
    delivery = await _deliver(state, event)
    return _json(200, {"event": event, "delivery": delivery})


async def list_events(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = [
        {"event": event, "deliveries": state.deliveries[event_id]}
        for event_id, event in state.events.items()
    ]
    return _json(200, {"data": data})


# ---- the app ------------------------------------------------------------------------------


@web.middleware
async def stripe_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except StripeApiError as exc:
        response = _json(exc.status, {"error": exc.error})
    if not request.path.startswith("/_sim/"):
        response.headers.setdefault("Request-Id", f"req_{_rand(14)}")
    return response


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    yield
    tasks = list(state.tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await state.session.close()
    state.session = None


def create_app(
    secret_key: str,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    auto_complete_s: float | None = None,
    api_version: str | None = None,
) -> web.Application:
    if not isinstance(secret_key, str) or not secret_key:
        raise ValueError("secret_key is required")
    if webhook_url is not None and not webhook_secret:
        raise ValueError("webhook_url needs webhook_secret: Stripe signs every delivery")
    if auto_complete_s is not None and auto_complete_s < 0:
        raise ValueError("auto_complete_s must be >= 0")
    version = api_version or DEFAULT_API_VERSION
    if not _VERSION_RE.fullmatch(version):
        raise ValueError(f"api_version {version!r} is not a Stripe API version")

    app = web.Application()
    app[STATE] = StripeState(
        secret_key=secret_key,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        auto_complete_s=auto_complete_s,
        api_version=version,
    )
    faults.install(app, error_response)
    app.middlewares.append(stripe_errors)
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post("/v1/payment_intents", create_intent)
    app.router.add_get("/v1/payment_intents", list_intents)
    app.router.add_get("/v1/payment_intents/{id}", get_intent)
    app.router.add_post("/_sim/payment_intents/{id}/complete", complete_intent)
    app.router.add_post("/_sim/events/{id}/resend", resend_event)
    app.router.add_get("/_sim/events", list_events)
    app.router.add_route("*", "/v1/{tail:.*}", unknown_route)
    return app
