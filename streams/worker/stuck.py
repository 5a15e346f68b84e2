"""Events partitions the consumer has stopped handing over, found and sought back to their commit.

Seen in drills (tests/e2e/test_chaos.py, kill9 and kafka-restart, about one CI run in three
of stops 26-27): after a rebalance, one assigned partition holds messages past the group's
commit that Faust never hands to the agent, while the other partitions flow. Nothing is lost
(the messages are in the log, uncommitted), but nothing moves either, for good. Where in Faust
or aiokafka the hand-over stops was not found; the drill's timeout prints what the consumer
says of each partition (GET /v1/partitions). So the worker watches for it, and repairs it the
way Faust itself resumes a partition after a rebalance: a seek to the commit.

A partition is stuck when its log's end is past where the group resumes it (its commit, or the
newest offset applied + 1) and that point has not moved for `after_s` while the events agent was
idle the whole time, with Faust's flow on and its recovery done: an idle agent with work in the
log is not busy elsewhere, so nothing is in flight for that partition. Whatever the consumer then
hands again that was applied already is dropped by `Partitions.contiguous`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    resume: int  # where the group resumes the partition when it was first seen waiting
    end: int  # the log's end then
    since: float  # monotonic time it was first seen waiting there


class StuckWatch:
    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._waiting: dict[int, Seen] = {}

    def check(
        self, now: float, resume: Mapping[int, int], ends: Mapping[int, int], idle_since: float | None
    ) -> list[int]:
        """Partitions stuck at `now` (sorted); each is reported again only after another `after_s`.

        `resume`: where the group resumes each assigned partition; `ends`: each one's log end;
        `idle_since`: since when the agent has been idle, with Faust's flow on and its recovery
        done (None: it is not). A wait counts from when it was first seen or the agent last
        became idle, whichever is later."""
        stuck = []
        for p, end in ends.items():
            at = resume.get(p)
            if at is None or end <= at:
                self._waiting.pop(p, None)  # caught up (or unknown): nothing waits
                continue
            seen = self._waiting.get(p)
            since = now if seen is None or seen.resume != at else seen.since
            if idle_since is None or idle_since > since:
                since = now if idle_since is None else idle_since
            if now - since >= self.after_s:
                stuck.append(p)
                since = now
            self._waiting[p] = Seen(at, end, since)
        for p in set(self._waiting) - set(ends):  # no longer assigned
            del self._waiting[p]
        return sorted(stuck)
