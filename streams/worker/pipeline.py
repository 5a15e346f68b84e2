"""One batch of Kafka messages in, everything it changed out: decode → forget → state → rows → store.

Faust-free, so the agent, `engage bench` and recovery all run the same steps. The
agent calls `process` off the event loop and then does what needs Kafka (dead
letters, tier changes, flags); recovery calls `replay`, which stops after the state
step. While the batch's raw events are written to ClickHouse (chDB releases the
GIL), the same batch is scored: the two overlap on a two-core machine.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from schemas.outputs import ModerationDecision
from sinks.batch_writer import BatchWriter
from sinks.columns import MODERATION_COLUMNS, SPAM_FLAGS_COLUMNS
from streams import metrics
from streams.decode import TimeBounds, decode_envelope
from streams.event_record import TYPE_NAMES, EventRecord
from streams.state_registry import Outputs, StateRegistry
from streams.worker import moderation
from streams.worker.faults import KillSwitch
from streams.worker.rows import (
    community_state_arrow,
    events_arrow,
    member_state_arrow,
    moderation_row,
    spam_flag_row,
    tier_changes_arrow,
)


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
    # done once ClickHouse holds the batch's derived rows (`Pipeline.begin` returns before)
    stored: Future[None] = field(default_factory=lambda: _done())


def _done() -> Future[None]:
    done: Future[None] = Future()
    done.set_result(None)
    return done


def merge(into: BatchResult, more: BatchResult) -> None:
    """Add what `more` produced to `into` (a batch processed in runs)."""
    o, m = into.outputs, more.outputs
    o.members.extend(m.members)
    o.community_rows.extend(m.community_rows)
    o.tier_changes.extend(m.tier_changes)
    o.flags.extend(m.flags)
    o.scored += m.scored
    o.duplicates += m.duplicates
    o.late += m.late
    o.skipped += m.skipped
    into.dead_letters.extend(more.dead_letters)
    into.events += more.events
    into.messages += more.messages


class Pipeline:
    def __init__(
        self,
        registry: StateRegistry,
        writer: BatchWriter,
        clock_skew_s: float = 300.0,
        time_floor: float = 946_684_800.0,  # 2000-01-01T00:00:00Z, Settings.event_time_floor's default
        wall_clock: Callable[[], float] = time.time,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        self.registry = registry
        self.kill_switch = kill_switch or KillSwitch("")
        self.writer = writer
        self.decay_rate = registry.scoring.decay_rate  # written with member rows: views decay them
        self.clock_skew_s = clock_skew_s
        self.time_floor = time_floor
        self.wall_clock = wall_clock
        self._io = ThreadPoolExecutor(1, thread_name_prefix="clickhouse-writer")  # one write at a time
        self._version = 0  # the next row version at least (store_state)

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
                out.dead_letters.append(DeadLetterOut(raw, why.reason, why.detail, msg.partition, msg.offset, line))
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
        # Versions grow with every row written (ReplacingMergeTree keeps the highest): a member
        # in two blocks of one batch, or in the next batch, is current in the later one.
        version = self._version = max(time.time_ns(), self._version)
        rows = outputs.member_row_count()
        self._version += max(rows, len(outputs.community_rows)) + 1
        if rows:
            self.writer.write_arrow("member_state", member_state_arrow(outputs.members, version, self.decay_rate))
        if outputs.tier_changes:
            self.writer.write_arrow("tier_changes", tier_changes_arrow(outputs.tier_changes))
        if outputs.community_rows:  # in emission order too: a minute's final row wins over its provisional one
            self.writer.write_arrow("community_state", community_state_arrow(outputs.community_rows, version))
        self.writer.write("spam_flags", SPAM_FLAGS_COLUMNS, [spam_flag_row(f) for f in outputs.flags])

    # ------------------------------------------------------------------ compositions

    def process(self, batch: Sequence[Incoming]) -> BatchResult:
        """Decode → state → rows → store; returns once ClickHouse holds all of it (blocking)."""
        result = self.begin(batch)
        result.stored.result()
        return result

    def begin(self, batch: Sequence[Incoming]) -> BatchResult:
        """`process`, returning once the raw events are stored and state has the batch; the
        derived rows are being written (in order, one write at a time) until `result.stored`.

        A moderation decision in the batch (streams/worker/moderation.py) is applied at its
        place: the envelopes before it are processed first, those after it next."""
        if moderation.has_decisions(batch):
            return self._in_order(batch)
        return self._begin(batch)

    def _begin(self, batch: Sequence[Incoming]) -> BatchResult:
        decoded = self.forget(self.decode(batch))
        ingested_at = time.time()
        raw: Future[None] = self._io.submit(self.store_events, decoded, ingested_at)
        try:
            outputs = self.state(decoded)
        finally:
            raw.result()  # the raw events are stored (or the write gave up) before anything else
        self.kill_switch.at("write")
        stored = self._io.submit(self._store_and_observe, decoded, outputs)
        return BatchResult(outputs, decoded.dead_letters, len(decoded.records), len(batch), stored)

    def _store_and_observe(self, decoded: Decoded, outputs: Outputs) -> None:
        self.store_state(outputs)
        self._observe(decoded, outputs)  # "processed" counts events whose rows are all stored

    def replay(self, batch: Sequence[Incoming]) -> int:
        """Decode → state only (recovery: the rows of these events are stored already).
        Decisions in the batch are applied at their place, as `process` does."""
        applied = 0
        for part in moderation.split(batch) if moderation.has_decisions(batch) else [list(batch)]:
            if isinstance(part, moderation.Sequenced):
                if part.decision is not None and not self._about_forgotten(part.decision):
                    self.registry.moderate(part.decision, part.partition, moderation.decision_key(part.decision))
                continue
            decoded = self.forget(self.decode(part))
            self.state(decoded, outputs=False)
            applied += len(decoded.records)
        return applied

    def moderate(self, seq: moderation.Sequenced) -> BatchResult:
        """One sequenced decision: state, then its rows and the decision itself in ClickHouse."""
        if seq.decision is None:
            dead = DeadLetterOut(seq.raw, "invalid", seq.error, seq.partition, seq.offset, 0)
            return BatchResult(Outputs(), [dead], 0, 1)
        decision = seq.decision
        if self._about_forgotten(decision):  # a decision about a forgotten member (docs/privacy.md)
            return BatchResult(Outputs(), [], 0, 1)
        outputs = self.registry.moderate(decision, seq.partition, moderation.decision_key(decision))
        if not outputs.skipped:  # a copy of a decision already applied changes nothing
            self._io.submit(self.store_state, outputs).result()
            row = moderation_row(
                decision.model_copy(update={"decision_id": moderation.decision_key(decision)}), time.time()
            )
            self._io.submit(self.writer.write, "moderation", MODERATION_COLUMNS, [row]).result()
            metrics.MODERATION_DECISIONS.labels(decision.action.value).inc()
        return BatchResult(outputs, [], 0, 1)

    def _in_order(self, batch: Sequence[Incoming]) -> BatchResult:
        total = BatchResult(Outputs(), [], 0, 0)
        for part in moderation.split(batch):
            result = self.moderate(part) if isinstance(part, moderation.Sequenced) else self._begin(part)
            result.stored.result()
            merge(total, result)
        return total

    def _about_forgotten(self, decision: ModerationDecision) -> bool:
        return self.registry.forgotten.is_forgotten(
            decision.community_id, decision.member_id, decision.decided_at.timestamp()
        )

    def store(self, outputs: Outputs) -> None:
        """Rows for state changed outside a batch (a moderation decision)."""
        self._io.submit(self.store_state, outputs).result()

    def close(self) -> None:
        self._io.shutdown(wait=False, cancel_futures=True)

    def _observe(self, decoded: Decoded, outputs: Outputs) -> None:
        metrics.BATCH_SIZE.observe(len(decoded.records))
        # counted first, then one labelled increment per label set (`labels` costs a few µs a call)
        for code, n in Counter([rec.type for rec in decoded.records]).items():
            metrics.EVENTS_PROCESSED.labels(TYPE_NAMES[code]).inc(n)
        for dl in decoded.dead_letters:
            metrics.EVENTS_DLQ.labels(dl.reason).inc()
        for (from_tier, to_tier), n in Counter([(t.from_tier, t.to_tier) for t in outputs.tier_changes]).items():
            metrics.TIER_TRANSITIONS.labels(from_tier, to_tier).inc(n)
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
