"""StuckWatch (streams/worker/stuck.py): a partition with messages past its resume point that the
consumer does not hand over while the agent is idle is reported, once per `after_s`."""

from __future__ import annotations

from streams.worker.stuck import StuckWatch


def test_a_partition_waiting_while_the_agent_idles_is_stuck_after_the_limit() -> None:
    w = StuckWatch(15.0)
    assert w.check(100.0, {3: 6, 7: 6}, {3: 7, 7: 6}, idle_since=90.0) == []  # first seen waiting
    assert w.check(110.0, {3: 6, 7: 6}, {3: 7, 7: 6}, idle_since=90.0) == []
    assert w.check(115.0, {3: 6, 7: 6}, {3: 7, 7: 6}, idle_since=90.0) == [3]
    # reported once; again only after another limit
    assert w.check(120.0, {3: 6}, {3: 7}, idle_since=90.0) == []
    assert w.check(130.0, {3: 6}, {3: 7}, idle_since=90.0) == [3]


def test_a_busy_agent_or_a_moving_resume_point_starts_the_wait_again() -> None:
    w = StuckWatch(15.0)
    w.check(100.0, {3: 6}, {3: 9}, idle_since=90.0)
    assert w.check(110.0, {3: 6}, {3: 9}, idle_since=None) == []  # busy (or rebalancing)
    assert w.check(120.0, {3: 6}, {3: 9}, idle_since=118.0) == []  # idle again, from 118
    assert w.check(132.0, {3: 6}, {3: 9}, idle_since=118.0) == []
    assert w.check(133.0, {3: 6}, {3: 9}, idle_since=118.0) == [3]
    w = StuckWatch(15.0)
    w.check(100.0, {3: 6}, {3: 9}, idle_since=90.0)
    assert w.check(114.0, {3: 8}, {3: 9}, idle_since=90.0) == []  # it moved: a new wait from 114
    assert w.check(128.0, {3: 8}, {3: 9}, idle_since=90.0) == []
    assert w.check(129.0, {3: 8}, {3: 9}, idle_since=90.0) == [3]


def test_caught_up_unknown_or_unassigned_partitions_are_forgotten() -> None:
    w = StuckWatch(15.0)
    w.check(100.0, {1: 4, 2: 0}, {1: 5, 2: 3}, idle_since=90.0)
    assert w.check(110.0, {1: 5}, {1: 5, 2: 3}, idle_since=90.0) == []  # 1 caught up, 2 unknown
    assert w.check(126.0, {1: 4, 2: 0}, {1: 5, 2: 3}, idle_since=90.0) == []  # both start again
    assert w.check(141.0, {1: 4}, {1: 5}, idle_since=90.0) == [1]
    w.check(150.0, {1: 4, 2: 0}, {2: 3}, idle_since=90.0)  # 1 no longer assigned
    assert w.check(166.0, {1: 4, 2: 0}, {1: 5, 2: 3}, idle_since=90.0) == [2]
