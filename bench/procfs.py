"""What /proc says about the run: process trees, their peak memory and CPU time, the whole
machine's CPU time (so other work on a shared machine can be told apart), listening
sockets."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields resume after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def peak_rss_mib(root: int) -> tuple[float | None, int]:
    """Sum of VmHWM (peak resident set) over the process and its descendants."""
    total_kib, count = 0, 0
    for pid in _process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        if match:
            total_kib += int(match.group(1))
            count += 1
    return (round(total_kib / 1024, 1) if count else None), count


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def tree_cpu_s(roots: list[int]) -> float:
    """CPU seconds used so far by the live processes of these trees."""
    ticks = 0
    for root in roots:
        for pid in _process_tree(root):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            rest = stat[stat.rindex(")") + 2 :].split()
            ticks += int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)
    return ticks / CLOCK_TICKS


def own_cpu_s() -> float:
    """This process and its reaped children (wrk, once it has exited)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class CpuWindow:
    """Who used the CPU during a measurement. The machine may be shared: CPU time that is
    neither the benchmark's nor its servers' is other work, and it lowers the row."""

    servers: list[int]
    busy: float = 0.0
    ours: float = 0.0
    server: float = 0.0
    started: float = 0.0

    def __enter__(self) -> CpuWindow:
        self.started = time.monotonic()
        self.busy, self.server, self.ours = machine_busy_s(), tree_cpu_s(self.servers), own_cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        server = tree_cpu_s(self.servers) - self.server
        ours = own_cpu_s() - self.ours + server
        self.busy = (machine_busy_s() - self.busy) / elapsed
        self.server = server / elapsed
        self.ours = ours / elapsed

    @property
    def other_cores(self) -> float:
        return round(max(0.0, self.busy - self.ours), 2)


def listening_sockets(port: int) -> int:
    """Listening TCP sockets on 127.0.0.1:port: with SO_REUSEPORT each worker has one."""
    want = f"0100007F:{port:04X}"
    count = 0
    with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[1] == want and fields[3] == "0A":
                count += 1
    return count
