"""Prometheus metrics, one registry per gateway so tests can run several gateways at once.

Names carry the `gateway_` prefix, base units and `_total` on counters. Label values are
bounded: routes are the five operations (or `other`), providers and clients come from the
config, outcomes from fixed sets.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
REFRESH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # In multi-process mode the values live in files; the registry only serves the scrape.
        self.registry = registry or CollectorRegistry(auto_describe=True)
        mp = multiprocess_dir() is not None
        r = None if mp else self.registry

        def gauge(name: str, doc: str, labels: tuple[str, ...] = (), mode: Any = "max") -> Gauge:
            if mp:
                return Gauge(name, doc, labels, registry=None, multiprocess_mode=mode)
            return Gauge(name, doc, labels, registry=r)

        self.requests = Counter(
            "gateway_requests_total",
            "Requests answered, by route, status and client",
            ("route", "status", "client"),
            registry=r,
        )
        self.request_duration = Histogram(
            "gateway_request_duration_seconds",
            "Time to answer a request, by route",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_requests = Counter(
            "gateway_upstream_requests_total",
            "Calls to providers, by provider, operation and outcome",
            ("provider", "operation", "outcome"),
            registry=r,
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_duration_seconds",
            "Provider call duration, by provider, operation and outcome",
            ("provider", "operation", "outcome"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.breaker_state = gauge(
            "gateway_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            ("provider", "operation"),
            mode="max",
        )
        self.breaker_transitions = Counter(
            "gateway_breaker_transitions_total",
            "Circuit breaker state changes",
            ("provider", "operation", "from_state", "to_state"),
            registry=r,
        )
        self.provider_healthy = gauge(
            "gateway_provider_healthy",
            "1 when the provider is healthy, 0 when taken out",
            ("provider",),
            mode="min",
        )
        self.provider_drained = gauge(
            "gateway_provider_drained",
            "1 when an operator drained the provider",
            ("provider",),
            mode="max",
        )
        self.cache = Counter(
            "gateway_cache_requests_total",
            "Cache lookups by route and result (hit, miss, stale)",
            ("route", "result"),
            registry=r,
        )
        self.provider_auth_failures = Counter(
            "gateway_provider_auth_failures_total",
            "Provider answers refusing the gateway's own credentials (HTTP 401/403)",
            ("provider",),
            registry=r,
        )
        self.provider_skips = Counter(
            "gateway_provider_skips_total",
            "Providers of a route not asked because they cannot serve the request",
            ("provider", "reason"),
            registry=r,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total",
            "Requests refused by a rate limit, by route and scope",
            ("route", "scope"),
            registry=r,
        )
        self.failovers = Counter(
            "gateway_failovers_total",
            "Moves from one provider to the next, by route",
            ("route", "from_provider", "to_provider"),
            registry=r,
        )
        self.payment_routing = Counter(
            "gateway_payment_routing_total",
            "New payments routed, by the routing rule that chose their providers (or default)",
            ("rule",),
            registry=r,
        )
        self.payment_declines = Counter(
            "gateway_payment_declines_total",
            "Card declines, by provider, kind (soft, hard) and whether the payment cascaded",
            ("provider", "decline", "cascaded"),
            registry=r,
        )
        self.refunds = Counter(
            "gateway_refunds_total",
            "Refunds asked of providers, by provider and outcome (pending, succeeded, failed, "
            "unknown, refused)",
            ("provider", "outcome"),
            registry=r,
        )
        self.idempotent_replays = Counter(
            "gateway_idempotent_replays_total",
            "Payment requests answered from the idempotency store",
            registry=r,
        )
        self.config_reloads = Counter(
            "gateway_config_reloads_total",
            "Config reload attempts by result",
            ("result",),
            registry=r,
        )
        self.config_last_success = gauge(
            "gateway_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load",
            mode="max",
        )
        self.config_info = gauge(
            "gateway_config_info",
            "The running config's hash",
            ("hash",),
            mode="max",
        )
        self.storage_degraded = gauge(
            "gateway_storage_degraded",
            "1 while the shared store is unreachable and local state is used",
            mode="max",
        )
        self.ledger_up = gauge(
            "gateway_ledger_up",
            "1 while the ledger answers, 0 after a transaction or probe could not reach it",
            mode="min",
        )
        # The outbox is the ledger's: every process reads the same backlog.
        self.events_pending = gauge(
            "gateway_event_deliveries_pending",
            "Events in the ledger's outbox waiting for delivery to the backend",
            mode="livemax",
        )
        self.events_failing = gauge(
            "gateway_event_deliveries_failing",
            "Undelivered events whose last delivery attempt failed, given-up ones included",
            mode="livemax",
        )
        self.events_lag = gauge(
            "gateway_event_outbox_lag_seconds",
            "Age of the oldest event waiting for delivery (0 when none waits)",
            mode="livemax",
        )
        self.event_deliveries = Counter(
            "gateway_event_deliveries_total",
            "Delivery attempts to the backend, by outcome (delivered, failed, given_up)",
            ("outcome",),
            registry=r,
        )

        self.catalog_age = gauge(
            "gateway_catalog_snapshot_age_seconds",
            "Age of each aggregator's catalog in the snapshot (set when scraped)",
            ("provider",),
            mode="max",
        )
        self.catalog_games = gauge(
            "gateway_catalog_snapshot_games",
            "Games in each aggregator's catalog in the snapshot",
            ("provider",),
            mode="max",
        )
        self.catalog_refreshes = Counter(
            "gateway_catalog_refreshes_total",
            "Catalog refreshes by provider and outcome (fetched, shared, error, timeout)",
            ("provider", "outcome"),
            registry=r,
        )
        self.catalog_refresh_duration = Histogram(
            "gateway_catalog_refresh_duration_seconds",
            "Time a catalog refresh took, by provider",
            ("provider",),
            buckets=REFRESH_BUCKETS,
            registry=r,
        )
        self.wallet_requests = Counter(
            "gateway_wallet_requests_total",
            "Wallet callbacks answered, by provider, operation and normalized outcome",
            ("provider", "operation", "outcome"),
            registry=r,
        )
        self.wallet_backend_duration = Histogram(
            "gateway_wallet_backend_duration_seconds",
            "Time the casino backend took to answer a wallet call, by operation",
            ("operation",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.wallet_duplicates = Counter(
            "gateway_wallet_duplicates_total",
            "Wallet retries answered from the ledger without asking the backend, by provider",
            ("provider",),
            registry=r,
        )
        self.wallet_signature_failures = Counter(
            "gateway_wallet_signature_failures_total",
            "Wallet callbacks refused for a bad, missing or stale signature (or a reused "
            "nonce), by provider",
            ("provider",),
            registry=r,
        )
        self._before_render: list[Callable[[], None]] = []
        # Both results from the start: an alert on increase() needs the series before its
        # first failure, not created by it.
        for result in ("success", "failure"):
            self.config_reloads.labels(result)

        # labels() takes a lock and builds a key each call: keep the children we have seen.
        self._request_children: dict[tuple[str, int, str], tuple[Any, Any]] = {}
        self._cache_children: dict[tuple[str, str], Any] = {}
        self._upstream_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._wallet_children: dict[tuple[str, str, str], Any] = {}

    def request_done(self, route: str, status: int, client: str, elapsed_s: float) -> None:
        key = (route, status, client)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, str(status), client),
                self.request_duration.labels(route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(elapsed_s)

    def upstream_done(
        self, provider: str, operation: str, outcome: str, elapsed_s: float | None
    ) -> None:
        """One provider call (or skip: no duration), through cached label children."""
        key = (provider, operation, outcome)
        children = self._upstream_children.get(key)
        if children is None:
            children = self._upstream_children[key] = (
                self.upstream_requests.labels(provider, operation, outcome),
                self.upstream_duration.labels(provider, operation, outcome),
            )
        children[0].inc()
        if elapsed_s is not None:
            children[1].observe(elapsed_s)

    def wallet_done(self, provider: str, operation: str, outcome: str) -> None:
        key = (provider, operation, outcome)
        child = self._wallet_children.get(key)
        if child is None:
            child = self._wallet_children[key] = self.wallet_requests.labels(*key)
        child.inc()

    def cache_result(self, route: str, status: str) -> None:
        key = (route, status)
        child = self._cache_children.get(key)
        if child is None:
            child = self._cache_children[key] = self.cache.labels(route, status.lower())
        child.inc()

    def catalog_refreshed(self, provider: str, outcome: str, elapsed_s: float) -> None:
        self.catalog_refreshes.labels(provider, outcome).inc()
        self.catalog_refresh_duration.labels(provider).observe(elapsed_s)

    def before_render(self, hook: Callable[[], None]) -> None:
        """`hook()` before each scrape: for values that are a function of the time (ages)."""
        self._before_render.append(hook)

    def set_config_hash(self, digest: str) -> None:
        if multiprocess_dir() is None:
            self.config_info.clear()
        else:
            # Files outlive clear(): zero what this process said before instead.
            for labels in list(self.config_info._metrics):
                self.config_info.labels(*labels).set(0)
        self.config_info.labels(digest).set(1)

    def render(self) -> bytes:
        for hook in self._before_render:
            hook()
        if multiprocess_dir() is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
