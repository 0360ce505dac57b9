"""The access log as built for the hot path: its fields, its redaction, its writer thread."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.obs import logs
from gateway.obs.log_sink import LineSink

SECRET = "sk_live_" + "s3cr3t" * 4


class Stream(io.StringIO):
    """A text stream without a binary buffer, counting its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.threads: set[str] = set()

    def write(self, text: str) -> int:
        self.writes += 1
        self.threads.add(threading.current_thread().name)
        return super().write(text)


@pytest.fixture
def stream() -> Iterator[Stream]:
    out = Stream()
    level = logging.getLogger().level
    logs.REDACTOR.set_secrets([SECRET])
    logs.configure("INFO", out)
    yield out
    logs.reset()
    logging.getLogger().setLevel(level)


def lines(stream: Stream) -> list[dict[str, Any]]:
    logs._SINK.flush()  # type: ignore[union-attr]
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def request(path: str, method: str = "GET") -> Any:
    return SimpleNamespace(path=path, method=method)


CTX = {
    "request_id": "abc",
    "request_id_chosen": False,
    "client_id": "web",
    "client_ip": "203.0.113.7",
    "route": "games.get",
    "provider": None,
    "cache": "HIT",
    "failover": False,
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
}


def test_an_access_line_holds_the_allow_listed_fields(stream: Stream):
    logs.access_log(request("/v1/games/netent:starburst"), 200, 0.00123, CTX)
    before = time.time()
    logs.access_log(request("/v1/games/netent:starburst"), 200, 0.00123, CTX)
    (line, again) = lines(stream)
    assert before - 0.001 <= again["ts"] <= time.time() + 0.001
    assert line.pop("ts") <= again.pop("ts")
    assert line == again == {
        "level": "info",
        "logger": "gateway.access",
        "msg": "request",
        "request_id": "abc",
        "client_id": "web",
        "client_ip": "203.0.113.7",
        "route": "games.get",
        "method": "GET",
        "path": "/v1/games/netent:starburst",
        "status": 200,
        "duration_ms": 1.23,
        "provider": None,
        "cache": "HIT",
        "failover": False,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }


def test_what_the_client_chose_is_redacted(stream: Stream):
    card = "4111111111111111"
    ctx = {**CTX, "request_id": "5500000000000004", "request_id_chosen": True}
    logs.access_log(request(f"/v1/games/{card}"), 404, 0.001, ctx)
    logs.access_log(request(f"/v1/payments/{SECRET}", method=card), 404, 0.001, ctx)
    logs.access_log(request(f"/v1/games/{card}"), 404, 0.001, ctx)  # remembered, same answer
    text = json.dumps(lines(stream))
    assert card not in text and "5500000000000004" not in text and SECRET not in text
    assert [ln["path"] for ln in lines(stream)] == [
        "/v1/games/[PAN]",
        "/v1/payments/[REDACTED]",
        "/v1/games/[PAN]",
    ]


def test_a_new_secret_is_masked_in_paths_seen_before(stream: Stream):
    later = "hub88-key-" + "x1y2" * 6  # no credential pattern: masked once configured
    logs.access_log(request(f"/v1/x/{later}"), 404, 0.001, CTX)
    logs.REDACTOR.set_secrets([later])
    logs.access_log(request(f"/v1/x/{later}"), 404, 0.001, CTX)
    assert [ln["path"] for ln in lines(stream)] == [f"/v1/x/{later}", "/v1/x/[REDACTED]"]


def test_other_records_go_to_the_same_sink_redacted(stream: Stream):
    logging.getLogger("gateway.test").error(
        "provider said %s", SECRET, extra={"card": "4111 1111 1111 1111"}
    )
    (line,) = lines(stream)
    assert line["msg"] == "provider said [REDACTED]" and line["card"] == "[PAN]"


def test_below_info_there_is_no_access_line(stream: Stream):
    logging.getLogger().setLevel(logging.WARNING)
    logs.access_log(request("/v1/games"), 200, 0.001, CTX)
    assert lines(stream) == []


def test_the_writer_thread_writes_in_batches(stream: Stream):
    for _ in range(500):
        logs.access_log(request("/v1/games"), 200, 0.001, CTX)
    sink = logs._SINK
    assert sink is not None
    sink.close()
    assert len(stream.getvalue().splitlines()) == 500
    assert stream.writes <= 5  # not one write per line


def test_a_full_sink_drops_and_says_how_many():
    out = Stream()
    sink = LineSink(out, max_lines=3, interval_s=60)
    for i in range(5):
        sink.put(f'{{"n":{i}}}'.encode())
    sink.close()
    written = [json.loads(line) for line in out.getvalue().splitlines()]
    assert written[:3] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert written[3]["dropped"] == 2 and written[3]["level"] == "warning"


def test_bytes_go_to_the_binary_buffer_after_the_text_layer():
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8")
    sink = LineSink(text, interval_s=60)
    text.write("first\n")  # written as text before the sink's line: stays first
    sink.put(b'{"n":1}')
    sink.close()
    assert raw.getvalue() == b'first\n{"n":1}\n'


def test_trace_ids_and_config_hashes_are_logged_whole_even_with_a_card_like_digit_run():
    # Random hex ids hold a 13-digit run about once in 55: masking them would lose the trace.
    trace_id = "0af74111111111111111aaaaaaaaa31c"
    record = logging.makeLogRecord(
        {"msg": "request", "trace_id": trace_id, "new_hash": trace_id, "note": trace_id}
    )
    logs.RedactingFilter().filter(record)
    assert record.trace_id == record.new_hash == trace_id
    assert record.note == "0af[PAN]aaaaaaaaa31c"
