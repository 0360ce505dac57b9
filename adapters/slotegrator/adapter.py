"""Slotegrator GIS game aggregator: the merchant API (game list and game launch).

Every request carries `X-Merchant-Id`, `X-Timestamp` (unix seconds), `X-Nonce` and `X-Sign`:
hex HMAC-SHA1 with the merchant key over the URL-encoded request parameters (query for GET,
form fields for POST) merged with the three other headers, keys sorted. POST bodies are
`application/x-www-form-urlencoded`. Errors come back as `{"name", "message", "status"}`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeGuard
from urllib.parse import parse_qs, urlencode, urlsplit

from adapters.aggregator_answers import success_json
from adapters.base import (
    AdapterSpec,
    CatalogPage,
    LaunchRequest,
    LaunchResult,
    ProviderError,
    ProviderGame,
    UpstreamRequest,
    UpstreamResponse,
    decode_json,
    header,
    json_error_text,
)
from adapters.slotegrator.signing import sign
from adapters.slotegrator.wallet import SlotegratorWallet

SPEC = AdapterSpec(
    kind="games",
    credentials=("merchant_id", "merchant_key"),
    secrets=frozenset({"merchant_key"}),
)

GAMES_PATH = "/games"
INIT_PATH = "/games/init"
INIT_DEMO_PATH = "/games/init-demo"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

VOLATILITIES = frozenset({"low", "low-medium", "medium", "medium-high", "high", "very-high"})

# A provider that keeps answering pages without saying how many there are must not keep
# the catalog refresh going forever.
MAX_PAGES = 1000

Clock = Callable[[], float]
Nonce = Callable[[], str]


def _default_nonce() -> str:
    return secrets.token_hex(16)


class SlotegratorAdapter:
    kind: Literal["games"] = "games"

    def __init__(
        self,
        name: str,
        merchant_id: str,
        merchant_key: str,
        *,
        clock: Clock = time.time,
        nonce: Nonce = _default_nonce,
    ) -> None:
        self.name = name
        self.merchant_id = merchant_id
        self._merchant_key = merchant_key.encode("utf-8")
        self.clock = clock
        self.nonce = nonce
        self.wallet: SlotegratorWallet | None = None

    def __repr__(self) -> str:
        # The merchant key never appears in logs or tracebacks.
        return f"SlotegratorAdapter(name={self.name!r}, merchant_id={self.merchant_id!r})"

    # ---- requests ----------------------------------------------------------------------

    def catalog_request(self) -> UpstreamRequest:
        return self._signed_get(GAMES_PATH, {"page": "1"})

    def health_request(self) -> UpstreamRequest:
        # The smallest signed call there is: it proves the merchant credentials still work.
        return self._signed_get(GAMES_PATH, {"page": "1", "per-page": "1"})

    def launch_request(self, request: LaunchRequest) -> UpstreamRequest:
        if request.mode == "demo":
            path = INIT_DEMO_PATH
            fields: dict[str, str | None] = {
                "game_uuid": request.provider_game_id,
                "device": request.platform,
                "return_url": request.return_url,
                "language": request.language,
            }
        else:
            path = INIT_PATH
            fields = {
                "game_uuid": request.provider_game_id,
                "player_id": request.player_id,
                # The player id is pseudonymous already; a real name is never sent.
                "player_name": request.player_id,
                "currency": request.currency,
                "session_id": request.session_token,
                "device": request.platform,
                "return_url": request.return_url,
                "language": request.language,
            }
        form = {key: value for key, value in fields.items() if value is not None}
        return UpstreamRequest(
            method="POST",
            path=path,
            headers={**self._auth_headers(form), "Content-Type": FORM_CONTENT_TYPE},
            body=urlencode(form).encode("ascii"),
        )

    def _signed_get(self, path: str, query: Mapping[str, str]) -> UpstreamRequest:
        return UpstreamRequest(
            method="GET", path=f"{path}?{urlencode(query)}", headers=self._auth_headers(query)
        )

    def _auth_headers(self, params: Mapping[str, str]) -> dict[str, str]:
        auth = {
            "X-Merchant-Id": self.merchant_id,
            "X-Timestamp": str(int(self.clock())),
            "X-Nonce": self.nonce(),
        }
        return {**auth, "X-Sign": self.sign({**params, **auth}), "Accept": "application/json"}

    def sign(self, params: Mapping[str, str]) -> str:
        return sign(self._merchant_key, params)

    # ---- responses ---------------------------------------------------------------------

    def parse_catalog(self, response: UpstreamResponse) -> CatalogPage:
        data = success_json(response, "Slotegrator", "game list", _error_detail)
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProviderError(
                f"Slotegrator game list has no items array: {json_error_text(response.body)}",
                status=response.status,
                failover_safe=True,
            )
        games = tuple(game for item in items if (game := parse_game(item)) is not None)
        page = _next_page(data, response.headers, had_items=bool(items))
        next_request = None
        if page is not None:
            next_request = self._signed_get(GAMES_PATH, {"page": str(page)})
        return CatalogPage(games=games, next_request=next_request)

    def parse_launch(self, response: UpstreamResponse) -> LaunchResult:
        data = success_json(response, "Slotegrator", "game launch", _error_detail)
        url = data.get("url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.strip():
            raise ProviderError(
                f"Slotegrator game launch answer has no url: {json_error_text(response.body)}",
                status=response.status,
                failover_safe=True,
            )
        return LaunchResult(url=url)




# ---- parsing helpers -----------------------------------------------------------------------


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    try:
        data = decode_json(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    name, message = data.get("name"), data.get("message")
    return (
        name if _text(name) else None,
        " ".join(message.split())[:200] if _text(message) else None,
    )


def _error_detail(body: bytes) -> tuple[str | None, str | None]:
    """Slotegrator's `{name, message}`: the name is the code, "name: message" the detail."""
    name, message = _error_fields(body)
    return name, f"{name}: {message}" if name and message else name


def _next_page(data: dict[str, Any], headers: Mapping[str, str], *, had_items: bool) -> int | None:
    """The page to ask for next, or None when the catalog is complete.

    Paging metadata is not documented as stable, so `_meta` comes first, then the
    `X-Pagination-*` headers the same framework sends, then the `self` link. Without a
    page count, pages are followed until one comes back empty.
    """
    meta = data.get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    current = _positive_int(meta.get("currentPage"))
    count = _positive_int(meta.get("pageCount"))
    if current is None:
        current = _positive_int(header(headers, "X-Pagination-Current-Page"))
    if count is None:
        count = _positive_int(header(headers, "X-Pagination-Page-Count"))
    if current is None:
        current = _page_from_links(data.get("_links"))
    if current is None or current >= MAX_PAGES:
        # Without knowing which page this was, asking for "the next" one could loop.
        return None
    if count is not None:
        return current + 1 if current < count else None
    return current + 1 if had_items else None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value > 0 else None


def _page_from_links(links: Any) -> int | None:
    self_link = links.get("self") if isinstance(links, dict) else None
    href = self_link.get("href") if isinstance(self_link, dict) else None
    if not isinstance(href, str):
        return None
    pages = parse_qs(urlsplit(href).query).get("page")
    return _positive_int(pages[0]) if pages else None


def parse_game(item: Any) -> ProviderGame | None:
    """One game-list item, or None when it lacks what identifies it."""
    if not isinstance(item, dict):
        return None
    uuid, name, studio = item.get("uuid"), item.get("name"), item.get("provider")
    if not (_text(uuid) and _text(name) and _text(studio)):
        return None
    parameters = item.get("parameters")
    # PHP encodes an empty parameter map as [], so anything but an object means "none".
    parameters = parameters if isinstance(parameters, dict) else {}
    image = item.get("image")
    return ProviderGame(
        provider_game_id=uuid,
        name=name,
        studio=studio,
        category=" ".join(item["type"].split()).lower() if _text(item.get("type")) else None,
        rtp=_rtp(parameters.get("rtp")),
        volatility=_volatility(parameters.get("volatility")),
        platforms=("desktop", "mobile") if _flag(item.get("is_mobile")) else ("desktop",),
        demo=True,
        thumbnail=image if _text(image) else None,
    )


def _text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _flag(value: Any) -> bool:
    # PHP back ends send booleans as true/false, 1/0 or "1"/"0" depending on the field.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in {"1", "true"}


def _rtp(value: Any) -> Decimal | None:
    # A string ("96.48") or a bare number (already a Decimal from decode_json), never a bool.
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    try:
        rtp = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        return None
    return rtp if rtp.is_finite() and 0 < rtp <= 100 else None


def _volatility(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    volatility = value.strip().lower()
    return volatility if volatility in VOLATILITIES else None


# ---- construction --------------------------------------------------------------------------


def create(name: str, credentials: Mapping[str, Any]) -> SlotegratorAdapter:
    merchant_id = _credential(name, credentials, "merchant_id")
    merchant_key = _credential(name, credentials, "merchant_key")
    adapter = SlotegratorAdapter(name, merchant_id=merchant_id, merchant_key=merchant_key)
    # Slotegrator signs its wallet callbacks with the same merchant key.
    adapter.wallet = SlotegratorWallet(merchant_id, merchant_key.encode("utf-8"))
    return adapter


def _credential(name: str, credentials: Mapping[str, Any], key: str) -> str:
    value = credentials.get(key)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"provider {name!r}: {key} is not UTF-8 text") from None
    # Surrounding whitespace is a copy-paste slip (a key file's trailing newline), never
    # part of the value.
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"provider {name!r}: {key} must be a non-empty string")
    value = value.strip()
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError(f"provider {name!r}: {key} must not contain spaces or control characters")
    return value
