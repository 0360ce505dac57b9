"""What the game aggregators' answers have in common: a catalog page or a launch URL in a 2xx
JSON body, anything else a ProviderError.

Neither call moves money, so every failure is failover_safe. A 4xx is the aggregator refusing
the request as it stands (`rejected`); a 5xx, another status or an unreadable body is not.
Each adapter reads its own error body (`ErrorReader`: its error code and a readable detail).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.base import (
    ProviderError,
    UpstreamResponse,
    decode_json,
    json_error_text,
    retry_after,
)

# An error body -> (the provider's error code, a detail to log), each None when absent.
ErrorReader = Callable[[bytes], tuple[str | None, str | None]]


def success_json(
    response: UpstreamResponse, provider: str, what: str, read_error: ErrorReader
) -> Any:
    """The decoded body of a 2xx answer; any other answer raises ProviderError."""
    status = response.status
    if 200 <= status < 300:
        try:
            return decode_json(response.body)
        except ValueError:
            raise ProviderError(
                f"{provider} {what} answered {status} with a body that is not JSON: "
                f"{json_error_text(response.body)}",
                status=status,
                failover_safe=True,
            ) from None
    code, detail = read_error(response.body)
    raise ProviderError(
        f"{provider} {what} failed with HTTP {status}: {detail or json_error_text(response.body)}",
        provider_code=code,
        status=status,
        failover_safe=True,
        rejected=400 <= status < 500,
        retry_after_s=retry_after(response.headers) if status == 429 else None,
    )
