"""One batch of Kafka messages in, everything it changed out: decode → forget → state → rows → store.

Faust-free, so the agent, `engage bench` and recovery all run the same steps. The
agent calls `process` off the event loop and then does what needs Kafka (dead
letters, tier changes, flags); recovery calls `replay`, which stops after the state
step. While the batch's raw events are written to ClickHouse (chDB releases the
GIL), the same batch is scored: the two overlap on a two-core machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from sinks.batch_writer import BatchWriter
from sinks.tables import (
    COMMUNITY_STATE_COLUMNS,
    SPAM_FLAGS_COLUMNS,
    TIER_CHANGES_COLUMNS,
    community_state_row,
    events_arrow,
    member_state_arrow,
    spam_flag_row,
    tier_change_row,
)
from streams import metrics
from streams.decode import TimeBounds, decode_envelope
from streams.event_record import TYPE_NAMES, EventRecord
from streams.state_registry import Outputs, StateRegistry


class Incoming(NamedTuple):
    """One Kafka message: an envelope of one or more events."""

    value: bytes | None
    partition: int
    offset: int
    timestamp: float  # Kafka append (or create) time, Unix seconds


class DeadLetterOut(NamedTuple):
    value: bytes  # the line (or message) that could not be read
    reason: str
    detail: str
    partition: int
    offset: int
    line: int


@dataclass
class Decoded:
    """A batch's readable events in log order, with their positions."""

    records: list[EventRecord] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    kafka_times: list[float] = field(default_factory=list)  # one per message with events
    dead_letters: list[DeadLetterOut] = field(default_factory=list)


@dataclass
class BatchResult:
    """What one batch produced: what the agent must still send, and counts for metrics."""

    outputs: Outputs
    dead_letters: list[DeadLetterOut]
    events: int
    messages: int


class Pipeline:
    def __init__(
        self,
        registry: StateRegistry,
        writer: BatchWriter,
        clock_skew_s: float,
        time_floor: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.writer = writer
        self.decay_rate = registry.scoring.decay_rate  # written with member rows: views decay them
        self.clock_skew_s = clock_skew_s
        self.time_floor = time_floor
        self.wall_clock = wall_clock
        self._io = ThreadPoolExecutor(1, thread_name_prefix="clickhouse-writer")  # one write at a time

    # ------------------------------------------------------------------ steps

    def decode(self, batch: Sequence[Incoming]) -> Decoded:
        """Step 1: envelopes to records; unreadable lines and impossible times to dead letters."""
        out = Decoded()
        wall = self.wall_clock()
        skew = self.clock_skew_s
        for msg in batch:
            # "Too far ahead" is judged against the message's own Kafka time, so a replay of the
            # log next year refuses exactly what the live worker refused (a producer whose clock
            # runs ahead is held to ours).
            kafka_time = msg.timestamp if 0 < msg.timestamp <= wall + skew else wall
            env = decode_envelope(msg.value, TimeBounds(kafka_time, skew, self.time_floor))
            n = len(env.records)
            if n:
                out.records.extend(env.records)
                out.sources.extend(env.sources)
                out.lines.extend(env.lines)
                out.partitions.extend([msg.partition] * n)
                out.offsets.extend([msg.offset] * n)
                out.kafka_times.append(msg.timestamp)
            for line, why, raw in env.dead:
                out.dead_letters.append(
                    DeadLetterOut(raw, why.reason, why.detail, msg.partition, msg.offset, line)
                )
        return out

    def forget(self, decoded: Decoded) -> Decoded:
        """Step 1b: drop forgotten members' events, blank references to them (streams/forgotten.py)."""
        screened = self.registry.forgotten.screen(decoded.records)
        if screened is None:
            return decoded
        keep = [i for i, rec in enumerate(screened) if rec is not None]
        metrics.EVENTS_FORGOTTEN.inc(len(screened) - len(keep))
        return Decoded(
            [r for r in screened if r is not None],
            [decoded.sources[i] for i in keep],
            [decoded.partitions[i] for i in keep],
            [decoded.offsets[i] for i in keep],
            [decoded.lines[i] for i in keep],
            decoded.kafka_times,
            decoded.dead_letters,
        )

    def state(self, decoded: Decoded, *, outputs: bool = True) -> Outputs:
        """Step 2: scoring, tiers and spam for the batch's events, in log order."""
        started = time.perf_counter()
        result = self.registry.apply_columns(decoded.records, decoded.partitions, decoded.offsets, outputs=outputs)
        metrics.SCORING_BATCH_DURATION.observe(time.perf_counter() - started)
        return result

    def store_events(self, decoded: Decoded, ingested_at: float) -> None:
        """Step 3a: the raw events (blocking; retries until stored)."""
        if decoded.records:
            table = events_arrow(
                decoded.records, decoded.sources, ingested_at, decoded.partitions, decoded.offsets, decoded.lines
            )
            self.writer.write_arrow("events", table)

    def store_state(self, outputs: Outputs) -> None:
        """Step 3b: the rows of the derived tables (blocking; retries until stored)."""
        version = time.time_ns()
        if outputs.members:
            rows = [row for row, _ in outputs.members.values()]
            statuses = [status for _, status in outputs.members.values()]
            self.writer.write_arrow("member_state", member_state_arrow(rows, statuses, version, self.decay_rate))
        self.writer.write("tier_changes", TIER_CHANGES_COLUMNS, [tier_change_row(t) for t in outputs.tier_changes])
        self.writer.write(
            "community_state",
            COMMUNITY_STATE_COLUMNS,
            [community_state_row(r, version) for r in outputs.community_rows],
        )
        self.writer.write("spam_flags", SPAM_FLAGS_COLUMNS, [spam_flag_row(f) for f in outputs.flags])

    # ------------------------------------------------------------------ compositions

    def process(self, batch: Sequence[Incoming]) -> BatchResult:
        """Decode → state → rows → store; returns once ClickHouse holds all of it (blocking)."""
        decoded = self.forget(self.decode(batch))
        ingested_at = time.time()
        raw: Future[None] = self._io.submit(self.store_events, decoded, ingested_at)
        try:
            outputs = self.state(decoded)
        finally:
            raw.result()  # the raw events are stored (or the write gave up) before anything else
        self._io.submit(self.store_state, outputs).result()
        self._observe(decoded, outputs)
        return BatchResult(outputs, decoded.dead_letters, len(decoded.records), len(batch))

    def replay(self, batch: Sequence[Incoming]) -> int:
        """Decode → state only (recovery: the rows of these events are stored already)."""
        decoded = self.forget(self.decode(batch))
        self.state(decoded, outputs=False)
        return len(decoded.records)

    def store(self, outputs: Outputs) -> None:
        """Rows for state changed outside a batch (a moderation decision)."""
        self._io.submit(self.store_state, outputs).result()

    def close(self) -> None:
        self._io.shutdown(wait=False, cancel_futures=True)

    def _observe(self, decoded: Decoded, outputs: Outputs) -> None:
        metrics.BATCH_SIZE.observe(len(decoded.records))
        counts = [0, 0, 0, 0]
        for rec in decoded.records:
            counts[rec.type] += 1
        for code, n in enumerate(counts):
            if n:
                metrics.EVENTS_PROCESSED.labels(TYPE_NAMES[code]).inc(n)
        for dl in decoded.dead_letters:
            metrics.EVENTS_DLQ.labels(dl.reason).inc()
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
        stored = time.time()
        metrics.observe_many(metrics.END_TO_END_LATENCY, [stored - rec.ts for rec in decoded.records])
        metrics.observe_many(metrics.PIPELINE_LATENCY, [stored - t for t in decoded.kafka_times])
