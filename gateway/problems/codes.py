"""RFC 9457 problem details: the one error shape of the unified API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TYPE_BASE = "https://casino-gateway.dev/problems/"

# code -> (HTTP status, title). Codes are a contract with frontends: never rename one.
CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "Invalid request"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "idempotency_key_required": (400, "Idempotency-Key header required"),
    "idempotency_conflict": (409, "Idempotency-Key conflict"),
    "conflict": (409, "Conflict with the resource's state"),
    "unsupported_currency": (422, "Unsupported currency"),
    "invalid_amount": (422, "Invalid amount"),
    "payload_too_large": (413, "Payload too large"),
    "request_timeout": (408, "Request timeout"),
    "unsupported_media_type": (415, "Unsupported media type"),
    "unauthorized": (401, "Unauthorized"),
    "forbidden": (403, "Forbidden"),
    "rate_limited": (429, "Too many requests"),
    "provider_rejected": (422, "Provider rejected the request"),
    "unsupported_withdrawal_method": (422, "Withdrawal method not supported"),
    "payment_not_refundable": (422, "Payment not refundable"),
    "refund_exceeds_amount": (422, "Refund exceeds what is left"),
    "refund_currency_mismatch": (422, "Refund currency mismatch"),
    "provider_unavailable": (502, "Provider unavailable"),
    "unavailable_for_legal_reasons": (451, "Unavailable for legal reasons"),
    "no_provider_available": (503, "No provider available"),
    "idempotency_store_unavailable": (503, "Idempotency store unavailable"),
    "unavailable": (503, "Service unavailable"),
    "internal_error": (500, "Internal error"),
}


@dataclass
class ApiError(Exception):
    code: str
    detail: str
    provider: str | None = None
    provider_code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown problem code {self.code}")
        if not self.status:
            self.status = CODES[self.code][0]
        super().__init__(self.detail)

    def problem(self, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.code.replace("_", "-"),
            "title": CODES[self.code][1],
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "request_id": request_id,
        }
        if self.provider is not None:
            body["provider"] = self.provider
        if self.provider_code is not None:
            body["provider_code"] = self.provider_code
        body.update(self.extra)
        return body
