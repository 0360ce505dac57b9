"""What a run produces: the result document (rows, the ratios against their targets or
reported without one, the added p99, the settings), its Markdown table, and the files
written to the results folder."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from measure import Row
from settings import Settings

TARGETS: dict[str, tuple[str, str, str, float | None]] = {
    # ratio: (numerator row, denominator row, ">=" or "<=", bound; None: reported, no target)
    "D/C": ("D", "C", ">=", 2.0),
    "D/B": ("D", "B", ">=", 0.25),
    "E/C": ("E", "C", ">=", 0.85),
    "G/C": ("G", "C", ">=", 0.8),
    "H/D": ("H", "D", "<=", 1.10),  # what the access log costs: at most 10%
    "P/C": ("P", "C", ">=", None),
    "Q/C": ("Q", "C", ">=", None),
    "W/C": ("W", "C", ">=", None),  # a wallet bet against a bare proxy's GET
}
ADDED_P99_TARGET_MS = 2.0
# Row W, the seamless wallet: bets a second one process serves against a backend that
# answers at once, and the p99 a bet through the gateway adds over calling that backend
# directly, both at WALLET rate (settings.wallet_paced_rate).
WALLET_BETS_TARGET = 800.0
WALLET_ADDED_P99_TARGET_MS = 5.0


def report(
    settings: Settings, machine: dict[str, Any], rows: list[Row], paced: dict[str, Any]
) -> dict[str, Any]:
    by_id = {r.row: r for r in rows}
    ratios = []
    for name, (top, bottom, op, bound) in TARGETS.items():
        # A failed row's number measured errors, not the request: no ratio from it; nor
        # from a row this run did not measure (--rows).
        a, b = (
            None if n not in by_id or by_id[n].failed else by_id[n].requests_per_s
            for n in (top, bottom)
        )
        value = round(a / b, 3) if a and b else None
        ratios.append(
            {
                "ratio": name,
                "value": value,
                "target": None if bound is None else f"{op} {bound:g}",
                "bound": bound,
                "pass": _passes(value, op, bound),
            }
        )
    p99_a = (paced.get("A") or {}).get("p99_ms")
    p99_e = (paced.get("E") or {}).get("p99_ms")
    added = None if p99_a is None or p99_e is None else round(p99_e - p99_a, 3)
    wallet = None
    if "W" in by_id:
        w = by_id["W"]
        bets = None if w.failed else w.requests_per_s
        direct = (paced.get("W-backend") or {}).get("p99_ms")
        through = (paced.get("W") or {}).get("p99_ms")
        added_w = None if direct is None or through is None else round(through - direct, 3)
        wallet = {
            "rate": settings.wallet_paced_rate,
            "bets_per_s": bets,
            "bets_target": f">= {WALLET_BETS_TARGET:g}",
            "bets_pass": None if bets is None else bets >= WALLET_BETS_TARGET,
            "backend": paced.get("W-backend"),
            "W": paced.get("W"),
            "added_p99_ms": added_w,
            "added_p99_target": f"<= {WALLET_ADDED_P99_TARGET_MS:g} ms",
            "added_p99_pass": None if added_w is None else added_w <= WALLET_ADDED_P99_TARGET_MS,
        }
    return {
        "schema": 1,
        "wallet": wallet,
        "mode": settings.mode,
        "machine": machine,
        "settings": {
            "load_generator": "wrk --latency",
            "duration_s": settings.duration_s,
            "warmup_s": settings.warmup_s,
            "connections": settings.connections,
            "wrk_threads": settings.threads,
            "nginx_workers": settings.nginx_workers,
            "gateway_workers_F": settings.gateway_workers,
            "paced_rate": settings.paced_rate,
            "paced_duration_s": settings.paced_duration_s,
            "paced_warmup_s": settings.paced_warmup_s,
            "paced_connections": settings.paced_connections,
            "max_other_load_cores": settings.max_other_load,
            "retries": settings.retries,
            "wallet_paced_rate": settings.wallet_paced_rate,
            "rows": "".join(sorted(settings.rows)),
        },
        "rows": [asdict(r) for r in rows],
        "ratios": ratios,
        "added_p99": {
            "rate": settings.paced_rate,
            "A": paced.get("A"),
            "E": paced.get("E"),
            "added_p99_ms": added,
            "target": f"< {ADDED_P99_TARGET_MS:g} ms",
            "pass": None if added is None else added < ADDED_P99_TARGET_MS,
        },
    }


def _passes(value: float | None, op: str, bound: float | None) -> bool | None:
    if value is None or bound is None:
        return None
    return value >= bound if op == ">=" else value <= bound


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _mark(passed: bool | None) -> str:
    return "n/a" if passed is None else "PASS" if passed else "MISS"


def _errors(r: dict[str, Any]) -> str:
    # Scripted rows count every answer that was not the expected 201 (non-2xx included).
    wrong = r["unexpected_status"] if r["unexpected_status"] is not None else r["non_2xx"]
    count = str((wrong or 0) + (r["socket_errors"] or 0))
    return f"{count} FAILED" if r["failed"] else count


def render_markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    lines = [
        f"# casino-gateway benchmark ({result['mode']} run, {m['date']})",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), Python {m['python']}, "
        f"Linux {m['kernel']}; wrk {m['wrk']}, nginx {m['nginx']}, "
        f"aiohttp {m['packages']['aiohttp']}, "
        f"uvloop {m['packages']['uvloop'] or 'not installed'}. "
        f"Load average before the run: {m['load_average_1m']}. "
        f"Code: {(m['source']['commit'] or 'unknown')[:12]}"
        f"{' with uncommitted changes' if m['source']['dirty'] else ''}.",
        "",
        f"Load: wrk --latency, {s['wrk_threads']} thread, {s['connections']} connections, "
        f"{s['duration_s']} s per row after {s['warmup_s']} s of warm-up, all to 127.0.0.1. "
        f"nginx: {s['nginx_workers']} worker process(es). Gateway rows run as installed, "
        "access log on (to a file), except H.",
    ]
    if result["mode"] == "smoke":
        lines += ["", "Smoke run: it checks the harness; its numbers mean nothing."]
    lines += [
        "",
        "| Row | What | Requests/s | p50 ms | p99 ms | Errors | Peak RSS MiB "
        "| Server CPU (cores) | Other work (cores) | Runs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        if not r["available"]:
            lines.append(f"| {r['row']} | {r['label']} | {r['note']} | | | | | | | |")
            continue
        rss = _num(r["peak_rss_mib"], 1)
        if r["processes"] and r["processes"] > 1:
            rss += f" ({r['processes']} processes)"
        lines.append(
            f"| {r['row']} | {r['label']} | {_num(r['requests_per_s'], 0)} | "
            f"{_num(r['p50_ms'])} | {_num(r['p99_ms'])} | {_errors(r)} | {rss} | "
            f"{_num(r['server_cpu_cores'])} | {_num(r['other_load_cores'])} | {r['attempts']} |"
        )
    lines += [
        "",
        "Other work: CPU that processes outside the benchmark used during the measurement "
        f"(the machine may be shared). A measurement with over {s['max_other_load_cores']:g} "
        f"cores of it is repeated, up to {s['retries']} times, and the least disturbed is kept "
        "(Runs). Row Q's servers include the PostgreSQL processes working for its database; "
        "its peak RSS is the gateway's alone.",
        "",
        "| Ratio | Value | Target | |",
        "| --- | ---: | --- | --- |",
    ]
    for q in result["ratios"]:
        target, mark = q["target"] or "none yet (reported)", _mark(q["pass"])
        lines.append(f"| {q['ratio']} | {_num(q['value'])} | {target} | {mark} |")
    for r in result["rows"]:
        if r["failed"]:
            lines += ["", f"Row {r['row']}: {r['note']}"]
    p = result["added_p99"]
    lines += [
        "",
        f"Added latency at a fixed {p['rate']:g} requests/s (bench/paced.py, "
        f"{s['paced_connections']} connections, {s['paced_duration_s']:g} s):",
        "",
        "| Target | Achieved req/s | p50 ms | p90 ms | p99 ms | Errors | Other work (cores) "
        "| Runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("A", "E"):
        q = p.get(name)
        if q:
            lines.append(
                f"| {name} | {_num(q['achieved_rate'], 1)} | {_num(q['p50_ms'])} | "
                f"{_num(q['p90_ms'])} | {_num(q['p99_ms'])} | {q['errors'] + q['non_2xx']} | "
                f"{_num(q['other_load_cores'])} | {q['attempts']} |"
            )
    lines += [
        "",
        f"p99(E) - p99(A) = {_num(p['added_p99_ms'])} ms (target {p['target']}): "
        f"{_mark(p['pass'])}",
        "",
    ]
    wallet = result.get("wallet")
    if wallet:
        lines += [
            f"Seamless wallet (row W): {_num(wallet['bets_per_s'], 0)} signed Hub88 bets/s "
            f"(target {wallet['bets_target']}): {_mark(wallet['bets_pass'])}. At a fixed "
            f"{wallet['rate']:g} bets/s, the casino wallet (nginx) called directly against "
            "the same bet through the gateway (verify, ledger, backend call, ledger):",
            "",
            "| Target | Achieved req/s | p50 ms | p90 ms | p99 ms | Errors | Other work (cores) "
            "| Runs |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, label in (("backend", "casino wallet, direct"), ("W", "W, through the gateway")):
            q = wallet.get(name)
            if q:
                lines.append(
                    f"| {label} | {_num(q['achieved_rate'], 1)} | {_num(q['p50_ms'])} | "
                    f"{_num(q['p90_ms'])} | {_num(q['p99_ms'])} | {q['errors'] + q['non_2xx']} "
                    f"| {_num(q['other_load_cores'])} | {q['attempts']} |"
                )
        lines += [
            "",
            f"p99(W) - p99(direct) = {_num(wallet['added_p99_ms'])} ms (target "
            f"{wallet['added_p99_target']}): {_mark(wallet['added_p99_pass'])}",
            "",
        ]
    return "\n".join(lines)


def write_results(out: Path, result: dict[str, Any], markdown: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = result["machine"]["date"].replace(":", "").replace("-", "")
    data = json.dumps(result, indent=2) + "\n"
    written = []
    for name, text in (
        ("latest.json", data),
        ("latest.md", markdown),
        (f"bench-{stamp}.json", data),
        (f"bench-{stamp}.md", markdown),
    ):
        # Written beside and renamed: a reader never sees half a file.
        tmp = out / f"{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)
        written.append(out / name)
    return written
