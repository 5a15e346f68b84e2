"""Which event ids a community has already scored, for the length of the dedup window.

Ids are kept as 64-bit XXH3 hashes (stable across processes, unlike `hash()`),
bucketed by the UTC day of the event's own time so a whole day expires at once.
A re-delivery is the same immutable event, so it carries the same occurred_at and
is looked up in that day's bucket only.

A day is a few sorted int64 runs (8 bytes an id): each batch adds one run of its new
ids, and runs are merged as in a log-structured merge (a run is folded into the one
before once it is at least half its size), so a day has O(log n) runs and every id is
copied O(log n) times. A batch is checked with numpy, all its ids at once.
Collision odds: about n^2 / 2^65 for n ids in one day (3e-6 at 10^7).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from xxhash import xxh3_64_intdigest

from streams.event_record import EventRecord
from streams.scoring.config import DAY_SECONDS

Hashes = npt.NDArray[np.int64]

# Under this many events `fresh` goes event by event in Python: numpy's per-call costs
# outweigh its per-event savings (tests check both paths give the same answers).
SMALL_BATCH = 64
TAIL_MAX = 256  # ids a day keeps in a set (about 60 bytes each) before they become a sorted run
_UNSIGNED = (1 << 64) - 1


def event_id_hash(event_id: str) -> int:
    """A signed 64-bit hash of an event id, the same in every process."""
    return int(np.uint64(xxh3_64_intdigest(event_id.encode())).view(np.int64))


class _Day:
    """One day's ids: sorted int64 runs, and the few most recent ids of small batches in a set."""

    __slots__ = ("runs", "tail")

    def __init__(self, runs: list[Hashes] | None = None) -> None:
        self.runs: list[Hashes] = runs or []
        # Unsigned hashes added by small batches, not in a run yet (at most TAIL_MAX): a live
        # batch brings a few ids per community, and a run for each would mean a numpy search
        # per run for every later batch.
        self.tail: set[int] = set()

    def contains(self, hashes: Hashes) -> npt.NDArray[np.bool_]:
        found = self._in_runs(hashes)
        tail = self.tail
        if tail:
            found |= np.fromiter([h in tail for h in hashes.view(np.uint64).tolist()], bool, len(hashes))
        return found

    def contains_few(self, hashes: list[int]) -> list[bool]:
        """`contains` for a few unsigned hashes, as a list."""
        tail = self.tail
        found = [h in tail for h in hashes]
        if self.runs:
            in_runs = self._in_runs(np.array(hashes, np.uint64).view(np.int64)).tolist()
            found = [a or b for a, b in zip(found, in_runs, strict=True)]
        return found

    def _in_runs(self, hashes: Hashes) -> npt.NDArray[np.bool_]:
        found = np.zeros(len(hashes), bool)
        for run in self.runs:
            # past the end clips to the largest hash, which is below the one sought: no match
            found |= run.take(run.searchsorted(hashes), mode="clip") == hashes
        return found

    def add(self, new: Hashes) -> None:
        """Remember sorted `new` hashes, none of them known yet."""
        runs = self.runs
        runs.append(new)
        while len(runs) > 1 and 2 * len(runs[-1]) >= len(runs[-2]):
            last = runs.pop()
            runs[-1] = np.sort(np.concatenate((runs[-1], last)), kind="mergesort")

    def add_few(self, new: list[int]) -> None:
        """Remember a few unsigned hashes, none of them known yet."""
        tail = self.tail
        tail.update(new)
        if len(tail) >= TAIL_MAX:
            self.flush()

    def flush(self) -> None:
        """The tail becomes a run."""
        if self.tail:
            run = self._tail_run()
            self.tail = set()
            self.add(run)

    def _tail_run(self) -> Hashes:
        """The tail as a run: sorted signed hashes."""
        return np.sort(np.array(list(self.tail), np.uint64).view(np.int64))

    def discard(self, h: int) -> None:
        """Forget one (signed) hash."""
        self.runs = [kept for kept in (run[run != h] for run in self.runs) if len(kept)]
        self.tail.discard(h & _UNSIGNED)

    def hashes(self) -> Hashes:
        runs = [*self.runs, self._tail_run()] if self.tail else self.runs
        if len(runs) == 1:
            return runs[0]
        return np.sort(np.concatenate(runs)) if runs else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs) + len(self.tail)


class EventIdMemory:
    """The ids seen per day of event time; `fresh` filters a batch down to the events to score."""

    __slots__ = ("_days", "_tail_day", "next_housekeeping", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._days: dict[int, _Day] = {}
        self._tail_day = -1  # the one day whose tail may hold ids (small batches fill the newest day's)
        # The earliest time a day expires: the caller runs `housekeep` once its clock reaches it,
        # so at the end of every batch exactly the days that expired by then are gone.
        self.next_housekeeping = math.inf

    def _day(self, day: int) -> _Day:
        bucket = self._days.get(day)
        if bucket is None:
            bucket = self._days[day] = _Day()
            self.next_housekeeping = min(self.next_housekeeping, (day + 1) * DAY_SECONDS + self.window)
        return bucket

    def add(self, event_id: str, ts: float) -> bool:
        """Remember `event_id` (occurred at `ts`); False when it was seen before."""
        day = int(ts // DAY_SECONDS)
        h = np.array([event_id_hash(event_id)], np.int64)
        bucket = self._days.get(day)
        if bucket is not None and bucket.contains(h)[0]:
            return False
        self._day(day).add(h)
        return True

    def fresh(
        self, events: Sequence[EventRecord], clock: float, lateness: float
    ) -> tuple[list[EventRecord], int, int, float]:
        """The events to score, in order: (events, late, duplicates, clock after them).

        Late first (`ts < clock - lateness`, the clock moved by the events kept), then
        duplicates (the first delivery in the batch wins); the ids kept are remembered.
        Housekeeping is left to the caller.
        """
        n = len(events)
        if not n:
            return [], 0, 0, clock
        if n < SMALL_BATCH:
            return self._fresh_small(events, clock, lateness)
        ts = np.array([e[4] for e in events], np.float64)
        # The clock before each event: a late event is older than the clock and a duplicate
        # repeats a time already seen, so the running maximum of all times is the clock.
        before = np.maximum.accumulate(np.concatenate(((clock,), ts[:-1])))
        if n > 1:
            np.maximum(before, clock, out=before)
        on_time = np.flatnonzero(ts >= before - lateness)
        late = n - len(on_time)
        if not len(on_time):
            return [], late, 0, clock
        hashes = np.array(
            [xxh3_64_intdigest(events[i][0].encode()) for i in on_time.tolist()], np.uint64
        ).view(np.int64)
        days = np.floor_divide(ts[on_time], DAY_SECONDS).astype(np.int64)
        one_day = bool(days[0] == days[-1]) and bool((days == days[0]).all())
        # Repeats inside the batch: every delivery after the first of a (day, hash).
        order = np.argsort(hashes, kind="stable") if one_day else np.lexsort((hashes, days))
        # (stable: the first delivery leads its group)
        sorted_h = hashes[order]
        repeat = np.zeros(len(order), bool)
        repeat[1:] = sorted_h[1:] == sorted_h[:-1]
        if not one_day:
            sorted_d = days[order]
            repeat[1:] &= sorted_d[1:] == sorted_d[:-1]
        new = np.ones(len(on_time), bool)
        new[order[repeat]] = False
        # Ids seen in an earlier batch, and remembering the rest, one day at a time.
        first = order[~repeat]  # one delivery per (day, hash), sorted by day then hash
        if one_day:
            groups = [first]
        else:
            groups = np.split(first, np.flatnonzero(np.diff(days[first])) + 1)
        for group in groups:
            day = int(days[group[0]])
            bucket = self._days.get(day)
            group_hashes = hashes[group]
            if bucket is not None:
                seen = bucket.contains(group_hashes)
                new[group[seen]] = False
                group_hashes = group_hashes[~seen]
            if len(group_hashes):
                self._day(day).add(group_hashes.copy())
        kept_at = on_time[new]
        duplicates = len(on_time) - len(kept_at)
        if duplicates and bool(np.any(ts[on_time[~new]] > before[on_time[~new]])):
            # A "duplicate" with a newer time than the clock (an id reused for another fact) would
            # have moved the running maximum: judge lateness again without it, event by event.
            return self._fresh_slowly(events, clock, lateness, kept_at, ts)
        kept = [events[i] for i in kept_at.tolist()]
        return kept, late, duplicates, max(clock, float(ts[kept_at].max())) if len(kept_at) else clock

    def _fresh_small(
        self, events: Sequence[EventRecord], clock: float, lateness: float
    ) -> tuple[list[EventRecord], int, int, float]:
        """`fresh` for a few events: the rules event by event, each day's memory asked once."""
        hashes = [xxh3_64_intdigest(e[0].encode()) for e in events]  # unsigned; the runs hold them signed
        days = [int(e[4] // DAY_SECONDS) for e in events]
        first_day = days[0]
        one_day = days.count(first_day) == len(days)
        # a delivery is known by its hash within its day
        keys: list[Any] = hashes if one_day else list(zip(days, hashes, strict=True))
        seen: set[Any] = set()  # keys scored before: in an earlier batch, then earlier in this one
        for day in (first_day,) if one_day else set(days):
            bucket = self._days.get(day)
            if bucket is None:
                continue
            asked = hashes if one_day else [h for h, d in zip(hashes, days, strict=True) if d == day]
            found = bucket.contains_few(asked)
            if True in found:
                seen.update(
                    (h if one_day else (day, h)) for h, hit in zip(asked, found, strict=True) if hit
                )
        kept: list[EventRecord] = []
        kept_keys: list[Any] = []
        late = duplicates = 0
        floor = clock - lateness
        for event, key in zip(events, keys, strict=True):
            ts = event[4]
            if ts < floor:
                late += 1
            elif key in seen:
                duplicates += 1
            else:
                seen.add(key)
                kept.append(event)
                kept_keys.append(key)
                if ts > clock:
                    clock = ts
                    floor = clock - lateness
        if one_day:
            if kept_keys:
                self._add_few(first_day, kept_keys)
        else:
            by_day: dict[int, list[int]] = {}
            for day, h in kept_keys:
                by_day.setdefault(day, []).append(h)
            for day, day_hashes in by_day.items():
                self._add_few(day, day_hashes)
        return kept, late, duplicates, clock

    def _fresh_slowly(
        self,
        events: Sequence[EventRecord],
        clock: float,
        lateness: float,
        first_pass: npt.NDArray[np.intp],
        ts: npt.NDArray[np.float64],
    ) -> tuple[list[EventRecord], int, int, float]:
        # Undo what the first pass remembered, then go one event at a time.
        for i in first_pass.tolist():
            self._days[int(ts[i] // DAY_SECONDS)].discard(event_id_hash(events[i][0]))
        for key in [key for key, day in self._days.items() if not len(day)]:
            del self._days[key]
        self.next_housekeeping = (min(self._days) + 1) * DAY_SECONDS + self.window if self._days else math.inf
        kept: list[EventRecord] = []
        late = duplicates = 0
        for event in events:
            if event[4] < clock - lateness:
                late += 1
            elif not self.add(event[0], event[4]):
                duplicates += 1
            else:
                kept.append(event)
                clock = max(clock, event[4])
        return kept, late, duplicates, clock

    def _add_few(self, day: int, hashes: list[int]) -> None:
        """Remember a few unsigned hashes of `day`, none known yet, in its tail (any other day's becomes a run)."""
        if day != self._tail_day:
            before = self._days.get(self._tail_day)
            if before is not None:
                before.flush()
            self._tail_day = day
        self._day(day).add_few(hashes)

    def housekeep(self, clock: float) -> None:
        """Forget days that ended a window before `clock` (any re-delivery of them is late)."""
        days = self._days
        for day in [d for d in days if (d + 1) * DAY_SECONDS + self.window <= clock]:
            del days[day]
        self.next_housekeeping = (min(days) + 1) * DAY_SECONDS + self.window if days else math.inf

    def __len__(self) -> int:
        return sum(len(d) for d in self._days.values())

    def snapshot(self) -> dict[str, Any]:
        """Days as base64 of their sorted little-endian int64 hashes, and the housekeeping mark."""
        return {
            "days": {
                str(day): base64.b64encode(self._days[day].hashes().astype("<i8").tobytes()).decode("ascii")
                for day in sorted(self._days)
            },
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any], window: float) -> EventIdMemory:
        """The same answers as the memory snapshotted."""
        memory = cls(window)
        for day, text in snapshot["days"].items():
            hashes = np.frombuffer(base64.b64decode(text), "<i8").astype(np.int64)
            memory._day(int(day)).runs = [hashes] if len(hashes) else []
        return memory
