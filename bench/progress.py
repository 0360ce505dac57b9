"""What the run tells its user on stderr: progress lines timed from the start, and the error
that ends a run."""

from __future__ import annotations

import sys
import time

# Set when the harness is first imported, which is when the command starts.
_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The run cannot go on (a server did not start, an answer was wrong)."""
