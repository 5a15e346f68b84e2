"""A busy worker checkpoints the most overdue partition between batches, one at a time."""

from __future__ import annotations

import time
from typing import Any

from streams.config import Settings
from streams.worker.recovery import Partitions


def _partitions(ages: dict[int, float], ready: set[int]) -> Partitions:
    settings = Settings().with_(snapshot_seconds=10.0)
    nothing: Any = None
    parts = Partitions(settings, nothing, nothing, nothing, nothing)
    now = time.monotonic()
    parts.checkpointed = {p: now - age for p, age in ages.items()}
    parts.ready = ready
    return parts


def test_the_oldest_due_partition_comes_first_and_fresh_or_unowned_ones_never() -> None:
    parts = _partitions({0: 3.0, 1: 25.0, 2: 11.0, 3: 40.0}, ready={0, 1, 2})  # 3 is not (or no longer) ours
    assert parts.overdue(1) == {1}
    assert parts.overdue() == {1, 2}
    assert parts.checkpoint_due()


def test_nothing_is_due_right_after_a_checkpoint() -> None:
    parts = _partitions({0: 0.5, 1: 9.0}, ready={0, 1})
    assert parts.overdue() == set() and not parts.checkpoint_due()


def test_a_batch_is_cut_between_envelopes_into_pieces_of_at_most_max_events() -> None:
    from streams.worker.app import pieces
    from streams.worker.pipeline import Incoming

    sizes = [3, 4, 1, 9, 2, 2, 2, 1]
    batch = [Incoming(b"\n".join([b"{}"] * n), 0, i, 0.0) for i, n in enumerate(sizes)]
    got = pieces(batch, 6)
    assert [m for piece in got for m in piece] == batch  # every message once, in order
    events = [sum(sizes[m.offset] for m in piece) for piece in got]
    assert events == [3, 5, 9, 6, 1]  # the 9-event envelope is a piece of its own
    assert pieces([], 6) == [] and pieces(batch[:1], 100) == [batch[:1]]


def test_quiet_time_counts_from_the_last_batch_applied() -> None:
    from streams.worker.pipeline import Incoming

    parts = _partitions({0: 30.0}, ready={0})
    parts.last_applied -= 100
    assert parts.quiet_for() >= 100
    parts.applied([Incoming(b"{}", 0, 7, 0.0)])
    assert parts.quiet_for() < 1 and parts.offsets[0] == 7
