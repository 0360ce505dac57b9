"""Player tokens: which player a request speaks for, and what that player may touch.

The casino backend mints a short-lived JWT for its logged-in player (`sub` = the player id,
`exp`, `aud`); the frontend sends it beside its API key. A valid token scopes the request:
payments and launches must name that player, and only that player's payments and events
can be read. Verification is strict: the algorithm is the configured one only (`alg: none`
and algorithm confusion are refused by construction), `exp` is required, `aud` must match,
and the key comes from the config, never from the token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jwt

HMAC_ALGORITHMS = frozenset({"HS256"})
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "ES256"})
ALGORITHMS = HMAC_ALGORITHMS | PUBLIC_KEY_ALGORITHMS
MAX_TOKEN_BYTES = 4096


@dataclass(frozen=True, slots=True)
class PlayerTokenSettings:
    algorithm: str
    key: str = field(repr=False)  # the HMAC secret, or the PEM public key
    audience: str
    required: bool = False
    issuer: str | None = None
    leeway_s: float = 30.0  # clock skew between the casino backend and the gateway


class TokenRejected(Exception):
    """The token does not prove a player: say why in logs, never to the client."""


def verify(token: str, settings: PlayerTokenSettings) -> str:
    """The player id the token proves; TokenRejected otherwise."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("token too long")
    options: dict[str, object] = {"require": ["exp", "sub", "aud"]}
    if settings.issuer is not None:
        options["require"] = ["exp", "sub", "aud", "iss"]
    try:
        claims = jwt.decode(
            token,
            settings.key,
            algorithms=[settings.algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway_s,
            options=options,  # type: ignore[arg-type]
        )
    except jwt.PyJWTError as exc:
        # PyJWTError, not InvalidTokenError: a key of the wrong kind raises InvalidKeyError.
        raise TokenRejected(f"{type(exc).__name__}: {exc}") from None
    player = claims.get("sub")
    if not isinstance(player, str) or not player or len(player) > 128:
        raise TokenRejected("sub is not a player id")
    return player


def may_act_for(token_player: str | None, named_player: str | None) -> bool:
    """May a request scoped to `token_player` act for `named_player`? Unscoped: anyone."""
    return token_player is None or token_player == named_player
