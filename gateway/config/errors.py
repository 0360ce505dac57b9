"""The one error a config can fail with: every problem found, each named by its key path."""

from __future__ import annotations


class ConfigError(Exception):
    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in problems))
