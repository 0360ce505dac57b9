"""Bad input over real sockets: the exact 4xx and problem `code`, and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from gateway.http.validation import AMOUNT_RULE
from gateway.payments import ids as payment_ids
from gateway.problems import CODES, TYPE_BASE
from tests.conftest import GatewayUnderTest, MakeGateway

PROBLEM = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id"}
# A generated id: long enough to be unique, only characters safe in headers and logs.
GENERATED_ID = re.compile(r"^[A-Za-z0-9_.:-]{16,128}$")
STRIPE_CREATE = "/v1/payment_intents"
ADYEN_CREATE = "/v71/payments"
HUB88_LAUNCH = "/operator/generic/v2/game/url"
SLOT_INIT = "/games/init"
DEPOSIT: dict[str, Any] = {
    "type": "deposit",
    "amount": 2500,
    "currency": "EUR",
    "player_id": "player-42",
    "method": {"type": "card"},
}
REAL_LAUNCH = {
    "player_id": "player-42",
    "currency": "EUR",
    "mode": "real",
    "platform": "desktop",
    "session_token": "sess-1",
}
GAME = "pragmatic-play:sweet-bonanza"


async def expect_problem(
    resp: aiohttp.ClientResponse, status: int, code: str, detail: str | None = None
) -> dict[str, Any]:
    body = await resp.json(content_type=None)
    assert (resp.status, body.get("code")) == (status, code), body
    assert resp.content_type == PROBLEM
    assert set(body) == PROBLEM_FIELDS
    assert body["type"] == TYPE_BASE + code.replace("_", "-")
    assert body["title"] == CODES[code][1]
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    if detail is not None:
        assert body["detail"] == detail
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return body


def with_(**changes: Any) -> dict[str, Any]:
    return {**DEPOSIT, **changes}


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in DEPOSIT.items() if k != field}


async def post_payment(
    gw: GatewayUnderTest,
    data: bytes,
    content_type: str | None = "application/json",
    key: str | None = "key-1",
) -> aiohttp.ClientResponse:
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if key is not None:
        headers["Idempotency-Key"] = key
    return await gw.client.post("/v1/payments", data=data, headers=headers)


async def still_serves_payments(gw: GatewayUnderTest) -> None:
    resp = await gw.client.post(
        "/v1/payments", json=DEPOSIT, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert resp.status == 201
    body = await resp.json()
    assert (body["provider"], body["amount"], body["currency"]) == ("stripe", 2500, "EUR")


async def still_serves_games(gw: GatewayUnderTest) -> None:
    resp = await gw.client.post(f"/v1/games/{GAME}/launch", json=REAL_LAUNCH)
    assert resp.status == 200
    assert (await resp.json())["provider"] == "hub88"


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


async def each_case(cases: list[tuple[Any, ...]], check: Callable[..., Awaitable[None]]) -> None:
    """Try every case of a table, then fail once, naming each case that failed."""
    failed = []
    for case_id, *args in cases:
        try:
            await check(*args)
        except AssertionError as exc:
            failed.append(f"{case_id}: {exc}")
    assert not failed, "\n".join(failed)


# ---- POST /v1/payments: the body ----------------------------------------------------------

BAD_PAYMENTS = [
    (
        "not-json",
        b'{"type": "deposit", "amount": 2500',
        "application/json",
        400,
        "invalid_request",
        "the body is not valid JSON",
    ),
    ("empty", b"", "application/json", 400, "invalid_request", "the body is not valid JSON"),
    (
        "not-utf8",
        b"\xff\xfe{}",
        "application/json",
        400,
        "invalid_request",
        "the body is not valid JSON",
    ),
    (
        "text-plain",
        dumps(DEPOSIT),
        "text/plain",
        415,
        "unsupported_media_type",
        "send the body as application/json",
    ),
    (
        "form",
        b"type=deposit&amount=2500",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        "send the body as application/json",
    ),
    (
        "missing-field",
        dumps(without("player_id")),
        "application/json",
        400,
        "invalid_request",
        "'player_id' is required",
    ),
    (
        "extra-field",
        dumps(with_(bonus="yes")),
        "application/json",
        400,
        "invalid_request",
        "unknown field(s): bonus",
    ),
    (
        "extra-nested-field",
        dumps(with_(method={"type": "card", "pan": "4242424242424242"})),
        "application/json",
        400,
        "invalid_request",
        "unknown field(s): pan in method",
    ),
    (
        "amount-string",
        dumps(with_(amount="100")),
        "application/json",
        422,
        "invalid_amount",
        AMOUNT_RULE,
    ),
    (
        "amount-bool",
        dumps(with_(amount=True)),
        "application/json",
        422,
        "invalid_amount",
        AMOUNT_RULE,
    ),
    (
        "amount-fraction",
        dumps(with_(amount=10.5)),
        "application/json",
        422,
        "invalid_amount",
        AMOUNT_RULE,
    ),
    (
        "amount-negative",
        dumps(with_(amount=-5)),
        "application/json",
        422,
        "invalid_amount",
        AMOUNT_RULE,
    ),
    (
        "amount-zero",
        dumps(with_(amount=0)),
        "application/json",
        422,
        "invalid_amount",
        AMOUNT_RULE,
    ),
    (
        "amount-too-large",
        dumps(with_(amount=10**12 + 1)),
        "application/json",
        422,
        "invalid_amount",
        AMOUNT_RULE,
    ),
    (
        "money-problem-first",
        dumps(with_(amount=-5, bonus="yes")),
        "application/json",
        422,
        "invalid_amount",
        AMOUNT_RULE,
    ),
    (
        "currency-unknown",
        dumps(with_(currency="XYZ")),
        "application/json",
        422,
        "unsupported_currency",
        "unsupported currency 'XYZ'",
    ),
    (
        "currency-lower-case",
        dumps(with_(currency="eur")),
        "application/json",
        422,
        "unsupported_currency",
        "unsupported currency 'eur'",
    ),
    (
        "array",
        dumps([DEPOSIT]),
        "application/json",
        400,
        "invalid_request",
        "the body must be a JSON object",
    ),
    (
        "string",
        b'"deposit"',
        "application/json",
        400,
        "invalid_request",
        "the body must be a JSON object",
    ),
    ("null", b"null", "application/json", 400, "invalid_request", "the body must be a JSON object"),
    (
        "method-type-unknown",
        dumps(with_(method={"type": "cheque"})),
        "application/json",
        400,
        "invalid_request",
        None,
    ),
    (
        "type-unknown",
        dumps(with_(type="bonus")),
        "application/json",
        400,
        "invalid_request",
        "type: 'bonus' is not one of ['deposit', 'withdrawal']",
    ),
    (
        "return-url-scheme",
        dumps(with_(return_url="javascript:alert(1)")),
        "application/json",
        400,
        "invalid_request",
        "return_url must be an http(s) URL",
    ),
    (
        "metadata-key-with-brackets",
        dumps(with_(metadata={"a[b]": "x"})),
        "application/json",
        400,
        "invalid_request",
        "metadata keys are 1-40 characters without '[' or ']'",
    ),
    (
        "metadata-empty-key",
        dumps(with_(metadata={"": "x"})),
        "application/json",
        400,
        "invalid_request",
        "metadata keys are 1-40 characters without '[' or ']'",
    ),
    (
        "metadata-long-value",
        dumps(with_(metadata={"note": "x" * 81})),
        "application/json",
        400,
        "invalid_request",
        "metadata values are strings of at most 80 characters",
    ),
    (
        "metadata-not-string",
        dumps(with_(metadata={"campaign": 7})),
        "application/json",
        400,
        "invalid_request",
        "metadata values are strings of at most 80 characters",
    ),
]


async def test_bad_payment_bodies(gw: GatewayUnderTest):
    async def check(data: bytes, content_type: str, status: int, code: str, detail: str | None):
        resp = await post_payment(gw, data, content_type, key=uuid.uuid4().hex)
        await expect_problem(resp, status, code, detail)
        await still_serves_payments(gw)

    await each_case(BAD_PAYMENTS, check)
    # Only the good payments in between reached a provider.
    assert gw.calls("stripe", STRIPE_CREATE) == len(BAD_PAYMENTS)
    assert gw.calls("adyen", ADYEN_CREATE) == 0


async def test_unknown_method_type_names_the_field(gw: GatewayUnderTest):
    resp = await post_payment(gw, dumps(with_(method={"type": "cheque"})))
    body = await expect_problem(resp, 400, "invalid_request")
    assert body["detail"].startswith("method.type: 'cheque' is not one of ")


async def test_json_with_charset_is_accepted(gw: GatewayUnderTest):
    resp = await post_payment(gw, dumps(DEPOSIT), "application/json; charset=utf-8")
    assert resp.status == 201


async def test_missing_idempotency_key(gw: GatewayUnderTest):
    resp = await post_payment(gw, dumps(DEPOSIT), key=None)
    await expect_problem(resp, 400, "idempotency_key_required", "send an Idempotency-Key header")
    resp = await post_payment(gw, dumps(DEPOSIT), key="")
    await expect_problem(resp, 400, "idempotency_key_required", "send an Idempotency-Key header")
    # The key is checked before the body.
    resp = await post_payment(gw, b"not json", key=None)
    await expect_problem(resp, 400, "idempotency_key_required")
    assert gw.calls("stripe", STRIPE_CREATE) == 0
    await still_serves_payments(gw)


async def test_malformed_idempotency_key(gw: GatewayUnderTest):
    async def check(key: str):
        resp = await post_payment(gw, dumps(DEPOSIT), key=key)
        await expect_problem(
            resp, 400, "invalid_request", "Idempotency-Key must be 1-255 printable characters"
        )

    await each_case([("space", "has space"), ("256-chars", "k" * 256), ("tab", "a\tb")], check)
    assert gw.calls("stripe", STRIPE_CREATE) == 0
    resp = await post_payment(gw, dumps(DEPOSIT), key="k" * 255)
    assert resp.status == 201


async def test_oversized_body_with_the_default_limit(gw: GatewayUnderTest):
    padded = dumps(DEPOSIT).ljust(65537)
    resp = await post_payment(gw, padded)
    await expect_problem(resp, 413, "payload_too_large", "the body is over 65536 bytes")
    assert gw.calls("stripe", STRIPE_CREATE) == 0
    resp = await post_payment(gw, dumps(DEPOSIT).ljust(65536), key="key-at-limit")
    assert resp.status == 201
    await still_serves_payments(gw)


async def test_oversized_body_with_a_configured_limit(make_gateway: MakeGateway):
    gw = await make_gateway({"max_body_bytes": 1024})
    resp = await post_payment(gw, dumps(DEPOSIT).ljust(1025))
    await expect_problem(resp, 413, "payload_too_large", "the body is over 1024 bytes")
    # Size is checked before the content type.
    resp = await post_payment(gw, b"x" * 5000, "text/plain")
    await expect_problem(resp, 413, "payload_too_large", "the body is over 1024 bytes")
    resp = await gw.client.post(f"/v1/games/{GAME}/launch", data=b" " * 1025)
    await expect_problem(resp, 413, "payload_too_large", "the body is over 1024 bytes")
    assert gw.calls("stripe", STRIPE_CREATE) == 0
    resp = await post_payment(gw, dumps(DEPOSIT).ljust(1024), key="key-at-limit")
    assert resp.status == 201
    await still_serves_payments(gw)


async def chunks(*parts: bytes, pause_s: float = 0.05) -> AsyncIterator[bytes]:
    for i, part in enumerate(parts):
        if i:
            await asyncio.sleep(pause_s)
        yield part


async def test_oversized_chunked_body(make_gateway: MakeGateway):
    gw = await make_gateway({"max_body_bytes": 1024})
    resp = await gw.client.post(
        "/v1/payments",
        data=chunks(b"[" + b" " * 600, b" " * 600 + b"]"),  # no Content-Length
        headers={"Idempotency-Key": "key-1", "Content-Type": "application/json"},
    )
    await expect_problem(resp, 413, "payload_too_large", "the body is over 1024 bytes")
    await still_serves_payments(gw)


async def test_body_arriving_in_pieces_is_read_whole(gw: GatewayUnderTest):
    raw = dumps(DEPOSIT)
    resp = await gw.client.post(
        "/v1/payments",
        data=chunks(raw[:20], raw[20:]),
        headers={"Idempotency-Key": "key-1", "Content-Type": "application/json"},
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["amount"] == 2500


# ---- POST /v1/games/{id}/launch --------------------------------------------------------------

BAD_LAUNCHES = [
    ("mode-missing", {}, 400, "invalid_request", "'mode' is required"),
    (
        "mode-unknown",
        {"mode": "practice"},
        400,
        "invalid_request",
        "mode: 'practice' is not one of ['real', 'demo']",
    ),
    (
        "real-without-player",
        {k: v for k, v in REAL_LAUNCH.items() if k != "player_id"},
        400,
        "invalid_request",
        "'player_id' is required",
    ),
    ("real-without-anything", {"mode": "real"}, 400, "invalid_request", "'player_id' is required"),
    (
        "bad-platform",
        {**REAL_LAUNCH, "platform": "tv"},
        400,
        "invalid_request",
        "platform: 'tv' is not one of ['desktop', 'mobile']",
    ),
    (
        "bad-country",
        {**REAL_LAUNCH, "country": "fr"},
        400,
        "invalid_request",
        "country: 'fr' does not match '^[A-Z]{2}$'",
    ),
    (
        "extra-field",
        {**REAL_LAUNCH, "jurisdiction": "MT"},
        400,
        "invalid_request",
        "unknown field(s): jurisdiction",
    ),
    (
        "return-url-scheme",
        {**REAL_LAUNCH, "return_url": "ftp://casino.example"},
        400,
        "invalid_request",
        "return_url must be an http(s) URL",
    ),
    ("array", [REAL_LAUNCH], 400, "invalid_request", "the body must be a JSON object"),
    (
        "currency-not-iso",
        {**REAL_LAUNCH, "currency": "EURO"},
        422,
        "unsupported_currency",
        "unsupported currency 'EURO'",
    ),
    (
        "currency-unknown",
        {**REAL_LAUNCH, "currency": "ABC"},
        422,
        "unsupported_currency",
        "unsupported currency 'ABC'",
    ),
    (
        "no-currency-for-real-money",
        {**REAL_LAUNCH, "currency": "XXX"},
        422,
        "unsupported_currency",
        "XXX (no currency) is for demo play only",
    ),
]


async def test_bad_launch_bodies(gw: GatewayUnderTest):
    async def check(body: Any, status: int, code: str, detail: str):
        resp = await gw.client.post(f"/v1/games/{GAME}/launch", json=body)
        await expect_problem(resp, status, code, detail)
        await still_serves_games(gw)

    await each_case(BAD_LAUNCHES, check)
    # Only the good launches in between reached an aggregator.
    assert gw.calls("hub88", HUB88_LAUNCH) == len(BAD_LAUNCHES)
    assert gw.calls("slotegrator", SLOT_INIT) == 0


async def test_launch_body_not_json(gw: GatewayUnderTest):
    url = f"/v1/games/{GAME}/launch"
    resp = await gw.client.post(
        url, data=b"{mode: demo}", headers={"Content-Type": "application/json"}
    )
    await expect_problem(resp, 400, "invalid_request", "the body is not valid JSON")
    resp = await gw.client.post(
        url, data=b'{"mode": "demo"}', headers={"Content-Type": "text/plain"}
    )
    await expect_problem(resp, 415, "unsupported_media_type", "send the body as application/json")
    await still_serves_games(gw)


async def test_launch_of_unknown_game(gw: GatewayUnderTest):
    resp = await gw.client.post("/v1/games/netent:no-such-game/launch", json=REAL_LAUNCH)
    await expect_problem(resp, 404, "not_found", "no game 'netent:no-such-game'")
    assert gw.calls("hub88", HUB88_LAUNCH) == 0
    await still_serves_games(gw)


async def test_get_unknown_game(gw: GatewayUnderTest):
    resp = await gw.client.get("/v1/games/no-such-studio:nothing")
    await expect_problem(resp, 404, "not_found", "no game 'no-such-studio:nothing'")


# ---- GET /v1/payments/{id} ---------------------------------------------------------------------


def forged_id(*fields: str) -> str:
    return "pay_" + base64.urlsafe_b64encode("\x1f".join(fields).encode()).decode().rstrip("=")


BAD_PAYMENT_IDS = [
    ("garbage", "garbage"),
    ("empty", "pay_"),
    ("not-base64", "pay_!!!!"),
    ("too-few-fields", "pay_QUJD"),
    ("too-long", "pay_" + "A" * 600),
    ("not-utf8", "pay_" + base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode()),
    ("bad-version", forged_id("2", "stripe", "gw_x", "pi_x", "100", "EUR", "1")),
    ("bad-amount", forged_id("1", "stripe", "gw_x", "pi_x", "1e3", "EUR", "1")),
    ("no-provider", forged_id("1", "", "gw_x", "pi_x", "100", "EUR", "1")),
]


async def test_unknown_payment_ids(gw: GatewayUnderTest):
    async def check(payment_id: str):
        resp = await gw.client.get(f"/v1/payments/{payment_id}")
        await expect_problem(resp, 404, "not_found", f"no payment '{payment_id}'")

    await each_case(BAD_PAYMENT_IDS, check)
    assert gw.calls("stripe", "/v1/payment_intents/pi_x") == 0
    await still_serves_payments(gw)


async def test_well_formed_id_of_a_payment_the_provider_does_not_know(gw: GatewayUnderTest):
    ref = payment_ids.PaymentRef(
        "stripe", "gw_" + "0" * 24, "pi_doesnotexist", 2500, "EUR", int(time.time())
    )
    payment_id = payment_ids.encode(ref, None)
    resp = await gw.client.get(f"/v1/payments/{payment_id}")
    await expect_problem(resp, 404, "not_found", f"no payment '{payment_id}'")
    await still_serves_payments(gw)


def flip(text: str, at: int) -> str:
    return text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1 :]


async def test_tampered_payment_id_with_a_signing_secret(make_gateway: MakeGateway):
    gw = await make_gateway(
        {"payment_id_secret_env": "PAYMENT_ID_SECRET"},
        env={"PAYMENT_ID_SECRET": "test-payment-id-secret-0123456789"},
    )
    resp = await gw.client.post("/v1/payments", json=DEPOSIT, headers={"Idempotency-Key": "key-1"})
    assert resp.status == 201
    payment_id = (await resp.json())["payment_id"]
    body, _, tag = payment_id.removeprefix("pay_").partition(".")
    assert tag
    assert (await gw.client.get(f"/v1/payments/{payment_id}")).status == 200
    tampered = [
        "pay_" + flip(body, 10) + "." + tag,  # payload changed
        "pay_" + body + "." + flip(tag, 3),  # tag changed
        "pay_" + body,  # tag stripped
        "pay_" + body + ".",  # tag emptied
    ]
    for bad in tampered:
        resp = await gw.client.get(f"/v1/payments/{bad}")
        await expect_problem(resp, 404, "not_found", f"no payment '{bad}'")
    await still_serves_payments(gw)


# ---- routing, methods, query -----------------------------------------------------------------


async def test_unknown_paths(gw: GatewayUnderTest):
    async def check(path: str):
        resp = await gw.client.get(path)
        await expect_problem(resp, 404, "not_found", "Not Found")
        assert (await gw.client.get("/healthz")).status == 200

    paths = ["/", "/nope", "/v1", "/v1/game", "/v2/games", "/v1/games/a/b/c", "/V1/games"]
    await each_case([(p, p) for p in paths], check)


async def test_wrong_methods(gw: GatewayUnderTest):
    async def check(method: str, path: str):
        resp = await gw.client.request(method, path)
        await expect_problem(resp, 405, "method_not_allowed", "Method Not Allowed")
        assert (await gw.client.get("/healthz")).status == 200

    cases = [
        ("DELETE", "/v1/games"),
        ("POST", "/v1/games"),
        ("PUT", "/v1/payments"),
        ("GET", "/v1/payments"),
        ("GET", f"/v1/games/{GAME}/launch"),
        ("PATCH", "/v1/payments/pay_x"),
        ("POST", "/healthz"),
    ]
    await each_case([(f"{m} {p}", m, p) for m, p in cases], check)


def allowed(resp: aiohttp.ClientResponse) -> set[str]:
    return {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}


async def test_wrong_method_says_which_are_allowed(gw: GatewayUnderTest):
    # RFC 9110 section 15.5.6: a 405 carries Allow. OPTIONS is not in it: a plain OPTIONS is
    # itself a 405 (it is answered only as a CORS preflight).
    resp = await gw.client.delete("/v1/games")
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET, HEAD"
    resp = await gw.client.get("/v1/payments")
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    options = await gw.client.options("/v1/payments")
    assert options.status == 405


BAD_QUERIES = [
    ("page-0", {"page": "0"}, "page must be an integer from 1 to 1000000"),
    ("page-negative", {"page": "-1"}, "page must be an integer from 1 to 1000000"),
    ("page-fraction", {"page": "1.5"}, "page must be an integer from 1 to 1000000"),
    ("page-text", {"page": "abc"}, "page must be an integer from 1 to 1000000"),
    ("page-empty", {"page": ""}, "page must be an integer from 1 to 1000000"),
    ("page-high", {"page": "1000001"}, "page must be an integer from 1 to 1000000"),
    ("page_size-501", {"page_size": "501"}, "page_size must be an integer from 1 to 500"),
    ("page_size-0", {"page_size": "0"}, "page_size must be an integer from 1 to 500"),
    ("unknown-param", {"foo": "bar"}, "unknown query parameter(s): foo"),
    (
        "unknown-params",
        {"sort": "name", "limit": "5", "q": "book"},
        "unknown query parameter(s): limit, sort",
    ),
]


async def test_bad_queries(gw: GatewayUnderTest):
    async def check(params: dict[str, str], detail: str):
        resp = await gw.client.get("/v1/games", params=params)
        await expect_problem(resp, 400, "invalid_request", detail)
        resp = await gw.client.get("/v1/games", params={"page": "2", "page_size": "5"})
        assert resp.status == 200
        meta = (await resp.json())["meta"]
        assert (meta["total"], meta["page"], meta["page_size"]) == (34, 2, 5)

    await each_case(BAD_QUERIES, check)


async def test_page_numbers_that_only_look_like_digits(gw: GatewayUnderTest):
    # str.isdigit() accepts each of these, int() parses none of them.
    async def check(name: str, value: str, detail: str):
        resp = await gw.client.get("/v1/games", params={name: value})
        await expect_problem(resp, 400, "invalid_request", detail)

    cases = [
        ("superscript-two", "page", "\u00b2", "page must be an integer from 1 to 1000000"),
        ("over-int-digit-limit", "page", "9" * 5000, "page must be an integer from 1 to 1000000"),
        ("circled-one", "page_size", "\u2460", "page_size must be an integer from 1 to 500"),
    ]
    await each_case(cases, check)
    assert (await gw.client.get("/v1/games")).status == 200


# ---- request ids -----------------------------------------------------------------------------


async def test_every_response_carries_a_request_id(gw: GatewayUnderTest):
    responses = [
        await gw.client.get("/healthz"),
        await gw.client.get("/readyz"),
        await gw.client.get("/openapi.json"),
        await gw.client.get("/v1/games"),
        await gw.client.get("/v1/games/netent:starburst"),
        await gw.client.get("/v1/games/netent:nothing"),
        await gw.client.get("/v1/payments/garbage"),
        await gw.client.get("/nope"),
        await gw.client.delete("/v1/games"),
        await gw.client.post(f"/v1/games/{GAME}/launch", json={"mode": "demo"}),
        await post_payment(gw, dumps(DEPOSIT)),
        await post_payment(gw, b"[", key="key-2"),
    ]
    assert [r.status for r in responses] == [
        200,
        200,
        200,
        200,
        200,
        404,
        404,
        404,
        405,
        200,
        201,
        400,
    ]
    ids = [r.headers["X-Request-ID"] for r in responses]
    assert all(GENERATED_ID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


async def test_client_request_id_is_echoed(gw: GatewayUnderTest):
    async def check(given: str):
        resp = await gw.client.get("/v1/games", headers={"X-Request-ID": given})
        assert resp.status == 200
        assert resp.headers["X-Request-ID"] == given
        headers = {
            "X-Request-ID": given,
            "Idempotency-Key": "key-1",
            "Content-Type": "application/json",
        }
        resp = await gw.client.post("/v1/payments", data=b"[", headers=headers)
        body = await expect_problem(resp, 400, "invalid_request")
        assert body["request_id"] == given

    await each_case([(g, g) for g in ("abc-123", "trace.01:span_02", "x" * 128)], check)


async def test_unsafe_request_id_is_replaced(gw: GatewayUnderTest):
    async def check(given: str):
        headers = {
            "X-Request-ID": given,
            "Idempotency-Key": "key-1",
            "Content-Type": "application/json",
        }
        resp = await gw.client.post("/v1/payments", data=b"[", headers=headers)
        body = await expect_problem(resp, 400, "invalid_request")
        assert GENERATED_ID.match(body["request_id"]), body["request_id"]
        assert body["request_id"] != given
        resp = await gw.client.get("/healthz", headers={"X-Request-ID": given})
        assert resp.status == 200
        assert GENERATED_ID.match(resp.headers["X-Request-ID"])
        assert resp.headers["X-Request-ID"] not in (given, body["request_id"])

    cases = [
        ("500-chars", "x" * 500),
        ("129-chars", "x" * 129),
        ("space", "abc 123"),
        ("shell", "abc;rm -rf /"),
        ("markup", "<script>alert(1)</script>"),
        ("non-ascii", "caf\u00e9"),
        ("empty", ""),
    ]
    await each_case(cases, check)
