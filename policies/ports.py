"""What the policies need from outside, as small protocols the gateway implements.

A policy receives a store (and a clock, where time matters) as an argument; it never imports
the server. `gateway.state` implements `Store` in memory and on Redis.
"""

from __future__ import annotations

from typing import Protocol


class StoreUnavailable(Exception):
    """The store cannot be reached; callers decide whether to fail open or closed."""


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Atomically create `key`; False if it exists. The basis of at-most-once."""
        ...

    async def delete(self, key: str) -> None: ...

    async def wait_changed(self, key: str, timeout_s: float) -> None:
        """Return when `key` may have changed, or after `timeout_s`."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with `prefix`; how many went."""
        ...

    async def replace_if(self, key: str, expected: bytes, value: bytes, ttl_s: float) -> bool:
        """Set `key` to `value` only if it still holds `expected` (compare-and-set)."""
        ...

    async def delete_if(self, key: str, expected: bytes) -> bool:
        """Delete `key` only if it still holds `expected`."""
        ...
