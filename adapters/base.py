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
import math
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
RefundStatus = Literal["pending", "succeeded", "failed", "canceled"]
# How a card decline reads: "soft" may be approved by another acquirer, "hard" never.
Decline = Literal["soft", "hard"]


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
    `final`: with `failover_safe`, a refusal that took no money but that no other provider
    should see either (a hard decline of the player's card): the client gets it.
    `decline`: for a refused card, the adapter's reading of the provider's reason: "soft"
    (issuer unavailable, a bare "refused": another acquirer may approve it) or "hard"
    (insufficient funds, stolen card, fraud: no other acquirer should be asked).
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
        final: bool = False,
        decline: Decline | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider_code = provider_code
        self.status = status
        self.retry_same = retry_same
        self.failover_safe = failover_safe
        self.rejected = rejected
        self.retry_after_s = retry_after_s
        self.final = final
        self.decline = decline


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
class BankAccount:
    """Where a payout goes, for providers that need it in the request (not Trustly, whose
    player picks the account in its own flow)."""

    iban: str
    holder_name: str


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
    country: str | None = None  # ISO 3166-1 alpha-2, when the client says
    bank_account: BankAccount | None = None  # a payout's destination, when the client says


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """A refund of (part of) a captured deposit, sent to the provider holding the payment."""

    payment_reference: str  # the provider's reference of the payment refunded
    amount: int  # minor units of `currency`
    currency: str
    reference: str  # the gateway's refund id, echoed by the provider where it can
    idempotency_key: str  # the same on every retry of this refund
    reason: str | None = None  # requested_by_customer | duplicate | fraudulent


@dataclass(frozen=True, slots=True)
class RefundResult:
    status: RefundStatus
    provider_reference: str | None  # the provider's id of the refund, if it has one


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
    decline: Decline | None = None  # the adapter's reading of decline_code


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A provider's webhook event, verified and parsed.

    `type` is `payment.<status>` for news about a payment (a deposit or a payout alike) or
    `refund.succeeded|failed|canceled` for news about a refund. A refund event names the
    payment refunded in `provider_reference` and the refund itself in `refund_reference`
    (the provider's id) and `merchant_reference` (the gateway's refund id, where the
    provider echoes it). `withdrawal_type`: for a provider whose event means something else
    when the payment is a payout (Trustly's `credit`), the type it has then.
    """

    event_id: str
    type: str
    provider_reference: str
    merchant_reference: str | None
    amount: int | None
    currency: str | None
    occurred_at: str | None
    refund_reference: str | None = None
    withdrawal_type: str | None = None


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


@runtime_checkable
class RefundingAdapter(Protocol):
    """A payment adapter that can refund (AdapterSpec.refunds)."""

    def refund_request(self, request: RefundRequest) -> UpstreamRequest: ...

    def parse_refund(self, response: UpstreamResponse, request: RefundRequest) -> RefundResult: ...


Adapter = GameAdapter | PaymentAdapter


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """What a module of adapters/ declares about itself, read by config validation.

    `credentials`: keys the adapter needs. `secrets`: those of them that must come from
    `<key>_env` or `<key>_file`, never inline in the YAML. Payment adapters also declare
    what they can take: `payment_types` (deposit, withdrawal) and, per type, each unified
    method type with the currencies it takes (None: any currency): `payment_methods` for
    deposits, `payout_methods` for withdrawals. `refunds`: the adapter refunds deposits
    (`RefundingAdapter`); `refunds_idempotent`: the provider dedupes a refund sent again
    with the same idempotency key, so an unanswered refund may be asked again.
    """

    kind: Kind
    credentials: tuple[str, ...]
    secrets: frozenset[str]
    optional: tuple[str, ...] = ()
    payment_types: frozenset[str] = frozenset()
    payment_methods: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    payout_methods: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    refunds: bool = False
    refunds_idempotent: bool = False

    def methods(self, payment_type: str) -> Mapping[str, frozenset[str] | None]:
        return self.payout_methods if payment_type == "withdrawal" else self.payment_methods

    def refusal(self, payment_type: str, method: str, currency: str) -> str | None:
        """Why this provider cannot take such a payment (the gateway's own words); None if
        it can."""
        if payment_type not in self.payment_types:
            if payment_type == "withdrawal":
                return "cannot pay players out (no withdrawals)"
            return f"does not make {payment_type}s"
        methods = self.methods(payment_type)
        what = "pay out by" if payment_type == "withdrawal" else "offer"
        if method not in methods:
            return f"does not {what} {method}"
        currencies = methods[method]
        if currencies is not None and currency not in currencies:
            return f"takes {method} in {', '.join(sorted(currencies))} only"
        return None

    def serves(
        self, payment_type: str | None, method: str | None, currency: str | None
    ) -> bool:
        """Can it take at least one payment of this kind? None stands for any value."""
        types = [payment_type] if payment_type else sorted(self.payment_types)
        for kind in types:
            if kind not in self.payment_types:
                continue
            for name, currencies in self.methods(kind).items():
                if method is not None and name != method:
                    continue
                if currency is None or currencies is None or currency in currencies:
                    return True
        return False


def json_error_text(body: bytes, limit: int = 200) -> str:
    """A provider body cut short and made printable, for error messages (never secrets)."""
    text = body[:limit].decode("utf-8", errors="replace")
    return " ".join(text.split())


# A provider answer larger than this is not read as JSON (a catalog page of thousands of
# games stays well under it); payment answers and webhooks pass a much smaller bound.
MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_SMALL_JSON_BYTES = 1024 * 1024


def decode_json(body: bytes, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Decode a provider's JSON with every non-integer number as Decimal, never float.

    Bounded: a body over `max_bytes`, or nested deeper than orjson allows (1024 levels), is
    refused like any other malformed body. Raises ValueError on anything that is not JSON;
    the adapter decides what that means.
    """
    if not body:
        raise ValueError("empty body")
    if len(body) > max_bytes:
        raise ValueError(f"body of {len(body)} bytes is over {max_bytes}")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise ValueError("JSON nested too deeply") from None
        # What orjson refuses (integers past 64 bits, NaN) the standard parser may still read;
        # what neither reads raises ValueError from here.
        return _exact(body)
    # orjson is several times faster but reads decimals as floats: most provider answers
    # have none, and the few that do are read again the exact way.
    if _has_float(value):
        return _exact(body)
    return value


def _exact(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=Decimal)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


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


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds: the delay-seconds form only (an HTTP date would need a clock,
    and the providers send seconds); None when absent, a date, negative or not finite."""
    value = header(headers, "Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None

