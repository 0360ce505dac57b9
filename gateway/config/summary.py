"""What `casino-gateway check` says a valid config will do, one line a subject.

URLs are shown without user info or query, where a credential may hide.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.config.model import Config


def describe_ledger(config: Config) -> str:
    ledger = config.ledger
    where = {
        "sqlite": f"sqlite file {ledger.path}",
        "postgres": "postgres (url from the environment)",
        "memory": "memory (payments forgotten at restart; tests only)",
    }[ledger.backend]
    return f"{where}, settled records kept {ledger.retention_days} days"


def delivery_summary(config: Config) -> list[str]:
    """Where events, wallet calls and traces go, when the config sends them anywhere."""
    lines = []
    events = config.event_settings
    if events is not None and events.backend is not None:
        lines.append(
            f"events: delivered to {_where(events.backend.webhook_url)}, "
            f"kept {events.retention_days} days"
        )
    if config.wallet is not None:
        lines.append(
            f"wallet: backend {_where(config.wallet.backend_url)}, "
            f"timeout {config.wallet.timeout_ms} ms"
        )
    if config.tracing is not None:
        lines.append(
            f"tracing: spans to {_where(config.tracing.otlp_endpoint)}, "
            f"{config.tracing.sample_ratio:g} of the traces the gateway starts"
        )
    return lines


def _where(url: str) -> str:
    """A URL without user info or query: either may carry a credential."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def catalog_summary(config: Config) -> list[str]:
    """How each aggregator behind a games route keeps its catalog, one line each."""
    named = dict.fromkeys(
        name for op, route in config.routes.items() if op.startswith("games.")
        for name in route.providers
    )
    lines = []
    for name in named:
        provider = config.providers.get(name)
        if provider is None:
            continue
        line = (
            f"catalog {name}: refreshed every {provider.catalog.refresh_s:g} s (jittered), "
            f"kept {provider.catalog.max_stale_s:g} s while refreshes fail"
        )
        if provider.blocked_countries:
            line += f"; offers blocked in {', '.join(sorted(provider.blocked_countries))}"
        lines.append(line)
    for studio, countries in sorted(config.studio_blocked_countries.items()):
        lines.append(f"studio {studio}: games blocked in {', '.join(sorted(countries))}")
    return lines
