"""One module (or package) a provider API. Adding a provider is one new module here plus config.

A module is an adapter when it defines `SPEC` (an `AdapterSpec`) and `create(name, credentials)`.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_NOT_ADAPTERS = {"base", "money", "wallet"}


class UnknownAdapter(LookupError):
    pass


def load(name: str) -> ModuleType:
    """The adapter module called `name`, or UnknownAdapter."""
    if not _NAME.match(name) or name in _NOT_ADAPTERS:
        raise UnknownAdapter(f"unknown adapter '{name}'")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            raise UnknownAdapter(f"unknown adapter '{name}'") from None
        raise
    if not hasattr(module, "SPEC") or not hasattr(module, "create"):
        raise UnknownAdapter(f"unknown adapter '{name}'")
    return module
