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


@cache
def fast_check(component: str) -> Check:
    """Whether a body is valid, in microseconds; `validator` explains why one is not."""
    components = openapi_document()["components"]
    return compile_schema(components["schemas"][component], components["schemas"])


def _code_for(error: jsonschema.ValidationError) -> str:
    field = error.absolute_path[0] if error.absolute_path else None
    if (
        field == "amount"
        and isinstance(error.instance, int | float)
        and not isinstance(error.instance, bool)
    ):
        return "invalid_amount"
    if field == "currency" and error.validator == "enum":
        return "unsupported_currency"
    return "invalid_request"


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s): {', '.join(extra)}" + (f" in {where}" if where else "")
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "enum" and where == "currency":
        return f"unsupported currency {error.instance!r}"
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
        raise ApiError("invalid_amount", "amount must be an integer of minor units, not a decimal")
    url = body.get("return_url")
    if url is not None and urlsplit(url).scheme not in ("http", "https"):
        raise ApiError("invalid_request", "return_url must be an http(s) URL")
    return body
