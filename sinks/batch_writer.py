"""Stores row batches in ClickHouse, retrying with exponential backoff and jitter.

While ClickHouse refuses writes, `write` does not return: the caller (the worker's
agent) stops taking messages, Kafka keeps them, and nothing is buffered without
bound. Offsets are acknowledged by the caller only after `write` returns.

A writer is handed its metrics (`WriterMetrics`); it imports no process's globals.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import pyarrow as pa

log = logging.getLogger(__name__)


class WriterMetrics(Protocol):
    """What a writer reports, to whatever records it (the worker's: streams.metrics.SINK)."""

    def write_failed(self, table: str) -> None:
        """A write to `table` failed: consumption is paused until a write is stored."""

    def retrying(self, table: str) -> None:
        """The failed write to `table` is tried again after a backoff."""

    def stored(self, table: str, rows: int, seconds: float) -> None:
        """`rows` are stored in `table`, `seconds` after the first attempt (retries included)."""


class Inserter(Protocol):
    def raw_insert(self, table: str, column_names: Sequence[str], insert_block: bytes, fmt: str) -> Any: ...


def encode_arrow(table: pa.Table) -> bytes:
    """Arrow IPC stream bytes (ClickHouse's ArrowStream format): columns, not rows, to parse."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def encode_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """JSONCompactEachRow: one JSON array per row, rows separated by commas (ClickHouse
    skips them), so orjson encodes the whole batch in one call. Times are float Unix
    seconds, which ClickHouse reads into DateTime64: no datetime objects on the hot path."""
    return orjson.dumps(rows)[1:-1]


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.1
    max_s: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [0, min(max, first * factor**attempt)]."""
        return rand() * min(self.max_s, self.first_s * self.factor**attempt)


class BatchWriter:
    """Writes whole batches; each table's rows go in one INSERT."""

    def __init__(
        self,
        client_factory: Callable[[], Inserter],
        metrics: WriterMetrics,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self._factory = client_factory
        self._metrics = metrics
        self._client: Inserter | None = None
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._should_stop = should_stop

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        """Store `rows` in `engagement.<table>`; retry until stored. Returns the attempts used."""
        if not rows:
            return 0
        return self._insert(table, columns, encode_rows(rows), "JSONCompactEachRow", len(rows))

    def write_arrow(self, table: str, data: pa.Table) -> int:
        """Store an Arrow table (its column names are the table's) in `engagement.<table>`."""
        if data.num_rows == 0:
            return 0
        return self._insert(table, data.column_names, encode_arrow(data), "ArrowStream", data.num_rows)

    def _insert(self, table: str, columns: Sequence[str], body: bytes, fmt: str, n_rows: int) -> int:
        attempt = 0
        started = time.perf_counter()
        while True:
            try:
                if self._client is None:
                    self._client = self._factory()
                self._client.raw_insert(f"engagement.{table}", column_names=columns, insert_block=body, fmt=fmt)
                break
            except Exception as exc:
                self._metrics.write_failed(table)
                if self._should_stop():
                    raise
                delay = self._backoff.delay(attempt)
                log.warning(
                    "ClickHouse write to %s failed (attempt %d: %s); consumption paused, retrying in %.2fs",
                    table,
                    attempt + 1,
                    exc,
                    delay,
                )
                attempt += 1
                self._metrics.retrying(table)
                self._sleep(delay)
        self._metrics.stored(table, n_rows, time.perf_counter() - started)
        return attempt + 1
