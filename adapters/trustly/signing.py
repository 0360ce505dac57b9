"""Trustly's signature: RSA (PKCS#1 v1.5, SHA-1) over method + UUID + the serialized data.

Serialization, as Trustly's own client libraries do it: an object is its keys in sorted
order, each followed by its serialized value; an array is its items serialized one after
another; null is the empty string; anything else is its text. The merchant signs what it
sends with its private key and verifies what Trustly sends (answers and notifications) with
Trustly's public key; Trustly does the reverse.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def serialize(data: Any) -> str:
    if isinstance(data, dict):
        return "".join(str(key) + serialize(data[key]) for key in sorted(data))
    if isinstance(data, list):
        return "".join(serialize(item) for item in data)
    if data is None:
        return ""
    if isinstance(data, bool):  # JSON's spelling, not Python's
        return "true" if data else "false"
    if isinstance(data, Decimal):
        return format(data, "f")
    return str(data)


def plaintext(method: str, uuid: str, data: Any) -> bytes:
    return (method + uuid + serialize(data)).encode("utf-8")


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def sign(key: rsa.RSAPrivateKey, method: str, uuid: str, data: Any) -> str:
    signature = key.sign(plaintext(method, uuid, data), padding.PKCS1v15(), hashes.SHA1())
    return base64.b64encode(signature).decode("ascii")


def verify(key: rsa.RSAPublicKey, method: str, uuid: str, data: Any, signature: Any) -> bool:
    if not isinstance(signature, str) or not signature:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, plaintext(method, uuid, data), padding.PKCS1v15(), hashes.SHA1())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
