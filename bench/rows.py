"""The eight rows, A to H (H is measured right after D), what each one starts, checks and
measures (with the paced measurements of A and E), gathered into the run's result."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credentials import make_secrets_and_payment_id
from http_checks import check_intent, check_launch, check_payment, warm_game
from machine import machine_info
from measure import Meter, Row, record_rss
from paths import GAME_ID, INTENT_PATH, LAUNCH_BODY
from procs import Procs
from progress import progress
from report import report
from servers import Servers, workers_flag_missing
from settings import Settings
from wrk import post_script


class Bench:
    """One run: its throwaway secrets, then its servers and rows."""

    def __init__(self, settings: Settings, workdir: Path, procs: Procs) -> None:
        self.settings = settings
        self.workdir = workdir
        self.procs = procs
        self.keys, self.payment_id = make_secrets_and_payment_id()
        self.api_headers = {"X-API-Key": self.keys.api_key}
        self.servers = Servers(settings, workdir, procs, self.keys)

    def run(self) -> dict[str, Any]:
        # Taken before any load: the load average then is other work on the machine.
        machine = machine_info(datetime.now(UTC))
        rows: list[Row] = []
        paced: dict[str, Any] = {}
        servers = self.servers
        progress(f"nginx: upstream :{servers.upstream_port}, proxy :{servers.nginx_proxy_port}")
        meter = Meter(self.settings, servers.start_nginx())
        direct = servers.upstream + INTENT_PATH
        check_intent(direct)
        rows.append(meter.measure(Row("A", "nginx upstream, direct", INTENT_PATH), direct))
        paced["A"] = meter.paced("A", direct)

        via_nginx = f"http://127.0.0.1:{servers.nginx_proxy_port}{INTENT_PATH}"
        check_intent(via_nginx)
        row = Row("B", "nginx proxy_pass (keepalive) -> upstream", INTENT_PATH)
        rows.append(meter.measure(row, via_nginx))

        proc, base = servers.start_proxy()
        try:
            check_intent(base + INTENT_PATH)
            row = Row("C", "bench/proxy.py, bare aiohttp proxy -> upstream", INTENT_PATH)
            rows.append(meter.measure(row, base + INTENT_PATH, server=proc))
            record_rss(row, proc)
        finally:
            self.procs.stop(proc)

        game_path = f"/v1/games/{GAME_ID}"
        proc, base = servers.start_gateway("gateway-D", 1)
        try:
            warm_game(base + game_path, self.api_headers, attempts=1)
            row = Row("D", "gateway, GET /v1/games/{id}, cache hit (access log on)", game_path)
            rows.append(meter.measure(row, base + game_path, self.api_headers, proc))
            record_rss(row, proc)
        finally:
            self.procs.stop(proc)
        # H right after D: the two differ only by the access log, so they are measured as
        # close together as they can be on a machine whose speed drifts.
        proc, base = servers.start_gateway("gateway-H", 1, log_level="warning")
        try:
            warm_game(base + game_path, self.api_headers, attempts=1)
            row = Row("H", "gateway, as D with the access log off", game_path)
            rows.append(meter.measure(row, base + game_path, self.api_headers, proc))
            record_rss(row, proc)
        finally:
            self.procs.stop(proc)

        payment_path = f"/v1/payments/{self.payment_id}"
        proc, base = servers.start_gateway("gateway-E", 1)
        try:
            check_payment(base + payment_path, self.api_headers)
            row = Row(
                "E",
                "gateway, GET /v1/payments/{id}, no cache: auth, rate limit, breaker, "
                "Stripe adapter -> upstream",
                "/v1/payments/{id}",
            )
            rows.append(meter.measure(row, base + payment_path, self.api_headers, proc))
            paced["E"] = meter.paced("E", base + payment_path, self.api_headers, proc)
            record_rss(row, proc)
        finally:
            self.procs.stop(proc)

        workers = self.settings.gateway_workers
        row = Row("F", f"gateway --workers {workers}, as D", game_path)
        missing = workers_flag_missing()
        if missing:
            row.available = False
            row.note = f"not available: {missing}"
            progress(f"F: {row.note}")
            rows.append(row)
        else:
            proc, base = servers.start_gateway("gateway-F", workers)
            try:
                # Connections are spread over the workers by the kernel: a few fresh ones warm
                # each worker's own cache, the wrk warm-up does the rest.
                warm_game(base + game_path, self.api_headers, attempts=8 * workers)
                rows.append(meter.measure(row, base + game_path, self.api_headers, proc))
                record_rss(row, proc)
            finally:
                self.procs.stop(proc)

        launch_path = f"/v1/games/{GAME_ID}/launch"
        script = post_script(self.workdir / "launch.lua", LAUNCH_BODY)
        proc, base = servers.start_gateway("gateway-G", 1)
        try:
            check_launch(base + launch_path, self.api_headers, LAUNCH_BODY)
            row = Row(
                "G",
                "gateway, POST /v1/games/{id}/launch, route without cache: auth, snapshot "
                "lookup, selection, breaker, Slotegrator adapter -> upstream",
                "/v1/games/{id}/launch",
            )
            rows.append(meter.measure(row, base + launch_path, self.api_headers, proc, script))
            record_rss(row, proc)
        finally:
            self.procs.stop(proc)

        rows.sort(key=lambda r: r.row)
        return report(self.settings, machine, rows, paced)
