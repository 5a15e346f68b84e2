"""The partitions this worker owns and their state: restore, replay the tail, checkpoint, revoke.

Event sourcing with checkpoints (streams/snapshots.py has the format): a partition's
state is restored from its snapshots, then the log between the snapshot marker and
the first offset this worker is handed is re-applied through the pipeline's decode
and state steps. A checkpoint is taken only between batches, never while a batch is
applied but not yet stored, and a busy worker checkpoints one partition at a time. One
lock serialises everything that touches state, so batches, moderation decisions and
checkpoints never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import metrics
from streams.config import TOPIC_EVENTS, Settings
from streams.snapshots import SnapshotStore
from streams.state_registry import StateRegistry
from streams.worker.faults import KillSwitch
from streams.worker.pipeline import Incoming, Pipeline

log = logging.getLogger(__name__)

Committed = Callable[[int], Awaitable[int]]  # partition -> the group's committed offset


class ErasureLog(Protocol):
    """streams/worker/erasures.py: forgotten members are screened before the tail replay."""

    async def load(self, partition: int) -> Sequence[Any]: ...
    async def apply(self, partition: int, records: Sequence[Any]) -> None: ...


class Partitions:
    def __init__(
        self,
        settings: Settings,
        registry: StateRegistry,
        pipeline: Pipeline,
        snapshots: SnapshotStore,
        committed: Committed,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        self.kill_switch = kill_switch or KillSwitch("")
        self.settings = settings
        self.registry = registry
        self.pipeline = pipeline
        self.snapshots = snapshots
        self.committed = committed
        self.lock = asyncio.Lock()  # held by whoever reads or changes state
        self.ready: set[int] = set()  # partitions whose state is restored in this process
        self.offsets: dict[int, int] = {}  # newest offset applied to state, per partition
        self.last_applied = time.monotonic()  # when a batch last changed state
        self.checkpointed: dict[int, float] = {}  # monotonic time of each ready partition's last checkpoint
        self._writing: asyncio.Future[None] | None = None  # the last checkpoint's snapshots, being written
        self.erasures: ErasureLog | None = None

    async def ensure(self, partition: int, first_offset: int | None) -> None:
        """Restore `partition` and replay its log tail up to `first_offset` (call under `lock`)."""
        if partition in self.ready:
            return
        before = len(self.registry.communities)
        marker = self.snapshots.restore_partition(self.registry, partition)
        metrics.STATE_RESTORED.inc(len(self.registry.communities) - before)
        stale = await self.erasures.load(partition) if self.erasures is not None else ()
        end = first_offset if first_offset is not None else await self.committed(partition)
        replayed = await self._replay(partition, marker + 1, end)
        metrics.STATE_REPLAYED.inc(replayed)
        if replayed:
            log.info("partition %d: restored snapshots at offset %d, replayed %d events", partition, marker, replayed)
        self.offsets[partition] = max(marker, end - 1)
        self.ready.add(partition)
        self.checkpointed[partition] = time.monotonic()
        if stale and self.erasures is not None:  # snapshots older than an erasure: rebuild without the member
            await self.erasures.apply(partition, stale)

    def applied(self, batch: list[Incoming]) -> None:
        for msg in batch:
            self.offsets[msg.partition] = msg.offset
        self.last_applied = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds since a batch last changed state."""
        return time.monotonic() - self.last_applied

    def overdue(self, limit: int | None = None) -> set[int]:
        """Ready partitions whose last checkpoint is `snapshot_seconds` old, the oldest `limit` of them.

        A busy worker checkpoints one partition between two batches (`limit=1`), so the cost
        of a checkpoint is spread over the batches instead of stalling one batch for all of
        them: each partition still gets one every `snapshot_seconds` or so."""
        since = time.monotonic() - self.settings.snapshot_seconds
        due = sorted((t, p) for p, t in self.checkpointed.items() if p in self.ready and t <= since)
        return {p for _, p in due[:limit]}

    def checkpoint_due(self) -> bool:
        return bool(self.overdue(1))

    async def checkpoint(self, partitions: set[int] | None = None, *, wait: bool = True) -> int:
        """Snapshot the changed communities of each ready partition, then its marker (call under `lock`).

        State is copied as JSON bytes in a thread while the lock is held (nothing changes it
        meanwhile; the event loop goes on fetching and heartbeating); compressing and writing
        the copies need no lock. `wait=False` (a busy agent) returns once the copies are taken
        and leaves the rest to a task, so the next batch does not wait for it; checkpoints are
        written one after another, in order. Returns the communities captured.
        """
        await self.settle()  # the previous checkpoint's snapshots are written before this one's
        started = time.perf_counter()
        captured = []
        for p in sorted(self.ready if partitions is None else partitions & self.ready):
            snaps = await asyncio.to_thread(self.snapshots.capture, self.registry, p)
            captured.append((p, snaps, self.offsets.get(p, -1)))
            self.checkpointed[p] = time.monotonic()
        metrics.CHECKPOINT_DURATION.observe(time.perf_counter() - started)
        self._writing = asyncio.ensure_future(self._write(captured))
        if wait:
            await self.settle()
        return sum(len(snaps) for _, snaps, _ in captured)

    async def settle(self) -> None:
        """Wait for the snapshots of the last checkpoint to be written."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing

    async def _write(self, captured: list[tuple[int, list[tuple[str, bytes]], int]]) -> None:
        for i, (p, snaps, marker) in enumerate(captured):
            blobs = await asyncio.to_thread(self.snapshots.compress, snaps)
            metrics.STATE_SNAPSHOTS.inc(self.snapshots.write(p, blobs, marker))
            if i == 0 and self.kill_switch.armed("checkpoint"):  # drills only: die mid-checkpoint
                await asyncio.sleep(0.5)  # the first partition's snapshots reach Kafka, the others never do
                self.kill_switch.at("checkpoint")

    def revoke(self, partitions: set[int]) -> None:
        """The next owner restores from the snapshots and replays the tail; drop ours."""
        for p in partitions & self.ready:
            self.ready.discard(p)
            self.checkpointed.pop(p, None)
            self.registry.drop_partition(p)

    async def _replay(self, partition: int, start: int, end: int) -> int:
        """Re-apply messages [start, end) of one events partition to state (no rows, no outputs)."""
        if start >= end:
            return 0
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False, group_id=None)
        await consumer.start()
        applied = 0
        try:
            tp = TopicPartition(TOPIC_EVENTS, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            position = start
            while position < end:
                fetched = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
                batch = []
                for msg in fetched.get(tp, []):
                    if msg.offset >= end:
                        position = end
                        break
                    position = msg.offset + 1
                    batch.append(Incoming(msg.value, partition, msg.offset, msg.timestamp / 1000))
                if batch:
                    applied += await asyncio.to_thread(self.pipeline.replay, batch)
                if not fetched:
                    high = await consumer.end_offsets([tp])
                    if position >= high[tp]:
                        break
        finally:
            await consumer.stop()
        log.info("replayed %d events of %s[%d] from offset %d into state", applied, TOPIC_EVENTS, partition, start)
        return applied
