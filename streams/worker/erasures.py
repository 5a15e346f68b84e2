"""Forget a member: in this worker's state, in ClickHouse, and in every replay after (docs/privacy.md).

The scoring core cannot subtract a member exactly (others' forward-decayed received
scores, ranks, the ambassador set, counts and concentration all moved with them), so
a community that holds the member is *rebuilt*: its partition's events are re-read
from the log into fresh state through the pipeline's decode and forget steps, with
the community's moderation decisions merged in by Kafka time. By construction that
is a replay of the log without the member's events.

`Erasures.handle` runs a batch of `engagement.erasures` records, under
`Partitions.lock`, in this order:
1. restore each partition named (`Partitions.ensure`);
2. the erasure joins the registry's screen (`ForgottenMembers`): from now on no event
   of the member at or before `erased_at` reaches state or ClickHouse;
3. each community of the partition that the erasure covers and whose state holds
   the member is rebuilt from the log and swapped in;
4. ClickHouse: the member's rows go and the rollups are recomputed (sinks/erasure.py),
   then the rebuilt communities' rows are written (every member, the community row,
   the tier history);
5. the audit row (`engagement.erasures`: member_key, never the id);
6. a checkpoint of the partitions: the snapshots record the erasure as applied.
A crash anywhere repeats the record (its offset is committed after step 6) and
every step is idempotent. On recovery `Partitions.ensure` calls `load` before the
log tail is replayed, so the tail is screened too, and rebuilds any restored
community whose snapshot predates an erasure.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas.erasures import ErasureRecord, covers, member_key
from schemas.outputs import ModerationDecision
from sinks.access import ClickHouseAccess
from sinks.batch_writer import BatchWriter
from sinks.erasure import ERASURES_COLUMNS, Target, drop_rebuilt, erase
from streams import metrics
from streams.config import TOPIC_ERASURES, TOPIC_EVENTS, TOPIC_MODERATION, Settings
from streams.forgotten import ForgottenMembers
from streams.scoring import ScoringConfig
from streams.spam.config import SpamConfig
from streams.state_registry import Community, Outputs, StateRegistry, member_block
from streams.worker.pipeline import Incoming, Pipeline
from streams.worker.recovery import Partitions

log = logging.getLogger(__name__)

BLOCKED_RETRY_SECONDS = 60.0


def state_key(record: ErasureRecord) -> str:
    """How a community's state remembers an applied erasure (`Community.erasures`)."""
    return f"{record.community_id}|{record.member_key}"


def holds(community: Community, record: ErasureRecord) -> bool:
    """Whether this state knows the member (as an actor, a target author, or a moderation subject)."""
    ids: Iterable[str] = [*community.scorer.member_ids(), *community.spam.excluded_members()]
    return any(member_key(record.community_id, mid) == record.member_key for mid in ids)


@dataclass
class Rebuild:
    """One community's state from its partition's log, without forgotten members (pure)."""

    scoring: ScoringConfig
    spam: SpamConfig
    forgotten: ForgottenMembers
    community_id: str
    partition: int
    decisions: list[tuple[float, ModerationDecision]] = field(default_factory=list)  # (Kafka time, decision)
    tier_changes: list[Any] = field(default_factory=list)
    events: int = 0

    def __post_init__(self) -> None:
        self.registry = StateRegistry(self.scoring, self.spam)
        self.registry.forgotten = self.forgotten
        self.decisions.sort(key=lambda d: d[0])
        self._next = 0

    def feed(self, messages: Sequence[Incoming], pipeline: Pipeline) -> None:
        """Messages of the partition in log order; decisions are applied before the first later message."""
        start = 0
        for i, msg in enumerate(messages):
            if self._next < len(self.decisions) and msg.timestamp >= self.decisions[self._next][0]:
                self._apply(messages[start:i], pipeline)
                start = i
                while self._next < len(self.decisions) and msg.timestamp >= self.decisions[self._next][0]:
                    self._moderate(self.decisions[self._next][1])
                    self._next += 1
        self._apply(messages[start:], pipeline)

    def _apply(self, messages: Sequence[Incoming], pipeline: Pipeline) -> None:
        if not messages:
            return
        decoded = pipeline.decode(messages)
        screened = self.forgotten.screen(decoded.records) or decoded.records
        picked = [i for i, rec in enumerate(screened) if rec is not None and rec.community_id == self.community_id]
        if not picked:
            return
        out = self.registry.apply_columns(
            [screened[i] for i in picked],  # type: ignore[misc]
            [decoded.partitions[i] for i in picked],
            [decoded.offsets[i] for i in picked],
        )
        self.events += out.scored
        self.tier_changes.extend(out.tier_changes)

    def _moderate(self, decision: ModerationDecision) -> None:
        if self.forgotten.is_forgotten(decision.community_id, decision.member_id, decision.decided_at.timestamp()):
            return
        self.tier_changes.extend(self.registry.moderate(decision, self.partition).tier_changes)

    def finish(self, old: Community) -> tuple[Community, Outputs]:
        """The rebuilt community (it replaces `old`) and every row it now has."""
        while self._next < len(self.decisions):  # decisions after the last event applied
            self._moderate(self.decisions[self._next][1])
            self._next += 1
        new = self.registry.community(self.community_id, self.partition)
        new.last_offset = old.last_offset
        new.erasures = dict(old.erasures)
        new.dirty = True
        out = Outputs(tier_changes=self.tier_changes)
        out.members.append(member_block(new, new.scorer.member_ids()))
        out.community_rows.append(new.scorer.community_row())
        return new, out


class Erasures:
    """The worker's erasure step (see the module docstring for the order)."""

    def __init__(
        self,
        settings: Settings,
        partitions: Partitions,
        pipeline: Pipeline,
        ch: ClickHouseAccess,
        writer: BatchWriter,
    ) -> None:
        self.settings = settings
        self.partitions = partitions
        self.registry = partitions.registry
        self.pipeline = pipeline
        self.ch = ch
        self.writer = writer
        self.in_flight = 0

    # ------------------------------------------------------------------ the agent's entry

    async def handle(self, messages: Sequence[tuple[bytes | None, int]]) -> list[tuple[bytes, str]]:
        """Apply a batch of (value, partition) records; returns the unreadable ones (value, why)."""
        bad: list[tuple[bytes, str]] = []
        by_partition: dict[int, list[ErasureRecord]] = {}
        for value, partition in messages:
            try:
                record = ErasureRecord.model_validate_json(value or b"")
            except ValidationError as exc:
                bad.append((value or b"", str(exc)[:4000]))
                continue
            by_partition.setdefault(partition, []).append(record)
        self.in_flight += sum(len(r) for r in by_partition.values())
        started = time.perf_counter()
        try:
            while True:
                try:
                    async with self.partitions.lock:
                        for partition in sorted(by_partition):
                            await self.partitions.ensure(partition)  # 1.
                        for partition, records in sorted(by_partition.items()):
                            await self._apply(partition, records)
                        await self.partitions.checkpoint(set(by_partition))  # 6.
                    break
                except LogTruncated as exc:
                    # pending (and alerting) until an operator restores the log or compacts it
                    log.error("erasure blocked, retrying in %.0fs: %s", BLOCKED_RETRY_SECONDS, exc)
                    await asyncio.sleep(BLOCKED_RETRY_SECONDS)
        finally:
            self.in_flight -= sum(len(r) for r in by_partition.values())
        if by_partition:
            metrics.ERASURE_DURATION.observe(time.perf_counter() - started)
        return bad

    async def apply(self, partition: int, records: Sequence[ErasureRecord]) -> None:
        """Steps 2-5 for records a restored snapshot predates (recovery, under the lock)."""
        try:
            await self._apply(partition, records)
        except LogTruncated as exc:  # the agent's redelivery (or the next restart) tries again
            log.error("erasures of partition %d not applied on recovery: %s", partition, exc)

    async def _apply(self, partition: int, records: Sequence[ErasureRecord]) -> None:
        """Steps 2-5 for one partition (call under the lock, the partition restored)."""
        stale: dict[str, list[ErasureRecord]] = {}
        for record in records:
            self.registry.forgotten.add(record.community_id, record.member_key, record.erased_at.timestamp())  # 2.
            for cid in self.registry.in_partition(partition):
                if covers(record.community_id, cid):
                    stale.setdefault(cid, []).append(record)
        rebuilt: dict[str, tuple[set[str], Outputs]] = {}
        rebuilt_by: dict[str, set[str]] = {}  # erasure_id -> communities it rebuilt
        for cid, covering in stale.items():
            community = self.registry.communities[cid]
            todo = [
                r
                for r in covering
                if community.erasures.get(state_key(r), -math.inf) < r.erased_at.timestamp() and holds(community, r)
            ]
            if todo:  # 3.
                before = set(community.scorer.member_ids())
                new, out = await self._rebuild(partition, community, cid)
                self.registry.communities[cid] = new
                rebuilt[cid] = (before - set(new.scorer.member_ids()), out)
            for r in covering:
                key = state_key(r)
                applied = self.registry.communities[cid]
                applied.erasures[key] = max(applied.erasures.get(key, -math.inf), r.erased_at.timestamp())
                applied.dirty = True
                if r in todo:
                    rebuilt_by.setdefault(r.erasure_id, set()).add(cid)
        for record in records:  # 4. and 5.
            covered = [cid for cid in stale if record in stale[cid]]
            target = Target(record.community_id, record.member_key, record.erased_at.timestamp(), covered)
            counts = await asyncio.to_thread(self.ch.run, lambda client, t=target: erase(client, t))
            for cid in covered:
                if cid in rebuilt:
                    gone, out = rebuilt.pop(cid)
                    for table, n in (
                        await asyncio.to_thread(self.ch.run, lambda c, i=cid, g=gone: drop_rebuilt(c, i, sorted(g)))
                    ).items():
                        counts[table] = counts.get(table, 0) + n
                    await asyncio.to_thread(self.pipeline.store, out)
                    counts["member_state"] = counts.get("member_state", 0) + out.member_row_count()
            for table, n in counts.items():
                if n:
                    metrics.ERASURE_ROWS.labels(table).inc(n)
            was_rebuilt = len(rebuilt_by.get(record.erasure_id, ()))
            row = [
                record.erasure_id,
                record.community_id,
                record.member_key,
                record.erased_at.timestamp(),
                record.requested_by,
                record.reason,
                record.source,
                partition,
                len(covered),
                was_rebuilt,
                sum(counts.values()),
                time.time(),
            ]
            await asyncio.to_thread(self.writer.write, "erasures", ERASURES_COLUMNS, [row])
            metrics.ERASURES_APPLIED.labels("rebuilt" if was_rebuilt else "unchanged").inc()
            log.info(
                "erasure %s applied to partition %d: %d communities, %d rebuilt, %d rows",
                record.erasure_id,
                partition,
                len(covered),
                was_rebuilt,
                sum(counts.values()),
            )

    # ------------------------------------------------------------------ recovery

    async def load(self, partition: int) -> list[ErasureRecord]:
        """Read this partition of `engagement.erasures` into the screen; return the records a restored
        community's snapshot does not reflect yet (call under the lock, before the tail replay)."""
        stale: list[ErasureRecord] = []
        async for batch in read_log(self.settings, TOPIC_ERASURES, partition, None):
            for msg in batch:
                try:
                    record = ErasureRecord.model_validate_json(msg.value or b"")
                except ValidationError:
                    continue  # the agent sends it to the DLQ when it reaches it
                at = record.erased_at.timestamp()
                self.registry.forgotten.add(record.community_id, record.member_key, at)
                if any(
                    covers(record.community_id, cid)
                    and self.registry.communities[cid].erasures.get(state_key(record), -math.inf) < at
                    for cid in self.registry.in_partition(partition)
                ):
                    stale.append(record)
        return stale

    # ------------------------------------------------------------------ rebuild from the log

    async def _rebuild(self, partition: int, old: Community, cid: str) -> tuple[Community, Outputs]:
        decisions = []
        async for batch in read_log(self.settings, TOPIC_MODERATION, partition, None):
            for msg in batch:
                try:
                    decision = ModerationDecision.model_validate_json(msg.value or b"")
                except ValidationError:
                    continue
                if decision.community_id == cid:
                    decisions.append((msg.timestamp, decision))
        rebuild = Rebuild(
            self.registry.scoring, self.registry.spam_config, self.registry.forgotten, cid, partition, decisions
        )
        async for batch in read_log(self.settings, TOPIC_EVENTS, partition, old.last_offset + 1):
            await asyncio.to_thread(rebuild.feed, batch, self.pipeline)
        new, out = rebuild.finish(old)
        log.info(
            "community rebuilt from %s[%d] without forgotten members: %d events",
            TOPIC_EVENTS,
            partition,
            rebuild.events,
        )
        return new, out


class LogTruncated(RuntimeError):
    pass


async def read_log(
    settings: Settings, topic: str, partition: int, end: int | None, batch: int = 2000
) -> AsyncIterator[list[Incoming]]:
    """Messages [0, end) of one partition (to its current end when `end` is None), in batches.

    Raises LogTruncated when retention has removed the head of the events log: a rebuild
    from a partial log would silently drop history (docs/privacy.md says what to do).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        first = (await consumer.beginning_offsets([tp]))[tp]
        if end is None:
            end = (await consumer.end_offsets([tp]))[tp]
        if topic == TOPIC_EVENTS and first > 0 and end > 0:
            raise LogTruncated(
                f"{topic}[{partition}] starts at offset {first}: retention removed its head, so a community "
                "cannot be rebuilt from the log; see docs/privacy.md (retention)"
            )
        position = first
        consumer.seek(tp, first)
        while position < end:
            fetched = await consumer.getmany(tp, timeout_ms=1000, max_records=batch)
            out = []
            for msg in fetched.get(tp, []):
                if msg.offset >= end:
                    position = end
                    break
                position = msg.offset + 1
                out.append(Incoming(msg.value, partition, msg.offset, msg.timestamp / 1000))
            if out:
                yield out
            if not fetched:
                high = (await consumer.end_offsets([tp]))[tp]
                if position >= high:
                    break
    finally:
        await consumer.stop()


async def pending(consumer: Any, in_flight: int) -> int:
    """Erasure records behind the end on this worker's partitions of the topic, plus those being applied."""
    behind = 0
    try:
        for tp in consumer.assignment():
            if tp.topic != TOPIC_ERASURES:
                continue
            high = consumer.highwater(tp)
            pos = await consumer.position(tp)
            if high is not None and pos is not None:
                behind += max(0, int(high) - int(pos))
    except Exception as exc:  # the consumer may be mid-rebalance
        log.debug("erasure lag not available: %s", exc)
    return behind + in_flight
