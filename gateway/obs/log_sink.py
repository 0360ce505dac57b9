"""Log lines written by a thread of their own, in batches.

The event loop only appends a finished line to a deque; a writer thread wakes every
`interval_s`, takes whatever has accumulated and writes it in one call. So a request never
waits on the stream (a slow terminal, a full pipe), and a busy gateway makes one write per
batch instead of one per line. The deque is bounded: when the writer cannot keep up, new
lines are dropped and counted, and the count is written as a line of its own.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import IO, Any

import orjson


class LineSink:
    def __init__(self, stream: IO[str], *, max_lines: int = 100_000, interval_s: float = 0.05):
        self._stream = stream
        # Bytes go to the binary buffer under a text stream, where there is one.
        self._binary: IO[bytes] | None = getattr(stream, "buffer", None)
        self._lines: collections.deque[bytes] = collections.deque()
        self._max_lines = max_lines
        self._interval_s = interval_s
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def put(self, line: bytes) -> None:
        """Queue one line (without its newline). Safe from any thread."""
        if len(self._lines) >= self._max_lines:
            self.dropped += 1
            return
        self._lines.append(line)

    def flush(self) -> None:
        """Write what is queued now, from the calling thread."""
        with self._write_lock:
            batch: list[bytes] = []
            pop = self._lines.popleft
            try:
                while True:
                    batch.append(pop())
            except IndexError:
                pass
            if self.dropped:
                dropped, self.dropped = self.dropped, 0
                batch.append(_dropped_line(dropped))
            if not batch:
                return
            data = b"\n".join(batch) + b"\n"
            try:
                if self._binary is not None:
                    self._stream.flush()  # anything written as text first stays first
                    self._binary.write(data)
                    self._binary.flush()
                else:
                    self._stream.write(data.decode("utf-8", "replace"))
                    self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken stream: nothing else can be done with the lines

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()
        self.flush()

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


def _dropped_line(count: int) -> bytes:
    record: dict[str, Any] = {
        "ts": round(time.time(), 3),
        "level": "warning",
        "logger": "gateway.logs",
        "msg": "log lines dropped: the writer could not keep up",
        "dropped": count,
    }
    return orjson.dumps(record)
