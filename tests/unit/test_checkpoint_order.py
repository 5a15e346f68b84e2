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
