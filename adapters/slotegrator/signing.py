"""Slotegrator's signature: hex HMAC-SHA1 with the merchant key over the sorted parameters.

The parameters (query or form fields, merged with `X-Merchant-Id`, `X-Timestamp` and
`X-Nonce`) are encoded as PHP's http_build_query does, keys sorted. The same scheme signs
the gateway's calls to Slotegrator and Slotegrator's wallet callbacks to the gateway.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import quote_plus


def sign(merchant_key: bytes, params: Mapping[str, str]) -> str:
    """Hex HMAC-SHA1 of the sorted parameters, encoded as PHP's http_build_query does."""
    message = "&".join(
        f"{_php_quote(key)}={_php_quote(value)}" for key, value in sorted(params.items())
    )
    return hmac.new(merchant_key, message.encode("ascii"), hashlib.sha1).hexdigest()


def _php_quote(text: str) -> str:
    # Most values (ids, codes, timestamps, nonces) need no escaping: skip quote_plus for them.
    if _UNRESERVED.fullmatch(text):
        return text
    # Slotegrator checks the sign with PHP's urlencode rules, which escape "~" too.
    return quote_plus(text, safe="").replace("~", "%7E")


_UNRESERVED = re.compile(r"[A-Za-z0-9_.\-]*")
