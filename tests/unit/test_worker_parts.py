"""Pure parts of the worker: decoding to dead letters, the retrying writer, read-only SQL, stalls."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest

from sinks.batch_writer import Backoff, BatchWriter
from sinks.clickhouse import NotReadOnly, read_only_sql
from streams.decode import DeadLetter, Decoded, decode
from streams.stall import StallDetector

GOOD = orjson.dumps(
    {
        "event_id": "e1",
        "type": "like",
        "community_id": "c",
        "member_id": "m",
        "occurred_at": "2026-01-01T00:00:00Z",
        "source": "api",
    }
)


def test_decode_good_event() -> None:
    out = decode(GOOD)
    assert isinstance(out, Decoded)
    assert out.record.event_id == "e1" and out.source == "api"
    assert out.record.ts == 1767225600.0


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b"\xff\xfe", "not_utf8"), (b"{nope", "not_json"), (b'{"event_id": 1}', "invalid"), (None, "invalid")],
)
def test_decode_dead_letters(value: bytes | None, reason: str) -> None:
    out = decode(value)
    assert isinstance(out, DeadLetter)
    assert out.reason == reason
    assert out.detail


class FlakyClient:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.inserted: list[tuple[str, int]] = []

    def raw_insert(self, table: str, column_names: Sequence[str], insert_block: bytes, fmt: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("ClickHouse is down")
        self.inserted.append((table, len(orjson.loads(b"[" + insert_block + b"]"))))


class RecordedMetrics:
    """A writer's metrics, as the calls it made (sinks.batch_writer.WriterMetrics)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.stored_rows = 0

    def write_failed(self, table: str) -> None:
        self.calls.append(("failed", table))

    def retrying(self, table: str) -> None:
        self.calls.append(("retrying", table))

    def stored(self, table: str, rows: int, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append(("stored", table))
        self.stored_rows += rows


def test_writer_retries_until_stored_with_growing_backoff() -> None:
    client = FlakyClient(4)
    sleeps: list[float] = []
    seen = RecordedMetrics()
    writer = BatchWriter(lambda: client, seen, backoff=Backoff(first_s=1, max_s=5), sleep=sleeps.append)
    attempts = writer.write("events", ["a"], [[1], [2]])
    assert attempts == 5
    assert client.inserted == [("engagement.events", 2)]
    assert len(sleeps) == 4 and all(0 <= s <= 5 for s in sleeps)
    # the writer reports to the metrics it was handed: four failures and retries, then the rows
    assert seen.calls == [("failed", "events"), ("retrying", "events")] * 4 + [("stored", "events")]
    assert seen.stored_rows == 2


def test_backoff_is_capped_full_jitter() -> None:
    b = Backoff(first_s=0.1, max_s=2.0)
    assert b.delay(0, rand=lambda: 1.0) == pytest.approx(0.1)
    assert b.delay(3, rand=lambda: 1.0) == pytest.approx(0.8)
    assert b.delay(30, rand=lambda: 1.0) == pytest.approx(2.0)
    assert b.delay(5, rand=lambda: 0.0) == 0.0


def test_writer_gives_up_only_when_stopping() -> None:
    seen = RecordedMetrics()
    writer = BatchWriter(lambda: FlakyClient(10), seen, sleep=lambda s: None, should_stop=lambda: True)
    with pytest.raises(ConnectionError):
        writer.write("events", ["a"], [[1]])
    assert seen.calls == [("failed", "events")]


def test_read_only_sql() -> None:
    assert read_only_sql("SELECT 1;") == "SELECT 1\nSETTINGS readonly = 1"
    assert read_only_sql("SELECT 1 SETTINGS max_threads = 1") == (
        "SELECT 1 SETTINGS max_threads = 1, readonly = 1"
    )
    with pytest.raises(NotReadOnly):
        read_only_sql("SELECT 1; DROP TABLE x")
    with pytest.raises(NotReadOnly):
        read_only_sql("SELECT 1 FORMAT JSON")


def test_stall_detector() -> None:
    now = [1000.0]
    d = StallDetector(60, clock=lambda: now[0])
    d.observe_lag(5)
    now[0] += 59
    assert d.healthy()[0]
    now[0] += 2
    ok, why = d.healthy()
    assert not ok and "5 messages" in why
    d.progress()
    assert d.healthy()[0]
    now[0] += 3600
    d.observe_lag(0)
    assert d.healthy()[0]  # idle without lag is not a stall
