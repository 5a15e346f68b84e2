"""One batch of Kafka messages in, rows for ClickHouse and outputs for Kafka out.

Faust-free so it can be tested and benchmarked alone: the agent hands it
`Incoming` messages, sends what `prepare` returns, and calls `store`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sinks.batch_writer import BatchWriter
from sinks.tables import EVENTS_COLUMNS, event_row
from streams import metrics
from streams.decode import DeadLetter, decode
from streams.event_record import TYPE_NAMES, EventRecord


class Incoming(NamedTuple):
    value: bytes | None
    partition: int
    offset: int
    timestamp: float  # Kafka append (or create) time, Unix seconds


class DeadLetterOut(NamedTuple):
    value: bytes
    reason: str
    detail: str
    partition: int
    offset: int


@dataclass
class Prepared:
    records: list[tuple[EventRecord, int, int]] = field(default_factory=list)  # (record, partition, offset)
    tables: dict[str, tuple[Sequence[str], list[list[Any]]]] = field(default_factory=dict)
    dead_letters: list[DeadLetterOut] = field(default_factory=list)
    kafka_times: list[float] = field(default_factory=list)


class BatchProcessor:
    def __init__(self, writer: BatchWriter) -> None:
        self.writer = writer

    def prepare(self, batch: Sequence[Incoming], now: datetime | None = None) -> Prepared:
        ingested_at = now or datetime.now(UTC)
        out = Prepared()
        event_rows: list[list[Any]] = []
        counts = [0, 0, 0, 0]
        for msg in batch:
            decoded = decode(msg.value)
            if isinstance(decoded, DeadLetter):
                out.dead_letters.append(
                    DeadLetterOut(msg.value or b"", decoded.reason, decoded.detail, msg.partition, msg.offset)
                )
                continue
            rec = decoded.record
            counts[rec.type] += 1
            event_rows.append(event_row(rec, decoded.source, ingested_at, msg.partition, msg.offset))
            out.records.append((rec, msg.partition, msg.offset))
            out.kafka_times.append(msg.timestamp)
        for code, n in enumerate(counts):
            if n:
                metrics.EVENTS_PROCESSED.labels(TYPE_NAMES[code]).inc(n)
        for dl in out.dead_letters:
            metrics.EVENTS_DLQ.labels(dl.reason).inc()
        out.tables["events"] = (EVENTS_COLUMNS, event_rows)
        return out

    def store(self, prepared: Prepared) -> None:
        """Write every table of the batch (blocking; retries until stored)."""
        for table, (columns, rows) in prepared.tables.items():
            self.writer.write(table, columns, rows)
        stored = time.time()
        for rec, _, _ in prepared.records:
            metrics.END_TO_END_LATENCY.observe(max(0.0, stored - rec.ts))
        for t in prepared.kafka_times:
            metrics.PIPELINE_LATENCY.observe(max(0.0, stored - t))
