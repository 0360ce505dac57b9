"""Request bodies checked against the OpenAPI document's schemas, compiled once.

Each schema failure maps to one stable problem `code`, so a frontend can tell a bad amount
from a bad currency without parsing messages.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from adapters.money import EXPONENTS
from gateway.http.schema_check import Check, compile_schema
from gateway.problems import ApiError


@cache
def openapi_document() -> dict[str, Any]:
    text = resources.files("gateway").joinpath("schemas/openapi.json").read_text()
    doc: dict[str, Any] = json.loads(text)
    return doc


@cache
def validator(component: str) -> jsonschema.protocols.Validator:
    components = openapi_document()["components"]
    schema = {**components["schemas"][component], "components": components}
    cls = jsonschema.validators.validator_for(
        {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    )
    return cls(schema)


MAX_AMOUNT = 1_000_000_000_000
# One sentence for every amount problem, whatever the input: a string, a bool, a decimal,
# zero, a negative or a too-large number.
AMOUNT_RULE = (
    "amount must be a positive integer of the currency's minor units (EUR 10.50 is 1050), "
    f"at most {MAX_AMOUNT}"
)


@cache
def fast_check(component: str) -> Check:
    """Whether a body is valid, in microseconds; `validator` explains why one is not."""
    components = openapi_document()["components"]
    return compile_schema(components["schemas"][component], components["schemas"])


def _code_for(error: jsonschema.ValidationError) -> str:
    field = error.absolute_path[0] if error.absolute_path else None
    if field == "amount" and error.validator != "required":
        return "invalid_amount"
    if field == "currency" and error.validator in ("enum", "pattern", "not"):
        return "unsupported_currency"
    return "invalid_request"


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if _code_for(error) == "invalid_amount":
        return AMOUNT_RULE
    if error.validator == "pattern" and where == "return_url":
        return "return_url must be an http(s) URL"
    if error.validator == "not" and where == "currency":
        return "XXX (no currency) is for demo play only"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s): {', '.join(extra)}" + (f" in {where}" if where else "")
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator in ("enum", "pattern") and where == "currency":
        return f"unsupported currency {error.instance!r}"
    if where == "metadata" and error.validator in ("minLength", "maxLength", "pattern"):
        return "metadata keys are 1-40 characters without '[' or ']'"
    if where.startswith("metadata.") and error.validator in ("type", "maxLength"):
        return "metadata values are strings of at most 80 characters"
    message = error.message if len(error.message) < 200 else error.message[:200] + "..."
    return f"{where}: {message}" if where else message


def validate_body(component: str, body: Any) -> dict[str, Any]:
    """The body if valid, else ApiError with the most specific code of its first problem."""
    if not isinstance(body, dict):
        raise ApiError("invalid_request", "the body must be a JSON object")
    errors = [] if fast_check(component)(body) else sorted(
        validator(component).iter_errors(body), key=lambda e: e.path
    )
    if errors:
        # Money problems first: they are what a frontend most needs to show the player.
        errors.sort(key=lambda e: _code_for(e) == "invalid_request")
        first = errors[0]
        raise ApiError(_code_for(first), _describe(first))
    amount = body.get("amount")
    if isinstance(amount, float):
        # JSON has one number type: 1050.0 is the integer 1050 (JSON Schema agrees), and
        # below 2**53 a float holds it exactly. The schema already refused any fraction.
        body["amount"] = int(amount)
    currency = body.get("currency")
    if component == "LaunchRequest" and currency is not None:
        _check_launch_currency(currency, body["mode"])
    url = body.get("return_url")
    if url is not None and not _is_http_url(url):
        raise ApiError("invalid_request", "return_url must be an http(s) URL")
    return body


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[": an unbalanced IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _check_launch_currency(currency: str, mode: str) -> None:
    if currency == "XXX":
        if mode != "demo":
            raise ApiError(
                "unsupported_currency", "XXX (no currency) is for demo play only"
            )
        return
    if currency not in EXPONENTS:
        raise ApiError("unsupported_currency", f"unsupported currency {currency!r}")
