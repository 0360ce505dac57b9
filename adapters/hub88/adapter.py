"""Hub88 game aggregator: the operator API (game list and game launch).

Every request is a compact JSON body signed with the operator's RSA key: header
`X-Hub88-Signature` = base64(RSA-SHA256 PKCS#1 v1.5 over the exact body bytes).
Errors come back as HTTP 400/401/403/404/500 with `{"error": "RS_ERROR_..."}`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
    json_error_text,
)
from adapters.hub88.wallet import Hub88Wallet, load_public_key

SPEC = AdapterSpec(
    kind="games",
    credentials=("operator_id", "private_key"),
    secrets=frozenset({"private_key"}),
    # Hub88's own key, to verify its wallet callbacks (`adapters.hub88.wallet`).
    optional=("hub88_public_key",),
)

GAME_LIST_PATH = "/operator/generic/v2/game/list"
GAME_URL_PATH = "/operator/generic/v2/game/url"
SIGNATURE_HEADER = "X-Hub88-Signature"

# Hub88 plays demo games in the pseudo-currency XXX, with no user or token.
DEMO_CURRENCY = "XXX"

# Hub88 sends volatility as a number without documenting its scale. This 1..6 mapping onto
# the unified six-step scale is an assumption; any other value is treated as unknown.
VOLATILITY_SCALE: dict[int, str] = {
    1: "low",
    2: "low-medium",
    3: "medium",
    4: "medium-high",
    5: "high",
    6: "very-high",
}

PLATFORMS: dict[str, str] = {"GPL_DESKTOP": "desktop", "GPL_MOBILE": "mobile"}
LAUNCH_PLATFORMS: dict[str, str] = {"desktop": "GPL_DESKTOP", "mobile": "GPL_MOBILE"}

# Hub88's category names are not in the sources we have; the longer spellings some catalogs
# use are folded onto the unified names so games from several aggregators still merge.
CATEGORY_ALIASES: dict[str, str] = {
    "slot": "slots",
    "video slots": "slots",
    "live casino": "live",
    "table games": "table",
    "crash games": "crash",
}


class Hub88Adapter:
    kind: Literal["games"] = "games"

    def __init__(
        self,
        name: str,
        operator_id: int,
        private_key: rsa.RSAPrivateKey,
        wallet: Hub88Wallet | None = None,
    ) -> None:
        self.name = name
        self.operator_id = operator_id
        self._private_key = private_key
        self.wallet = wallet  # None: no hub88_public_key, so no wallet callbacks

    def __repr__(self) -> str:
        # The key object never appears in logs or tracebacks.
        return f"Hub88Adapter(name={self.name!r}, operator_id={self.operator_id})"

    # ---- requests ----------------------------------------------------------------------

    def catalog_request(self) -> UpstreamRequest:
        return self._signed_post(GAME_LIST_PATH, {"operator_id": self.operator_id})

    def health_request(self) -> UpstreamRequest:
        # Hub88 has no cheap health endpoint; the signed game list also proves the key works.
        return self.catalog_request()

    def launch_request(self, request: LaunchRequest) -> UpstreamRequest:
        demo = request.mode == "demo"
        currency = DEMO_CURRENCY if demo else request.currency
        fields: dict[str, Any] = {
            "user": None if demo else request.player_id,
            "token": None if demo else request.session_token,
            "platform": LAUNCH_PLATFORMS[request.platform],
            "game_code": request.provider_game_id,
            "currency": currency,
            "game_currency": currency,
            "country": request.country,
            "lang": request.language,
            "ip": request.ip,
            "lobby_url": request.return_url,
            "operator_id": self.operator_id,
        }
        return self._signed_post(
            GAME_URL_PATH, {key: value for key, value in fields.items() if value is not None}
        )

    def _signed_post(self, path: str, payload: Mapping[str, Any]) -> UpstreamRequest:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return UpstreamRequest(
            method="POST",
            path=path,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: self._sign(body),
            },
            body=body,
        )

    def _sign(self, body: bytes) -> str:
        signature = self._private_key.sign(body, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    # ---- responses ---------------------------------------------------------------------

    def parse_catalog(self, response: UpstreamResponse) -> CatalogPage:
        data = success_json(response, "Hub88", "game list", _error_fields)
        if not isinstance(data, list):
            raise ProviderError(
                f"Hub88 game list is not a JSON array: {json_error_text(response.body)}",
                status=response.status,
                failover_safe=True,
            )
        games = tuple(game for item in data if (game := parse_game(item)) is not None)
        return CatalogPage(games=games, next_request=None)

    def parse_launch(self, response: UpstreamResponse) -> LaunchResult:
        data = success_json(response, "Hub88", "game launch", _error_fields)
        url = data.get("url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url:
            raise ProviderError(
                f"Hub88 game launch answer has no url: {json_error_text(response.body)}",
                status=response.status,
                failover_safe=True,
            )
        return LaunchResult(url=url)


# ---- parsing helpers -----------------------------------------------------------------------


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """Hub88's error body `{"error": CODE}`: the code is both the code and the detail."""
    try:
        data = decode_json(body)
    except ValueError:
        return None, None
    code = data.get("error") if isinstance(data, dict) else None
    return (code, code) if isinstance(code, str) and code else (None, None)


def parse_game(item: Any) -> ProviderGame | None:
    """One game-list item, or None when it is disabled or lacks what identifies it."""
    if not isinstance(item, dict) or item.get("enabled") is False:
        return None
    code, name, studio = (
        _text(item.get("game_code")),
        _text(item.get("name")),
        _text(item.get("product")),
    )
    if code is None or name is None or studio is None:
        return None
    return ProviderGame(
        provider_game_id=code,
        name=name,
        studio=studio,
        category=_category(item.get("category")),
        rtp=_rtp(item.get("rtp")),
        volatility=_volatility(item.get("volatility")),
        platforms=_platforms(item.get("platforms")),
        demo=True,
        thumbnail=_text(item.get("url_thumb")),
        blocked_countries=_countries(item.get("blocked_countries")),
    )


def _text(value: Any) -> str | None:
    """A string with something in it, as given; None for anything else."""
    return value if isinstance(value, str) and value.strip() else None


def _category(value: Any) -> str | None:
    if _text(value) is None:
        return None
    category = " ".join(value.split()).lower()
    return CATEGORY_ALIASES.get(category, category)


def _rtp(value: Any) -> Decimal | None:
    # Documented as a string ("96.10"); a bare number is accepted too, never a bool.
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    try:
        rtp = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        return None
    return rtp if rtp.is_finite() and 0 < rtp <= 100 else None


def _volatility(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    if isinstance(value, Decimal) and (not value.is_finite() or value != value.to_integral()):
        return None
    return VOLATILITY_SCALE.get(int(value))


def _countries(value: Any) -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, upper-cased; anything else in the list is not a country."""
    if not isinstance(value, list):
        return frozenset()
    codes = (code.strip().upper() for code in value if isinstance(code, str))
    return frozenset(c for c in codes if len(c) == 2 and c.isascii() and c.isalpha())


def _platforms(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    found = [PLATFORMS[p] for p in value if isinstance(p, str) and p in PLATFORMS]
    return tuple(dict.fromkeys(found))


# ---- construction --------------------------------------------------------------------------


def create(name: str, credentials: Mapping[str, Any]) -> Hub88Adapter:
    return Hub88Adapter(
        name,
        operator_id=_operator_id(name, credentials.get("operator_id")),
        private_key=_private_key(name, credentials.get("private_key")),
        wallet=(
            Hub88Wallet(load_public_key(name, credentials["hub88_public_key"]))
            if credentials.get("hub88_public_key") is not None
            else None
        ),
    )


def _operator_id(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise ValueError(f"provider {name!r}: operator_id must be a non-negative integer")


def _private_key(name: str, value: Any) -> rsa.RSAPrivateKey:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes) or not value.strip():
        raise ValueError(f"provider {name!r}: private_key must be an RSA private key in PEM")
    try:
        key = serialization.load_pem_private_key(value, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The loader's message is kept out: it could quote part of the key.
        raise ValueError(
            f"provider {name!r}: private_key is not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"provider {name!r}: private_key must be an RSA key (Hub88 uses RSA)")
    return key
