"""The fast body check says exactly what jsonschema says, for every request schema."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from gateway.http.schema_check import UnsupportedSchema, compile_schema
from gateway.http.validation import fast_check, openapi_document, validator

VALID: dict[str, dict[str, Any]] = {
    "LaunchRequest": {
        "player_id": "player-42",
        "currency": "EUR",
        "mode": "real",
        "platform": "desktop",
        "language": "en",
        "country": "DE",
        "session_token": "sess-1",
        "return_url": "https://casino.example/lobby",
    },
    "PaymentRequest": {
        "type": "deposit",
        "amount": 2500,
        "currency": "EUR",
        "player_id": "player-42",
        "method": {"type": "card"},
        "return_url": "https://casino.example/cashier",
        "metadata": {"campaign": "welcome"},
    },
    "RefundRequest": {"amount": 100, "currency": "EUR", "reason": "requested_by_customer"},
}
POOL: list[Any] = [
    None, True, False, 0, 1, 1.0, 1.5, -1, 2500, 10**12, 10**12 + 1, 2.5e3, "", "x", "X" * 129,
    "Y" * 600, "DE", "de", "DEU", "D1", "EUR", "eur", "real", "demo", "mobile", "deposit",
    "card", "crypto", "https://x.example", "ftp://x", "HTTP://X.example", "XXX", "AAA", "é" * 3,
    [], ["card"], {}, {"type": "card"},
    {"type": "cash"}, {"type": "card", "x": 1}, {"a": "b"}, {"a": 1}, {"k" * 41: "v"},
    {f"k{i}": "v" for i in range(21)}, {f"k{i}": "v" for i in range(20)},
]  # fmt: skip


def mutations(base: dict[str, Any], rng: random.Random) -> list[Any]:
    out: list[Any] = [base, [], "body", None, 7]
    for key in base:
        for value in POOL:
            out.append({**base, key: value})
        out.append({k: v for k, v in base.items() if k != key})
    out += [{**base, "extra": 1}, {"mode": "demo"}, {"mode": "real", "player_id": "p"}]
    for _ in range(1500):
        body = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice([*base, "nope"])
            if rng.random() < 0.2:
                body.pop(key, None)
            else:
                body[key] = rng.choice(POOL)
        out.append(body)
    return out


@pytest.mark.parametrize("component", sorted(VALID))
def test_the_fast_check_agrees_with_jsonschema(component: str):
    fast, slow = fast_check(component), validator(component)
    rng = random.Random(13)
    verdicts = []
    for body in mutations(VALID[component], rng):
        expected = slow.is_valid(body)
        assert fast(body) is expected, body
        verdicts.append(expected)
    assert True in verdicts and False in verdicts and verdicts.count(True) > 20


def test_every_request_schema_compiles():
    schemas = openapi_document()["components"]["schemas"]
    for name in ("LaunchRequest", "PaymentRequest", "RefundRequest"):
        compile_schema(schemas[name], schemas)


@pytest.mark.parametrize(
    "schema",
    [
        {"oneOf": [{"type": "string"}]},
        {"type": "tuple"},
        {"$ref": "https://x"},
        {"uniqueItems": True},
    ],
)
def test_an_unknown_keyword_is_refused_not_ignored(schema: dict[str, Any]):
    with pytest.raises(UnsupportedSchema):
        compile_schema(schema, {})
