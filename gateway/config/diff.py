"""What changes between two configs, by provider and by route (for `check --against`)."""

from __future__ import annotations

from typing import Any


def diff_configs(running: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """Lines like `+ provider hub88_eu`, `- route games.get`, `~ provider stripe: timeout_ms`.

    Both sides are redacted config documents (as /admin/config serves them), so secrets are
    compared as `***` and a changed secret value is invisible here by design.
    """
    lines: list[str] = []
    for section, label in (("providers", "provider"), ("routes", "route")):
        old = running.get(section) or {}
        new = candidate.get(section) or {}
        for name in sorted(set(new) - set(old)):
            lines.append(f"+ {label} {name}")
        for name in sorted(set(old) - set(new)):
            lines.append(f"- {label} {name}")
        for name in sorted(set(old) & set(new)):
            changed = _changed_keys(old[name], new[name])
            if changed:
                lines.append(f"~ {label} {name}: {', '.join(changed)}")
    others = sorted(
        key
        for key in set(running) | set(candidate)
        if key not in ("providers", "routes") and running.get(key) != candidate.get(key)
    )
    if others:
        lines.append(f"~ settings: {', '.join(others)}")
    return lines


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [prefix or "value"] if old != new else []
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in old or key not in new:
            out.append(path)
        elif isinstance(old[key], dict) and isinstance(new[key], dict):
            out.extend(_changed_keys(old[key], new[key], path))
        elif old[key] != new[key]:
            out.append(path)
    return out
