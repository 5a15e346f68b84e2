"""Each partition's log is processed exactly once, in order, whatever offsets Faust hands.

After a rebalance Faust can hand a record it fetched before it, from beyond the group's
commit (faust-streaming#221), and afterwards the ones it should have handed first. Recovery
replays the tail only up to the commit (those events are stored); `contiguous` reads what is
missing before a message from the log and drops what state holds already. The log here is a
list; the real one (tests/e2e) is read by the same `_read` contract: [start, end), in runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from streams import metrics
from streams.config import Settings
from streams.worker.pipeline import Incoming
from streams.worker.recovery import Partitions

LOG = {p: [Incoming(b"{}", p, o, 0.0) for o in range(40)] for p in (0, 1)}


class _Snapshots:
    def __init__(self, markers: dict[int, int]) -> None:
        self.markers = markers

    def restore_partition(self, registry: Any, partition: int) -> int:
        return self.markers.get(partition, -1)


class _Registry:
    communities: dict[str, Any] = {}

    def drop_partition(self, partition: int) -> None:
        return None


class _Replayed:
    """Stands in for the pipeline: records what recovery applied to state without rows."""

    def __init__(self) -> None:
        self.offsets: list[tuple[int, int]] = []

    def replay(self, batch: Sequence[Incoming]) -> int:
        self.offsets.extend((m.partition, m.offset) for m in batch)
        return len(batch)


def _partitions(
    committed: dict[int, int], markers: dict[int, int], log_start: int = 0, *, sought: bool = True
) -> tuple[Partitions, _Replayed, list[Any]]:
    """`committed`: the group's commits; Faust sought to them (`sought`) or the group is asked.
    `log_start`: the log's first offset (older ones deleted), where the group resumes a
    partition it has no commit of."""
    reads: list[tuple[int, int, int]] = []
    replayed = _Replayed()

    async def group_commit(partitions: Sequence[int]) -> dict[int, int]:
        reads.append(("asked", *partitions))
        return {p: committed.get(p) or log_start for p in partitions}

    nothing: Any = None
    parts = Partitions(Settings(), nothing, nothing, nothing, group_commit)
    parts.registry = _Registry()  # type: ignore[assignment]
    parts.snapshots = _Snapshots(markers)  # type: ignore[assignment]
    parts.pipeline = replayed  # type: ignore[assignment]

    async def read(partition: int, start: int, end: int) -> AsyncIterator[list[Incoming]]:
        if start < end:
            reads.append((partition, start, end))
        msgs = LOG[partition][max(start, log_start) : end]
        for i in range(0, len(msgs), 4):
            yield msgs[i : i + 4]

    parts._read = read  # type: ignore[method-assign]

    async def filled(partition: int, first: int, last: int) -> None:
        reads.append(("filled", partition, first, last))

    parts.filled = filled
    if sought:
        parts.faust_seeked({p: committed.get(p) for p in LOG})
    return parts, replayed, reads


def _handed(partition: int, *offsets: int) -> list[Incoming]:
    return [LOG[partition][o] for o in offsets]


def _processed(parts: Partitions, batch: list[Incoming]) -> list[tuple[int, int]]:
    async def go() -> list[tuple[int, int]]:
        seen = list(dict.fromkeys(m.partition for m in batch))
        new = [p for p in seen if p not in parts.ready]
        await parts.ensure_all(seen, await parts.commits(new, 0.05))
        out = []
        async for run in parts.contiguous(batch):
            out.extend((m.partition, m.offset) for m in run)
            parts.applied(run)
        return out

    return asyncio.run(go())


def _repaired(kind: str) -> float:
    return metrics.OFFSETS_REPAIRED.labels(kind)._value.get()  # type: ignore[attr-defined,no-any-return]


def test_a_record_from_beyond_the_commit_first_the_missing_ones_are_read_and_processed_before_it() -> None:
    parts, replayed, reads = _partitions(committed={0: 12}, markers={0: 7})
    missing_before = _repaired("missing")
    got = _processed(parts, _handed(0, 20, 21))
    assert replayed.offsets == [(0, o) for o in range(8, 12)]  # the tail ends at the commit: stored already
    assert got == [(0, o) for o in range(12, 22)]  # 12-19 from the log, with their rows, then 20-21
    assert reads == [(0, 8, 12), (0, 12, 20), ("filled", 0, 12, 19)]  # and the consumer is told
    assert _repaired("missing") - missing_before == 8
    # then Faust hands the ones it skipped: in state and stored, dropped; the log goes on after them
    redelivered_before = _repaired("redelivered")
    assert _processed(parts, _handed(0, *range(12, 25))) == [(0, 22), (0, 23), (0, 24)]
    assert _repaired("redelivered") - redelivered_before == 10


def test_handed_from_the_commit_nothing_is_read_or_dropped() -> None:
    parts, replayed, reads = _partitions(committed={0: 12, 1: 3}, markers={0: 7})
    got = _processed(parts, _handed(0, 12, 13) + _handed(1, 3) + _handed(0, 14) + _handed(1, 4))
    assert got == [(0, 12), (0, 13), (1, 3), (0, 14), (1, 4)]  # as handed
    assert replayed.offsets == [(0, o) for o in range(8, 12)] + [(1, o) for o in range(0, 3)]
    assert reads == [(0, 8, 12), (1, 0, 3)]  # the two tails, nothing else


def test_a_snapshot_ahead_of_the_commit_its_events_are_not_processed_again() -> None:
    parts, replayed, reads = _partitions(committed={0: 10}, markers={0: 15})
    assert _processed(parts, _handed(0, *range(10, 18))) == [(0, 16), (0, 17)]
    assert replayed.offsets == [] and reads == []


def test_no_commit_yet_the_log_starts_at_its_first_offset_whatever_faust_hands_first() -> None:
    parts, replayed, reads = _partitions(committed={}, markers={}, log_start=5)  # older offsets deleted
    assert _processed(parts, _handed(1, 5, 6)) == [(1, 5), (1, 6)]
    # no commit: the group is asked for the log's start; the tail before it is deleted, empty
    assert replayed.offsets == [] and reads == [("asked", 1), (1, 0, 5)]
    # Faust does not seek a partition without a commit, so it can hand any offset first
    parts, replayed, reads = _partitions(committed={}, markers={}, log_start=5)
    assert _processed(parts, _handed(1, 8, 9)) == [(1, o) for o in range(5, 10)]  # 5-7 with their rows
    assert replayed.offsets == [] and reads == [("asked", 1), (1, 0, 5), (1, 5, 8), ("filled", 1, 5, 7)]


def test_no_commit_when_a_rebalance_took_the_state_what_this_process_stored_is_processed_again() -> None:
    # Seen in a drill: 0 was processed and stored, a rebalance came before any commit and dropped
    # the partition's state (and the buffered 1), and Faust handed 2 first. Replaying up to 2 as
    # a tail put 1 in state only: it was never stored, and the group committed past it.
    parts, replayed, _ = _partitions(committed={}, markers={})
    assert _processed(parts, _handed(0, 0)) == [(0, 0)]
    parts.revoke({0})
    assert _processed(parts, _handed(0, 2, 3)) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert replayed.offsets == []  # nothing went to state without its rows


def test_handed_below_the_commit_what_is_stored_already_is_not_processed_again() -> None:
    parts, replayed, _ = _partitions(committed={0: 12}, markers={0: 7})
    assert _processed(parts, _handed(0, 10, 11, 12)) == [(0, 12)]
    assert replayed.offsets == [(0, o) for o in range(8, 12)]


def test_before_faust_has_sought_the_batch_waits_for_the_seek() -> None:
    parts, replayed, reads = _partitions(committed={0: 12}, markers={0: 7}, sought=False)

    async def go() -> list[tuple[int, int]]:
        async def seek_later() -> None:
            await asyncio.sleep(0.1)
            parts.faust_seeked({0: 12, 1: None})

        seeking = asyncio.ensure_future(seek_later())
        committed = await parts.commits([0], wait_seconds=5.0)
        await seeking
        assert committed == {0: 12}
        await parts.ensure_all([0], committed)
        return [(m.partition, m.offset) async for run in parts.contiguous(_handed(0, 20)) for m in run]

    assert asyncio.run(go()) == [(0, o) for o in range(12, 21)]
    assert replayed.offsets == [(0, o) for o in range(8, 12)]  # the tail ends at the commit sought to
    assert ("asked", 0) not in reads  # the seek answered; the group was not asked


def test_no_seek_for_a_partition_the_group_is_asked_and_a_revoke_forgets_the_seek() -> None:
    parts, _, reads = _partitions(committed={0: 12, 1: 3}, markers={}, sought=False)
    parts.faust_seeked({1: 3})
    assert asyncio.run(parts.commits([0, 1], wait_seconds=0.05)) == {0: 12, 1: 3}
    assert reads == [("asked", 0)]
    parts.unassigned({1})
    assert asyncio.run(parts.commits([1], wait_seconds=0.0)) == {1: 3}
    assert reads == [("asked", 0), ("asked", 1)]


def test_a_hole_inside_a_batch_is_filled_in_place_and_other_partitions_keep_their_order() -> None:
    parts, _, reads = _partitions(committed={0: 0, 1: 0}, markers={})
    got = _processed(parts, _handed(0, 0, 1) + _handed(1, 0) + _handed(0, 5) + _handed(1, 1))
    assert got == [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (0, 4), (0, 5), (1, 1)]
    assert reads == [("asked", 0, 1), (0, 2, 5), ("filled", 0, 2, 4)]  # no commits: asked for the log's start


def _faust_consumer(committed: int, acked: list[int]) -> Any:
    """Faust's own commit bookkeeping (the worker's consumer, faust.transport.consumer.Consumer's
    `_new_offset` and `_add_gap`), on its state alone."""
    from collections import defaultdict

    from faust.transport.drivers.aiokafka import Consumer
    from faust.types import TP
    from intervaltree import IntervalTree

    tp = TP("engagement.events", 0)
    consumer: Any = Consumer.__new__(Consumer)
    consumer._committed_offset = defaultdict(lambda: None, {tp: committed})
    consumer._acked = defaultdict(list, {tp: list(acked)})
    consumer._acked_index = defaultdict(set, {tp: set(acked)})
    consumer._gap = defaultdict(IntervalTree)
    return consumer, tp


def test_faust_never_commits_past_a_hole_of_two_offsets_it_did_not_hand_over_unless_told() -> None:
    # committed 10 (the next to read); 10 and 11 were read from the log (never handed, never
    # acknowledged to Faust), 12-14 were handed and acknowledged
    consumer, tp = _faust_consumer(10, [12, 13, 14])
    assert consumer._new_offset(tp) is None  # and it stays so: the group's commit stops here
    parts, _, _ = _partitions(committed={0: 10}, markers={})

    async def go() -> list[int]:
        async def filled(partition: int, first: int, last: int) -> None:
            await consumer._add_gap(tp, first, last)  # what the worker's hook does (app._consumer_gap)

        parts.filled = filled
        await parts.ensure_all([0], await parts.commits([0], 0.05))
        return [m.offset async for run in parts.contiguous(_handed(0, 12, 13, 14)) for m in run]

    assert asyncio.run(go()) == list(range(10, 15))
    assert consumer._new_offset(tp) == 15  # the commit moves past the hole
