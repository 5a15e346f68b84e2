"""One batch of Kafka messages in, rows for ClickHouse and outputs for Kafka out.

Faust-free so it can be tested and benchmarked alone: the agent hands it
`Incoming` messages, sends what `prepare` returns, and calls `store`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sinks.batch_writer import BatchWriter
from sinks.tables import (
    COMMUNITY_STATE_COLUMNS,
    EVENTS_COLUMNS,
    MEMBER_STATE_COLUMNS,
    SPAM_FLAGS_COLUMNS,
    TIER_CHANGES_COLUMNS,
    community_state_row,
    event_row,
    member_state_row,
    spam_flag_row,
    tier_change_row,
)
from streams import metrics
from streams.decode import DeadLetter, decode
from streams.event_record import TYPE_NAMES, EventRecord
from streams.state_registry import Outputs


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
    def __init__(self, writer: BatchWriter, decay_rate: float) -> None:
        self.writer = writer
        self.decay_rate = decay_rate  # written with member rows, so views can decay them to a common clock

    def prepare(self, batch: Sequence[Incoming], now: float | None = None) -> Prepared:
        ingested_at = time.time() if now is None else now
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

    def add_state(self, prepared: Prepared, outputs: Outputs) -> None:
        """Rows for the derived tables from what scoring and spam changed in this batch."""
        version = time.time_ns()
        members = [
            member_state_row(row, status, version, self.decay_rate) for row, status in outputs.members.values()
        ]
        changes = [tier_change_row(t) for t in outputs.tier_changes]
        communities = [community_state_row(r, version) for r in outputs.communities.values()]
        flags = [spam_flag_row(f) for f in outputs.flags]
        for table, columns, rows in (
            ("member_state", MEMBER_STATE_COLUMNS, members),
            ("tier_changes", TIER_CHANGES_COLUMNS, changes),
            ("community_state", COMMUNITY_STATE_COLUMNS, communities),
            ("spam_flags", SPAM_FLAGS_COLUMNS, flags),
        ):
            if rows:
                prepared.tables[table] = (columns, rows)
        for t in outputs.tier_changes:
            metrics.TIER_TRANSITIONS.labels(t.from_tier, t.to_tier).inc()
        for f in outputs.flags:
            if f.status == "flagged":
                for reason in f.reasons:
                    metrics.SPAM_FLAGS.labels(reason).inc()
        if outputs.duplicates:
            metrics.EVENTS_DUPLICATE.inc(outputs.duplicates)
        if outputs.late:
            metrics.EVENTS_LATE.inc(outputs.late)

    def store(self, prepared: Prepared) -> None:
        """Write every table of the batch (blocking; retries until stored)."""
        for table, (columns, rows) in prepared.tables.items():
            self.writer.write(table, columns, rows)
        stored = time.time()
        metrics.observe_many(metrics.END_TO_END_LATENCY, [stored - rec.ts for rec, _, _ in prepared.records])
        metrics.observe_many(metrics.PIPELINE_LATENCY, [stored - t for t in prepared.kafka_times])
