"""The partitions this worker owns and their state: restore, replay the tail, checkpoint, revoke.

Event sourcing with checkpoints (streams/snapshots.py has the format): a partition's
state is restored from its snapshots, then the log between the snapshot marker and
the group's committed offset is re-applied through the pipeline's decode and state
steps (those events are stored already). Every batch then continues each partition's
log exactly (`contiguous`): a message at or below the newest offset applied is in
state and stored, and is dropped; messages missing before one Faust hands us are
read from the log and processed in their place. A checkpoint is taken only between
batches, never while a batch is applied but not yet stored, and a busy worker
checkpoints one partition at a time. One
lock serialises everything that touches state, so batches, moderation decisions and
checkpoints never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import metrics
from streams.config import TOPIC_EVENTS, Settings
from streams.snapshots import SnapshotStore
from streams.state_registry import StateRegistry
from streams.worker.faults import KillSwitch
from streams.worker.pipeline import Incoming, Pipeline

log = logging.getLogger(__name__)

# partitions -> where the group resumes each: its committed offset, or where it has none,
# the log's start offset (what a consumer reset to the earliest offset reads first)
Committed = Callable[[Sequence[int]], Awaitable[dict[int, int]]]
# (partition, first, last): offsets Faust never handed were read from the log and processed
Filled = Callable[[int, int, int], Awaitable[None]]
SEEK_WAIT_SECONDS = 2.0  # how long a batch waits for Faust's seek before asking the group


async def _nobody(partition: int, first: int, last: int) -> None:
    return None


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
        self.seeked: dict[int, int | None] = {}  # the commit Faust sought to, per assigned partition (None: none)
        # told of each hole `contiguous` fills, so the consumer's commit can move past it
        self.filled: Filled = _nobody

    def faust_seeked(self, committed: Mapping[int, int | None]) -> None:
        """Faust sought these events partitions to the group's committed offsets (None: no commit).

        Faust does this after every assignment, once the partitions are resumed, so a record
        it fetched before the seek can be handed first, from beyond the commit
        (faust-streaming#221); what it sought to is where each partition's log goes on."""
        self.seeked.update({p: offset or None for p, offset in committed.items()})

    def unassigned(self, partitions: set[int]) -> None:
        """A rebalance: the commits Faust sought to are of the last assignment."""
        for p in partitions:
            self.seeked.pop(p, None)

    async def commits(self, partitions: Sequence[int], wait_seconds: float = SEEK_WAIT_SECONDS) -> dict[int, int]:
        """Where the group resumes each partition: the commit Faust sought to, or the log's start
        where the group has no commit (`Committed`).

        Call without `lock`: a batch handed before Faust's seek waits for it (the seek needs
        no lock, a rebalance does). A partition Faust has not sought within `wait_seconds`
        is asked of the group instead, and so is one without a commit, for its log's start:
        Faust does not seek such a partition at all, so the first offset it hands can be any
        (one it fetched before the rebalance, after a buffered message the rebalance dropped)."""
        deadline = time.monotonic() + wait_seconds
        while any(p not in self.seeked for p in partitions) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        known: dict[int, int] = {p: o for p in partitions if (o := self.seeked.get(p))}
        unsought = [p for p in partitions if p not in self.seeked]
        if unsought:
            log.warning("%s%s: Faust has not sought to the commit; asking the group", TOPIC_EVENTS, unsought)
        missing = [p for p in partitions if p not in known]
        if missing:
            known.update(await self.committed(missing))
        return known

    async def ensure_all(self, partitions: Sequence[int], committed: Mapping[int, int]) -> None:
        """`ensure` each partition of a batch not restored yet (`committed`: from `commits`)
        (call under `lock`)."""
        for p in partitions:
            await self.ensure(p, committed.get(p))

    async def ensure(self, partition: int, committed: int | None = None) -> None:
        """Restore `partition` and replay its log tail up to where the group resumes it (its
        commit, or the log's start: `commits`) (call under `lock`).

        The tail ends there, not at the first offset Faust hands us: after a rebalance Faust
        can hand a record it fetched before its seek, ahead of the commit (faust-streaming#221),
        and with no commit it does not seek at all; the events between were never stored
        (or were by this process, before a rebalance took the partition's state and no commit
        had been made). Replayed as a tail they would be in state with no rows, and processed
        next as duplicates; instead `contiguous` reads them from the log and processes them
        with their rows (rows stored twice are the same rows)."""
        if partition in self.ready:
            return
        before = len(self.registry.communities)
        marker = self.snapshots.restore_partition(self.registry, partition)
        metrics.STATE_RESTORED.inc(len(self.registry.communities) - before)
        stale = await self.erasures.load(partition) if self.erasures is not None else ()
        if committed is None:  # not asked before the lock was taken (a revoke came in between)
            committed = (await self.commits([partition], 0.0))[partition]
        replayed = await self._replay(partition, marker + 1, committed)
        metrics.STATE_REPLAYED.inc(replayed)
        if replayed:
            log.info("partition %d: restored snapshots at offset %d, replayed %d events", partition, marker, replayed)
        self.offsets[partition] = max(marker, committed - 1)
        self.ready.add(partition)
        self.checkpointed[partition] = time.monotonic()
        if stale and self.erasures is not None:  # snapshots older than an erasure: rebuild without the member
            await self.erasures.apply(partition, stale)

    async def contiguous(self, batch: Sequence[Incoming]) -> AsyncGenerator[list[Incoming], None]:
        """`batch` as the continuation of each ready partition's log, in runs (call under `lock`,
        after `ensure_all`).

        A message at or below its partition's newest applied offset is in state, and its rows
        are stored (the tail replayed by `ensure` ends at the group's commit; a checkpoint is
        taken after its batch is stored): it is dropped. Messages missing before one are read
        from the log and yielded in their place, in runs of at most 500 messages, so each is
        processed once, in log order, with its rows; then `filled` is told of them."""
        run: list[Incoming] = []
        following: dict[int, int] = {}
        for msg in batch:
            p = msg.partition
            expected = following.get(p, self.offsets.get(p, -1) + 1)
            if msg.offset < expected:
                metrics.OFFSETS_REPAIRED.labels("redelivered").inc()
                continue
            if msg.offset > expected:
                log.warning(
                    "%s[%d]: handed offset %d after %d; reading the %d messages between from the log",
                    TOPIC_EVENTS, p, msg.offset, expected - 1, msg.offset - expected,
                )
                if run:
                    yield run
                    run = []
                async for missing in self._read(p, expected, msg.offset):
                    metrics.OFFSETS_REPAIRED.labels("missing").inc(len(missing))
                    yield missing
                # Faust never acknowledges offsets it did not hand over: from two of them on,
                # its commit would stop before the hole for good (Consumer._new_offset)
                await self.filled(p, expected, msg.offset - 1)
            run.append(msg)
            following[p] = msg.offset + 1
        if run:
            yield run

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
        applied = 0
        async for batch in self._read(partition, start, end):
            applied += await asyncio.to_thread(self.pipeline.replay, batch)
        if end > start:
            log.info("replayed %d events of %s[%d] from offset %d into state", applied, TOPIC_EVENTS, partition, start)
        return applied

    async def _read(self, partition: int, start: int, end: int) -> AsyncIterator[list[Incoming]]:
        """Messages [start, end) of one events partition, straight from the log, in runs of at
        most 500. Offsets a consumer never sees (a transaction's markers) are passed over."""
        if start >= end:
            return
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False, group_id=None)
        await consumer.start()
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
                        break
                    batch.append(Incoming(msg.value, partition, msg.offset, msg.timestamp / 1000))
                position = max(position, await consumer.position(tp))
                if batch:
                    yield batch
                elif not fetched:
                    high = await consumer.end_offsets([tp])
                    if position >= high[tp]:
                        break
        finally:
            await consumer.stop()
