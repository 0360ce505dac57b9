"""The seam between the gateway and one provider API.

An adapter translates and nothing else: it turns a unified request into an
`UpstreamRequest` (method, path, headers, signed body) and an `UpstreamResponse`
back into a unified result, or raises `ProviderError` saying what the failure
means for failover. It never opens a socket, so every adapter is tested with
recorded payloads of its provider's real shape.

Exception hierarchy::

    Exception
     +-- ProviderError          the provider answered, and the answer is a failure
     +-- WebhookRejected        an incoming webhook failed verification (issue: webhooks)

Transport failures (refused, timeout, reset) are not the adapter's concern:
`gateway.upstream.transport` reports them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

import orjson

Kind = Literal["games", "payments"]

# Unified operations, the route keys of providers.yaml, and the adapter kind serving each.
OPERATIONS: dict[str, Kind] = {
    "games.list": "games",
    "games.get": "games",
    "games.launch": "games",
    "payments.create": "payments",
    "payments.get": "payments",
}

PaymentStatus = Literal[
    "pending", "requires_action", "processing", "succeeded", "failed", "canceled"
]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    path: str  # path and query string, relative to the provider's base_url
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]  # looked up case-insensitively by the caller's mapping
    body: bytes


class ProviderError(Exception):
    """A provider answered with a failure.

    `failover_safe`: the provider certainly did not act on the request (no money moved,
    no session made), so the next provider may be tried.
    `retry_same`: the outcome is unknown or transient; only the same provider, with the
    same idempotency key, may be asked again.
    `rejected`: a definite refusal of this request as it stands (a 4xx of the provider's).
    """

    def __init__(
        self,
        message: str,
        *,
        provider_code: str | None = None,
        status: int | None = None,
        retry_same: bool = False,
        failover_safe: bool = False,
        rejected: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider_code = provider_code
        self.status = status
        self.retry_same = retry_same
        self.failover_safe = failover_safe
        self.rejected = rejected
        self.retry_after_s = retry_after_s


class WebhookRejected(Exception):
    """An incoming webhook did not verify: bad, missing or stale signature, or bad body."""


# ---- unified inputs and outputs -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderGame:
    """One game as one aggregator sells it, before merging."""

    provider_game_id: str
    name: str
    studio: str
    category: str | None
    rtp: Decimal | None
    volatility: str | None  # low | low-medium | medium | medium-high | high | very-high
    platforms: tuple[str, ...]  # desktop | mobile
    demo: bool
    thumbnail: str | None
    # Countries this aggregator may not offer the game in (ISO 3166-1 alpha-2), as it says.
    blocked_countries: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CatalogPage:
    games: tuple[ProviderGame, ...]
    next_request: UpstreamRequest | None = None  # set while the provider has more pages


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    provider_game_id: str
    player_id: str | None
    currency: str | None
    mode: Literal["real", "demo"]
    language: str | None
    platform: Literal["desktop", "mobile"]
    country: str | None
    return_url: str | None
    session_token: str | None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class LaunchResult:
    url: str


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    type: Literal["deposit", "withdrawal"]
    amount: int  # minor units of `currency`
    currency: str  # upper-case ISO 4217
    player_id: str
    method_type: Literal["card", "ewallet", "bank_transfer", "crypto"]
    return_url: str | None
    metadata: Mapping[str, str]
    reference: str  # the gateway's own reference for this payment, stable across retries
    idempotency_key: str  # forwarded to the provider; the same on every retry


@dataclass(frozen=True, slots=True)
class NextAction:
    type: Literal["redirect", "sdk"]
    url: str | None = None
    provider: str | None = None
    client_secret: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.type == "redirect":
            return {"type": "redirect", "url": self.url}
        return {"type": "sdk", "provider": self.provider, "client_secret": self.client_secret}


@dataclass(frozen=True, slots=True)
class PaymentResult:
    status: PaymentStatus
    provider_reference: str
    amount: int | None = None  # minor units, when the provider says
    currency: str | None = None  # upper-case, when the provider says
    next_action: NextAction | None = None
    decline_code: str | None = None  # provider's reason when status is failed


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A provider's webhook event, verified and parsed (issue: webhooks)."""

    event_id: str
    type: str  # payment.succeeded | payment.failed | ...
    provider_reference: str
    merchant_reference: str | None
    amount: int | None
    currency: str | None
    occurred_at: str | None


# ---- the adapter protocols -------------------------------------------------------------


@runtime_checkable
class GameAdapter(Protocol):
    kind: Literal["games"]

    def catalog_request(self) -> UpstreamRequest: ...

    def parse_catalog(self, response: UpstreamResponse) -> CatalogPage: ...

    def launch_request(self, request: LaunchRequest) -> UpstreamRequest: ...

    def parse_launch(self, response: UpstreamResponse) -> LaunchResult: ...

    def health_request(self) -> UpstreamRequest: ...


@runtime_checkable
class PaymentAdapter(Protocol):
    kind: Literal["payments"]

    def create_request(self, request: PaymentRequest) -> UpstreamRequest: ...

    def parse_create(
        self, response: UpstreamResponse, request: PaymentRequest
    ) -> PaymentResult: ...

    def get_request(self, provider_reference: str) -> UpstreamRequest | None:
        """None when the provider has no API to read a payment back."""
        ...

    def parse_get(self, response: UpstreamResponse) -> PaymentResult: ...

    def health_request(self) -> UpstreamRequest: ...


Adapter = GameAdapter | PaymentAdapter


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """What a module of adapters/ declares about itself, read by config validation.

    `credentials`: keys the adapter needs. `secrets`: those of them that must come from
    `<key>_env` or `<key>_file`, never inline in the YAML.
    """

    kind: Kind
    credentials: tuple[str, ...]
    secrets: frozenset[str]
    optional: tuple[str, ...] = ()


def json_error_text(body: bytes, limit: int = 200) -> str:
    """A provider body cut short and made printable, for error messages (never secrets)."""
    text = body[:limit].decode("utf-8", errors="replace")
    return " ".join(text.split())


def decode_json(body: bytes) -> Any:
    """Decode a provider's JSON with every non-integer number as Decimal, never float.

    Raises ValueError on anything that is not JSON; the adapter decides what that means.
    """
    if not body:
        raise ValueError("empty body")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        # What orjson refuses (integers past 64 bits, NaN) the standard parser may still read;
        # what neither reads raises ValueError from here.
        return json.loads(body, parse_float=Decimal)
    # orjson is several times faster but reads decimals as floats: most provider answers
    # have none, and the few that do are read again the exact way.
    if _has_float(value):
        return json.loads(body, parse_float=Decimal)
    return value


def _has_float(value: Any) -> bool:
    # A loop over exact types: this runs on every provider answer.
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            return True
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for key, val in headers.items():
        if key.lower() == lower:
            return val
    return None
