"""Who may call the gateway, as the config says: client keys and roles, player tokens, CORS
and the proxies whose X-Forwarded-For is believed."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from gateway.config.model import ClientConfig, CorsConfig
from gateway.config.secrets import SecretReader
from gateway.config.values import split_secret_key
from policies.player_access import (
    HMAC_ALGORITHMS,
    PUBLIC_KEY_ALGORITHMS,
    PlayerTokenSettings,
)
from policies.ratelimit import parse_rate


def player_tokens(
    reader: SecretReader, given: dict[str, Any] | None
) -> PlayerTokenSettings | None:
    if given is None:
        return None
    path = "player_tokens"
    algorithm = given["algorithm"]
    wanted = ("secret",) if algorithm in HMAC_ALGORITHMS else ("public_key",)
    wrong = ("public_key",) if algorithm in HMAC_ALGORITHMS else ("secret",)
    given_keys = [k for k in given if split_secret_key(k)[0] in (*wanted, *wrong)]
    if any(split_secret_key(k)[0] in wrong for k in given_keys) or len(given_keys) != 1:
        reader.fail(
            path,
            f"{algorithm} needs exactly one of {wanted[0]}_env or {wanted[0]}_file "
            "(an HMAC secret for HS256, a PEM public key for RS256/ES256)",
        )
        return None
    [key_name] = given_keys
    value = (
        reader.secret_from_env(f"{path}.{key_name}", given[key_name])
        if key_name.endswith("_env")
        else reader.secret_from_file(f"{path}.{key_name}", given[key_name])
    )
    if value is None:
        return None
    if algorithm in HMAC_ALGORITHMS and len(value.encode()) < 32:
        reader.fail(f"{path}.{key_name}", "an HS256 secret must be at least 32 bytes")
        return None
    if algorithm in PUBLIC_KEY_ALGORITHMS and "PUBLIC KEY" not in value:
        reader.fail(f"{path}.{key_name}", f"{algorithm} needs a PEM public key")
        return None
    return PlayerTokenSettings(
        algorithm=algorithm,
        key=value,
        audience=given["audience"],
        required=given.get("required", False),
        issuer=given.get("issuer"),
        leeway_s=given.get("leeway_s", 30.0),
    )

def trusted_proxies(
    reader: SecretReader, given: list[str]
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for i, cidr in enumerate(given):
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            reader.fail(f"trusted_proxies[{i}]", str(exc))
    return tuple(networks)

def clients(reader: SecretReader, given: list[dict[str, Any]]) -> tuple[ClientConfig, ...]:
    out: list[ClientConfig] = []
    seen_ids: set[str] = set()
    seen_keys: set[bytes] = set()
    for i, spec in enumerate(given):
        path = f"clients[{i}]"
        if spec["id"] in seen_ids:
            reader.fail(f"{path}.id", f"duplicate client id '{spec['id']}'")
        seen_ids.add(spec["id"])
        if "key_sha256" in spec:
            digest = bytes.fromhex(spec["key_sha256"])
        else:
            key = (
                reader.secret_from_env(f"{path}.key_env", spec["key_env"])
                if "key_env" in spec
                else reader.secret_from_file(f"{path}.key_file", spec["key_file"])
            )
            if key is None:
                continue
            digest = hashlib.sha256(key.encode()).digest()
        if "rate_limit" in spec:
            try:
                parse_rate(spec["rate_limit"])
            except ValueError as exc:
                reader.fail(f"{path}.rate_limit", str(exc))
        if digest in seen_keys:
            reader.fail(path, "two clients share one key")
        seen_keys.add(digest)
        out.append(
            ClientConfig(
                id=spec["id"],
                key_digest=digest,
                roles=frozenset(spec.get("roles", ["client"])),
                rate_limit=spec.get("rate_limit"),
            )
        )
    return tuple(out)

def cors(given: dict[str, Any] | None) -> CorsConfig | None:
    if given is None:
        return None
    spec: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in given.items()
    }
    return CorsConfig(**spec)
