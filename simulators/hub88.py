"""A Hub88 operator API on a local port: the game list and game launch.

It checks what the real Hub88 checks: `X-Hub88-Signature`, the base64 RSA-SHA256
(PKCS#1 v1.5) signature of the raw body under the operator's public key, and the
operator id. Errors have Hub88's shape, `{"error": "RS_ERROR_..."}`.

Settings of `create_app`: `operator_public_key_pem` (required), `operator_id` (default 1),
`games` (default: every game of `simulators.catalog` that Hub88 sells), and for the wallet
callbacks Hub88 makes to the operator: `hub88_private_key_pem` (Hub88's own key, which signs
them) and `wallet_url` (the operator's wallet base URL).
Control endpoints: those of `simulators.faults` (`/_sim/faults`, `/_sim/stats`) and
`POST /_sim/rounds` (`simulators.rounds`): `{"token", "bet", "win", "fault"}` plays a round
for the session launched with that token (amounts in Hub88's units, value x 100000).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from simulators import faults, rounds
from simulators.catalog import SimGame, hub88_games

DEFAULT_PORT = 9101

GAME_LIST_PATH = "/operator/generic/v2/game/list"
GAME_URL_PATH = "/operator/generic/v2/game/url"
LAUNCH_BASE_URL = "https://games.hub88.example/launch"
THUMB_BASE_URL = "https://cdn.hub88.example"
DEMO_CURRENCY = "XXX"

# The numeric volatility scale the simulator sends (Hub88 does not document its own).
VOLATILITY_NUMBERS = {
    "low": 1,
    "low-medium": 2,
    "medium": 3,
    "medium-high": 4,
    "high": 5,
    "very-high": 6,
}
CATEGORY_NAMES = {"slots": "Slots", "live": "Live", "table": "Table", "crash": "Crash"}
GAME_PLATFORMS = ("GPL_DESKTOP", "GPL_MOBILE")


@dataclass(frozen=True)
class Hub88Operator:
    operator_id: int
    public_key: rsa.RSAPublicKey
    games: dict[str, dict[str, Any]]  # game_code -> game-list item
    game_list_body: bytes  # served as is: the list never changes while the app runs


OPERATOR = web.AppKey("hub88_operator", Hub88Operator)
LAUNCHES = web.AppKey("hub88_launches", list)  # the launch bodies accepted, oldest first
SIGNING_KEY = web.AppKey("hub88_signing_key", rsa.RSAPrivateKey)  # Hub88's, for callbacks


class Hub88Failure(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


def error_response(status: int, message: str) -> web.Response:
    # Hub88's error body carries only a status code; the message has nowhere to go.
    return web.json_response({"error": "RS_ERROR_UNKNOWN"}, status=status)


def _failure_response(failure: Hub88Failure) -> web.Response:
    return web.json_response({"error": failure.code}, status=failure.status)


def generate_operator_keypair() -> tuple[str, str]:
    """A throwaway operator key pair: (private key PEM, public key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem.decode("ascii"), public_pem.decode("ascii")


def game_item(game: SimGame) -> dict[str, Any]:
    """One game as Hub88's game list shows it."""
    assert game.hub88 is not None
    code, studio = game.hub88
    slots = game.category == "slots"
    return {
        "game_code": code,
        "name": game.name,
        "product": studio,
        "category": CATEGORY_NAMES.get(game.category, game.category.title()),
        "platforms": list(GAME_PLATFORMS) if game.mobile else ["GPL_DESKTOP"],
        "url_thumb": f"{THUMB_BASE_URL}/{code}.png",
        "url_background": f"{THUMB_BASE_URL}/{code}_bg.jpg",
        "freebet_support": slots,
        "enabled": True,
        "blocked_countries": ["US"],
        "release_date": None,
        "volatility": VOLATILITY_NUMBERS.get(game.volatility or ""),
        "rtp": game.rtp,
        "paylines": 20 if slots else None,
        "hit_ratio": "27.50" if slots else None,
        "languages": ["en", "de", "es", "pt", "tr"],
        "technology": "HTML5",
        "features": ["free_spins"] if slots else None,
        "certifications": ["MGA", "UKGC"],
        "phoenix_jackpot_support": False,
    }


def _verify(operator: Hub88Operator, request: web.Request, body: bytes) -> None:
    encoded = request.headers.get("X-Hub88-Signature", "")
    try:
        signature = base64.b64decode(encoded, validate=True)
        operator.public_key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        raise Hub88Failure(401, "RS_ERROR_INVALID_SIGNATURE") from None


async def _signed_json(request: web.Request) -> dict[str, Any]:
    """The verified body of an operator call, or Hub88Failure in Hub88's order of checks."""
    operator = request.app[OPERATOR]
    body = await request.read()
    if not body:
        raise Hub88Failure(401, "RS_ERROR_INVALID_SIGNATURE")
    _verify(operator, request, body)
    try:
        data = json.loads(body)
    except ValueError:
        raise Hub88Failure(400, "RS_ERROR_UNKNOWN") from None
    if not isinstance(data, dict):
        raise Hub88Failure(400, "RS_ERROR_UNKNOWN")
    operator_id = data.get("operator_id")
    if isinstance(operator_id, bool) or operator_id != operator.operator_id:
        raise Hub88Failure(401, "RS_ERROR_INVALID_PARTNER")
    return data


async def game_list(request: web.Request) -> web.Response:
    try:
        await _signed_json(request)
    except Hub88Failure as failure:
        return _failure_response(failure)
    return web.Response(body=request.app[OPERATOR].game_list_body, content_type="application/json")


async def game_url(request: web.Request) -> web.Response:
    try:
        data = await _signed_json(request)
        mode = _check_launch(request.app[OPERATOR], data)
    except Hub88Failure as failure:
        return _failure_response(failure)
    request.app[LAUNCHES].append(data)
    session = secrets.token_urlsafe(16)
    url = f"{LAUNCH_BASE_URL}/{data['game_code']}?session={session}&mode={mode}"
    return web.json_response({"url": url})


def _check_launch(operator: Hub88Operator, data: dict[str, Any]) -> str:
    """The mode ("real" or "demo") of a valid launch body."""
    game_code = data.get("game_code")
    if not isinstance(game_code, str) or game_code not in operator.games:
        raise Hub88Failure(400, "RS_ERROR_INVALID_GAME")
    platform = data.get("platform")
    if platform not in GAME_PLATFORMS:
        raise Hub88Failure(400, "RS_ERROR_UNKNOWN")
    currency = data.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isupper()):
        raise Hub88Failure(400, "RS_ERROR_WRONG_CURRENCY")
    if currency == DEMO_CURRENCY:
        return "demo"
    # A real-money session belongs to a player the operator's wallet will be asked about.
    if not all(isinstance(data.get(key), str) and data[key] for key in ("user", "token")):
        raise Hub88Failure(400, "RS_ERROR_INVALID_TOKEN")
    return "real"


class WalletCallbacks:
    """Hub88's wallet callbacks: JSON signed with Hub88's key, one path per action."""

    PATHS = {"bet": "/transaction/bet", "win": "/transaction/win",
             "rollback": "/transaction/rollback"}

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key

    def _payload(self, s: rounds.Session, tx: str, round_id: str, amount: Any) -> dict[str, Any]:
        return {
            "user": s.player_id,
            "transaction_uuid": tx,
            "supplier_transaction_id": tx,
            "token": s.token,
            "round": round_id,
            "round_closed": False,
            "request_uuid": str(uuid.uuid4()),
            "game_code": s.game_code,
            "currency": s.currency,
            "amount": amount,
            "is_free": False,
            "meta": {},
        }

    def bet(self, s: rounds.Session, tx: str, round_id: str, amount: Any) -> rounds.Sent:
        return rounds.Sent("bet", self._payload(s, tx, round_id, amount))

    def win(
        self, s: rounds.Session, tx: str, round_id: str, amount: Any, bet_tx: str | None
    ) -> rounds.Sent:
        payload = self._payload(s, tx, round_id, amount)
        payload["round_closed"] = True
        if bet_tx is None:
            payload["is_supplier_promo"] = True  # a win with no bet: Hub88 marks it so
        else:
            payload["reference_transaction_uuid"] = bet_tx
        return rounds.Sent("win", payload)

    def rollback(
        self, s: rounds.Session, tx: str, round_id: str, bet_tx: str, amount: Any
    ) -> rounds.Sent:
        payload = self._payload(s, tx, round_id, amount)
        payload.update(round_closed=True, reference_transaction_uuid=bet_tx)
        return rounds.Sent("rollback", payload)

    def other_amount(self, amount: Any) -> Any:
        return int(amount) * 2

    def ok(self, answer: Any) -> bool:
        return isinstance(answer, dict) and answer.get("status") == "RS_OK"

    async def send(
        self, http: aiohttp.ClientSession, url: str, sent: rounds.Sent
    ) -> tuple[int, Any]:
        body = json.dumps(sent.payload, separators=(",", ":")).encode()
        signature = self.key.sign(body, padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "Content-Type": "application/json",
            "X-Hub88-Signature": base64.b64encode(signature).decode("ascii"),
        }
        try:
            async with http.post(url + self.PATHS[sent.action], data=body, headers=headers) as r:
                return r.status, await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return 0, {"error": type(exc).__name__}


def _session_of(app: web.Application, data: dict[str, Any]) -> rounds.Session | None:
    token = data.get("token")
    launches: list[dict[str, Any]] = app[LAUNCHES]
    for launch in reversed(launches):
        if launch.get("token") == token and token:
            return rounds.Session(launch["user"], token, launch["currency"], launch["game_code"])
    if all(isinstance(data.get(k), str) for k in ("token", "user", "currency", "game_code")):
        return rounds.Session(data["user"], data["token"], data["currency"], data["game_code"])
    return None


def create_app(
    *,
    operator_public_key_pem: bytes | str,
    operator_id: int = 1,
    games: Iterable[SimGame] | None = None,
    hub88_private_key_pem: bytes | str | None = None,
    wallet_url: str | None = None,
) -> web.Application:
    pem = operator_public_key_pem
    public_key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("operator_public_key_pem must be an RSA public key")
    items = [game_item(g) for g in (hub88_games() if games is None else games) if g.hub88]
    app = web.Application()
    app[OPERATOR] = Hub88Operator(
        operator_id=operator_id,
        public_key=public_key,
        games={item["game_code"]: item for item in items},
        game_list_body=json.dumps(items, separators=(",", ":")).encode("utf-8"),
    )
    app[LAUNCHES] = []
    faults.install(app, error_response)
    app.router.add_post(GAME_LIST_PATH, game_list)
    app.router.add_post(GAME_URL_PATH, game_url)
    if hub88_private_key_pem is not None:
        key_pem = hub88_private_key_pem
        key = serialization.load_pem_private_key(
            key_pem.encode() if isinstance(key_pem, str) else key_pem, password=None
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("hub88_private_key_pem must be an RSA private key")
        app[SIGNING_KEY] = key
        rounds.install(
            app, lambda a: WalletCallbacks(a[SIGNING_KEY]), _session_of, wallet_url, 100_000
        )
    return app
