"""Trustly's RSA signatures, as Trustly makes and checks them (the simulator's own copy).

The signed text is method + uuid + the data serialized: object keys sorted, each followed by
its value; array items one after another; null as nothing; anything else as its text.
SHA-1 with PKCS#1 v1.5 padding, base64.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def flatten(value: Any) -> str:
    if isinstance(value, dict):
        parts = []
        for key in sorted(value):
            parts.append(str(key))
            parts.append(flatten(value[key]))
        return "".join(parts)
    if isinstance(value, list):
        return "".join(flatten(item) for item in value)
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _text(method: str, uuid: str, data: Any) -> bytes:
    return f"{method}{uuid}{flatten(data)}".encode()


def sign(key: rsa.RSAPrivateKey, method: str, uuid: str, data: Any) -> str:
    raw = key.sign(_text(method, uuid, data), padding.PKCS1v15(), hashes.SHA1())
    return base64.b64encode(raw).decode()


def signature_ok(key: rsa.RSAPublicKey, method: str, uuid: str, data: Any, signature: Any) -> bool:
    if not isinstance(signature, str):
        return False
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            _text(method, uuid, data),
            padding.PKCS1v15(),
            hashes.SHA1(),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def generate_keypair() -> tuple[str, str]:
    """A throwaway RSA key pair as PEM (private, public)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key
