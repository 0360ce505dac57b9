"""Reading Trustly's answers: signed results and signed errors, classified for failover.

A JSON-RPC answer comes with HTTP 200 whether it is a result or an error. Both are signed
by Trustly (`result.signature`, or `error.error.signature`) over method + uuid + data, and
the uuid must be the request's. An answer that does not verify proves nothing, so it is
treated as unknown (the same provider only), never as a refusal.

Error codes (Trustly's "Error messages") by what they mean for the request:

=============================================  =================================================
code                                           result
=============================================  =================================================
616 credentials, 636 signature, 639 no public  refused the gateway's credentials (as a 401: the
  key, 602 function denied, 607 host denied      provider is taken out and the next one tried)
615 amount, 622 currency, 623 parameters       rejected before acting: the next provider may try
638 end user blocked                           a hard decline: no other provider is asked
637 duplicate MessageID                        the payment is in progress at Trustly: 202, kept
                                                 there, never failed over
620 unknown, any other code                    deposits and payouts: rejected (a Trustly order
                                                 moves money only once the player completes it at
                                                 the URL the answer would have carried); refunds:
                                                 unknown (Trustly may have queued it)
=============================================  =================================================
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import (
    MAX_SMALL_JSON_BYTES,
    ProviderError,
    UpstreamResponse,
    decode_json,
    json_error_text,
    retry_after,
)
from adapters.trustly.signing import verify

Purpose = Literal["payment", "refund", "health"]

AUTH_ERRORS = frozenset({616, 636, 639, 602, 607})
INVALID_REQUEST = frozenset({615, 622, 623})
ENDUSER_BLOCKED = 638
DUPLICATE_MESSAGE_ID = 637


def signed_result(
    response: UpstreamResponse,
    trustly_key: rsa.RSAPublicKey,
    method: str,
    call_id: str,
    purpose: Purpose,
) -> dict[str, Any]:
    """The verified `result.data` of an answer to `method` under `call_id`, or ProviderError."""
    status = response.status
    if status == 429:
        raise ProviderError(
            "trustly 429: asked to slow down",
            status=429,
            rejected=True,
            failover_safe=True,
            retry_after_s=retry_after(response.headers),
        )
    if status >= 500 or not 200 <= status < 300:
        raise ProviderError(
            f"trustly HTTP {status}: {json_error_text(response.body)}",
            status=status,
            retry_same=True,
        )
    try:
        body = decode_json(response.body, MAX_SMALL_JSON_BYTES)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _unreadable(response, "not a JSON-RPC answer")
    if isinstance(body.get("error"), dict):
        raise _error(body["error"], trustly_key, method, call_id, purpose)
    result = body.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("data"), dict):
        raise _unreadable(response, "no result")
    _check_signed(result, trustly_key, method, call_id, response)
    data: dict[str, Any] = result["data"]
    return data


def _check_signed(
    signed: dict[str, Any],
    trustly_key: rsa.RSAPublicKey,
    method: str,
    call_id: str,
    response: UpstreamResponse,
) -> None:
    if signed.get("uuid") != call_id or signed.get("method") != method:
        raise _unreadable(response, "the answer is for another request")
    if not verify(trustly_key, method, call_id, signed.get("data"), signed.get("signature")):
        raise _unreadable(response, "the answer's signature does not verify")


def _error(
    error: dict[str, Any],
    trustly_key: rsa.RSAPublicKey,
    method: str,
    call_id: str,
    purpose: Purpose,
) -> ProviderError:
    code = error.get("code")
    name = error.get("message") if isinstance(error.get("message"), str) else "ERROR"
    text = f"trustly error {code} {name}"
    inner = error.get("error")
    inner = inner if isinstance(inner, dict) else {}
    provider_code = str(name) if name else None
    if inner.get("signature") is None:
        if inner.get("uuid") is None:
            # A JSON-RPC level error (uuid and method null): Trustly could not read the
            # request at all, so it acted on nothing. Unsigned, as Trustly sends them.
            return ProviderError(
                text, provider_code=provider_code, rejected=True, failover_safe=True
            )
        return ProviderError(f"{text} (unsigned)", retry_same=True)
    if inner.get("uuid") != call_id or not verify(
        trustly_key, method, call_id, inner.get("data"), inner.get("signature")
    ):
        return ProviderError(f"{text} (its signature does not verify)", retry_same=True)
    if not isinstance(code, int) or isinstance(code, bool):
        return ProviderError(text, provider_code=provider_code, retry_same=True)
    if code in AUTH_ERRORS:
        return ProviderError(text, provider_code=provider_code, status=401, failover_safe=True)
    if code == DUPLICATE_MESSAGE_ID:
        return ProviderError(text, provider_code=provider_code, retry_same=True)
    if code == ENDUSER_BLOCKED:
        return ProviderError(
            text,
            provider_code=provider_code,
            rejected=True,
            failover_safe=True,
            final=True,
            decline="hard",
        )
    if code in INVALID_REQUEST or purpose != "refund":
        return ProviderError(text, provider_code=provider_code, rejected=True, failover_safe=True)
    return ProviderError(text, provider_code=provider_code, rejected=True)


def _unreadable(response: UpstreamResponse, why: str) -> ProviderError:
    return ProviderError(
        f"trustly {response.status}: {why}: {json_error_text(response.body)}",
        status=response.status,
        retry_same=True,
    )


def text_of(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)  # Trustly's examples spell order ids both ways
    return None
