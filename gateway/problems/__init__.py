"""The stable error codes of the API and `ApiError`, raised by every layer, rendered by http."""

from gateway.problems.codes import CODES, TYPE_BASE, ApiError

__all__ = ["CODES", "TYPE_BASE", "ApiError"]
