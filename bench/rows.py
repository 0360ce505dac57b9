"""The rows, A to H then P, Q and W (H is measured right after D), in the order a run takes
them: what each one starts, checks and measures (with the paced measurements of A, E and W),
gathered into the run's result. `--rows` picks some of them."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credentials import make_secrets
from http_checks import (
    check_bet,
    check_intent,
    check_launch,
    check_payment,
    create_payment,
    warm_game,
)
from hub88_bets import BACKEND_DEBIT_PATH, BET_PATH, MAX_RATE, write_bets
from machine import machine_info
from measure import Meter, Row, record_rss
from paths import (
    BETS_SCRIPT,
    DEPOSIT_BODY,
    GAME_ID,
    INTENT_PATH,
    LAUNCH_BODY,
    PAYMENTS_PATH,
    POST_SCRIPT,
)
from procs import Proc, Procs
from progress import progress
from report import report
from servers import Servers, workers_flag_missing
from settings import Settings
from throwaway_pg import PostgresUnavailable, throwaway_database
from wrk import Script

GAME_PATH = f"/v1/games/{GAME_ID}"
# Row Q's ledger: the URL is a secret in production, so it comes from the environment.
POSTGRES_LEDGER = {"backend": "postgres", "url_env": "BENCH_LEDGER_URL"}
LAUNCH_PATH = f"/v1/games/{GAME_ID}/launch"
# Rows P and Q: a new key prefix for every wrk run (see bench/post_json.lua).
CREATE = Script(POST_SCRIPT, lambda: ["201", DEPOSIT_BODY, f"bench-{secrets.token_hex(8)}"])
# Row G: the same launch every time, each one answered 200.
LAUNCH = Script(POST_SCRIPT, lambda: ["200", LAUNCH_BODY])


class Bench:
    """One run: its throwaway secrets, then its servers and rows."""

    def __init__(self, settings: Settings, workdir: Path, procs: Procs) -> None:
        self.settings = settings
        self.workdir = workdir
        self.procs = procs
        self.keys = make_secrets()
        self.api_headers = {"X-API-Key": self.keys.api_key}
        self.servers = Servers(settings, workdir, procs, self.keys)
        self.rows: list[Row] = []
        self.paced: dict[str, Any] = {}

    def run(self) -> dict[str, Any]:
        # Taken before any load: the load average then is other work on the machine.
        machine = machine_info(datetime.now(UTC))
        servers = self.servers
        progress(f"nginx: upstream :{servers.upstream_port}, proxy :{servers.nginx_proxy_port}")
        meter = Meter(self.settings, servers.start_nginx())
        wanted = self.settings.rows
        if wanted & {"A", "B"}:
            self._nginx_rows(meter)
        if "C" in wanted:
            self._proxy_row(meter)
        if "D" in wanted:
            row = Row("D", "gateway, GET /v1/games/{id}, cache hit (access log on)", GAME_PATH)
            self._cached_row(meter, row, 1)
        if "H" in wanted:
            # H right after D: the two differ only by the access log, so they are measured
            # as close together as they can be on a machine whose speed drifts.
            row = Row("H", "gateway, as D with the access log off", GAME_PATH)
            self._cached_row(meter, row, 1, log_level="warning")
        if "E" in wanted:
            self._read_payment_row(meter)
        if "F" in wanted:
            self._workers_row(meter)
        if "G" in wanted:
            self._launch_row(meter)
        if "P" in wanted:
            self._create_row(
                meter,
                Row(
                    "P",
                    "gateway, POST /v1/payments, new Idempotency-Key each, SQLite ledger: "
                    "claim, Stripe adapter -> upstream, record",
                    PAYMENTS_PATH,
                ),
            )
        if "Q" in wanted:
            self._postgres_row(meter)
        if "W" in wanted:
            self._wallet_row(meter)
        self.rows = [r for r in self.rows if r.row in wanted]
        self.rows.sort(key=lambda r: r.row)
        return report(self.settings, machine, self.rows, self.paced)

    @contextlib.contextmanager
    def _gateway(
        self,
        name: str,
        workers: int = 1,
        ledger: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        log_level: str | None = None,
    ) -> Iterator[tuple[Proc, str]]:
        proc, base = self.servers.start_gateway(name, workers, ledger, log_level, env)
        try:
            yield proc, base
        finally:
            self.procs.stop(proc)

    def _nginx_rows(self, meter: Meter) -> None:
        direct = self.servers.upstream + INTENT_PATH
        check_intent(direct)
        self.rows.append(meter.measure(Row("A", "nginx upstream, direct", INTENT_PATH), direct))
        self.paced["A"] = meter.paced("A", direct)

        via_nginx = f"http://127.0.0.1:{self.servers.nginx_proxy_port}{INTENT_PATH}"
        check_intent(via_nginx)
        row = Row("B", "nginx proxy_pass (keepalive) -> upstream", INTENT_PATH)
        self.rows.append(meter.measure(row, via_nginx))

    def _proxy_row(self, meter: Meter) -> None:
        proc, base = self.servers.start_proxy()
        try:
            check_intent(base + INTENT_PATH)
            row = Row("C", "bench/proxy.py, bare aiohttp proxy -> upstream", INTENT_PATH)
            self.rows.append(meter.measure(row, base + INTENT_PATH, server=proc))
            record_rss(row, proc)
        finally:
            self.procs.stop(proc)

    def _cached_row(
        self, meter: Meter, row: Row, workers: int, log_level: str | None = None
    ) -> None:
        with self._gateway(f"gateway-{row.row}", workers, log_level=log_level) as (proc, base):
            # Connections are spread over the workers by the kernel: a few fresh ones warm
            # each worker's own cache, the wrk warm-up does the rest.
            attempts = 1 if workers == 1 else 8 * workers
            warm_game(base + GAME_PATH, self.api_headers, attempts)
            self.rows.append(meter.measure(row, base + GAME_PATH, self.api_headers, proc))
            record_rss(row, proc)

    def _read_payment_row(self, meter: Meter) -> None:
        with self._gateway("gateway-E") as (proc, base):
            # The ledger answers 404 for a payment it does not hold: make one, as a client
            # would. The fixture intent stays `processing`, so every read asks Stripe.
            path = f"{PAYMENTS_PATH}/{create_payment(base, self.api_headers)}"
            check_payment(base, path, self.api_headers)
            row = Row(
                "E",
                "gateway, GET /v1/payments/{id}, no cache: auth, rate limit, ledger, breaker, "
                "Stripe adapter -> upstream",
                f"{PAYMENTS_PATH}/{{id}}",
            )
            self.rows.append(meter.measure(row, base + path, self.api_headers, proc))
            self.paced["E"] = meter.paced("E", base + path, self.api_headers, proc)
            record_rss(row, proc)

    def _workers_row(self, meter: Meter) -> None:
        workers = self.settings.gateway_workers
        row = Row("F", f"gateway --workers {workers}, as D", GAME_PATH)
        missing = workers_flag_missing()
        if missing:
            self._not_available(row, missing)
        else:
            self._cached_row(meter, row, workers)

    def _launch_row(self, meter: Meter) -> None:
        with self._gateway("gateway-G") as (proc, base):
            check_launch(base + LAUNCH_PATH, self.api_headers, LAUNCH_BODY)
            row = Row(
                "G",
                "gateway, POST /v1/games/{id}/launch, route without cache: auth, snapshot "
                "lookup, selection, breaker, Slotegrator adapter -> upstream",
                "/v1/games/{id}/launch",
            )
            url = base + LAUNCH_PATH
            self.rows.append(meter.measure(row, url, self.api_headers, proc, LAUNCH))
            record_rss(row, proc)

    def _create_row(
        self,
        meter: Meter,
        row: Row,
        ledger: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        more_servers: Callable[[], list[int]] | None = None,
    ) -> None:
        with self._gateway(f"gateway-{row.row}", 1, ledger, env) as (proc, base):
            create_payment(base, self.api_headers)
            url = base + PAYMENTS_PATH
            meter.measure(row, url, self.api_headers, proc, CREATE, more_servers)
            record_rss(row, proc)
        self.rows.append(row)

    def _postgres_row(self, meter: Meter) -> None:
        row = Row(
            "Q",
            "gateway, as P with a PostgreSQL ledger (local server, throwaway database)",
            PAYMENTS_PATH,
        )
        try:
            with throwaway_database() as db:
                progress(f"Q: PostgreSQL database {db.name}, dropped after the row")
                env = {POSTGRES_LEDGER["url_env"]: db.url}
                self._create_row(meter, row, POSTGRES_LEDGER, env, db.server_pids)
        except PostgresUnavailable as exc:
            self._not_available(row, str(exc))

    def _bets(self, count: int) -> Path:
        return write_bets(self.workdir, self.keys.hub88_wallet_private_pem, count)

    def _wallet_row(self, meter: Meter) -> None:
        s = self.settings
        with self._gateway("gateway-W") as (proc, base):
            check_bet(base + BET_PATH, self._bets(1))
            row = Row(
                "W",
                "gateway, Hub88 bet callbacks (signed, a new transaction id each), SQLite "
                "ledger: verify, record, casino wallet (nginx) debit, record",
                BET_PATH,
            )
            seconds = max(s.duration_s, s.warmup_s)
            bets = Script(BETS_SCRIPT, lambda: [str(self._bets(MAX_RATE * seconds + 500))])
            self.rows.append(meter.measure(row, base + BET_PATH, {}, proc, bets))
            record_rss(row, proc)
            rate = s.wallet_paced_rate
            backend = self.servers.upstream + BACKEND_DEBIT_PATH
            self.paced["W-backend"] = meter.paced(
                "W-backend", backend, rate=rate, bodies=self._bets
            )
            self.paced["W"] = meter.paced(
                "W", base + BET_PATH, server=proc, rate=rate, bodies=self._bets
            )

    def _not_available(self, row: Row, why: str) -> None:
        row.available = False
        # One line: it goes into a Markdown table cell (a driver's error has several).
        row.note = "not available: " + " ".join(why.split())
        progress(f"{row.row}: {row.note}")
        self.rows.append(row)
