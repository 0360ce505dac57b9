"""A fast yes/no for request bodies against the OpenAPI document's schemas.

`jsonschema` takes about 100 us to accept a launch or payment body; this takes a few. The
subset of JSON Schema the request schemas use is compiled once into nested closures that
only say whether a body is valid. A valid body needs nothing more; an invalid one is
checked again by `jsonschema`, whose errors name the problem. A keyword this module does
not know makes `compile_schema` refuse the schema, so it is never silently ignored.

Semantics follow `jsonschema` (draft 2020-12) as the gateway configures it: `pattern` is
a search, not a full match; 1.0 is an integer; true is not 1; `format` is an annotation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]
_IGNORED = frozenset({"description", "format", "title", "examples", "default", "$comment"})


class UnsupportedSchema(Exception):
    """The schema uses a keyword this compiler does not implement."""


def _is_type(name: str, value: Any) -> bool:
    kind = type(value)
    if name == "string":
        return kind is str
    if name == "object":
        return kind is dict
    if name == "array":
        return kind is list
    if name == "boolean":
        return kind is bool
    if name == "null":
        return value is None
    if name == "integer":
        return kind is int or (kind is float and value.is_integer())
    if name == "number":
        return kind is int or kind is float
    raise UnsupportedSchema(f"type {name!r}")


def _equal(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def compile_schema(schema: Any, components: Mapping[str, Any]) -> Check:
    if schema is True:
        return lambda value: True
    if schema is False:
        return lambda value: False
    if not isinstance(schema, dict):
        raise UnsupportedSchema(f"schema {schema!r}")
    checks: list[Check] = []
    for keyword, arg in schema.items():
        if keyword in _IGNORED or keyword in _OBJECT or keyword in ("if", "then", "else"):
            continue  # the object keywords and if/then/else are compiled together below
        checks.append(_keyword(keyword, arg, components))
    if any(k in schema for k in _OBJECT):
        checks.append(_object(schema, components))
    if "if" in schema:
        condition = compile_schema(schema["if"], components)
        then = compile_schema(schema.get("then", True), components)
        otherwise = compile_schema(schema.get("else", True), components)
        checks.append(lambda v: then(v) if condition(v) else otherwise(v))
    return _all(checks)


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)

    def every(value: Any) -> bool:
        # A loop, not all(generator): this runs on every request body.
        for check in checks:  # noqa: SIM110
            if not check(value):
                return False
        return True

    return every


_OBJECT = ("properties", "additionalProperties", "required", "maxProperties", "propertyNames")


def _object(schema: dict[str, Any], components: Mapping[str, Any]) -> Check:
    """properties, additionalProperties, required, maxProperties, propertyNames: one pass."""
    if "patternProperties" in schema:
        raise UnsupportedSchema("patternProperties")
    props = {
        name: compile_schema(sub, components) for name, sub in schema.get("properties", {}).items()
    }
    extra = compile_schema(schema.get("additionalProperties", True), components)
    required = tuple(schema.get("required", ()))
    max_props = schema.get("maxProperties")
    names = compile_schema(schema.get("propertyNames", True), components)

    def check(value: Any) -> bool:
        if type(value) is not dict:
            return True
        if max_props is not None and len(value) > max_props:
            return False
        for name in required:
            if name not in value:
                return False
        for name, item in value.items():
            if not names(name):
                return False
            sub = props.get(name, extra)
            if not sub(item):
                return False
        return True

    return check


def _type_check(arg: Any) -> Check:
    names = tuple(arg) if isinstance(arg, list) else (arg,)
    for name in names:
        _is_type(name, None)  # unknown names are refused now, not on a request
    if names == ("string",):
        return lambda v: type(v) is str
    if names == ("object",):
        return lambda v: type(v) is dict
    if names == ("integer",):
        return lambda v: type(v) is int or (type(v) is float and v.is_integer())
    return lambda v: any(_is_type(n, v) for n in names)


def _keyword(keyword: str, arg: Any, components: Mapping[str, Any]) -> Check:
    if keyword == "$ref":
        prefix = "#/components/schemas/"
        if not isinstance(arg, str) or not arg.startswith(prefix):
            raise UnsupportedSchema(f"$ref {arg!r}")
        return compile_schema(components[arg.removeprefix(prefix)], components)
    if keyword == "type":
        return _type_check(arg)
    if keyword == "enum":
        if all(type(option) is str for option in arg):
            options = frozenset(arg)  # only a string can equal a string
            return lambda v: type(v) is str and v in options
        return lambda v: any(_equal(v, option) for option in arg)
    if keyword == "const":
        return lambda v: _equal(v, arg)
    if keyword == "not":
        inner = compile_schema(arg, components)
        return lambda v: not inner(v)
    if keyword == "minLength":
        return lambda v: type(v) is not str or len(v) >= arg
    if keyword == "maxLength":
        return lambda v: type(v) is not str or len(v) <= arg
    if keyword == "pattern":
        search = re.compile(arg).search
        return lambda v: type(v) is not str or search(v) is not None
    if keyword == "minimum":
        return lambda v: not _is_number(v) or v >= arg
    if keyword == "maximum":
        return lambda v: not _is_number(v) or v <= arg
    raise UnsupportedSchema(keyword)


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float
