"""Which event ids a community has already scored, for the length of the dedup window.

Ids are kept as 64-bit XXH3 hashes (stable across processes, unlike `hash()`),
bucketed by the UTC day of the event's own time so a whole day expires at once.
A re-delivery is the same immutable event, so it carries the same occurred_at and
is looked up in that day's bucket only.

The clock's day and the day before stay plain sets (fast, ~70 bytes an id); older
days are frozen into a sorted int64 array (8 bytes an id) plus a small set for late
arrivals, merged back into the array when it outgrows a quarter of it.
Collision odds: about n^2 / 2^65 for n ids in one day (3e-6 at 10^7).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from xxhash import xxh3_64_intdigest

from streams.event_record import EventRecord
from streams.scoring.config import DAY_SECONDS
from streams.scoring.packed_arrays import array_from_b64, array_to_b64

_MERGE_MIN = 1024
_HOT_DAYS = 2  # the clock's day and the one before stay sets


_SIGN = 1 << 63


def event_id_hash(event_id: str) -> int:
    """A signed 64-bit hash of an event id, the same in every process."""
    return xxh3_64_intdigest(event_id.encode()) - _SIGN  # shifted into int64 range


class _DayBucket:
    __slots__ = ("frozen", "merge_at", "recent")

    def __init__(self, frozen: array[int] | None = None) -> None:
        self.recent: set[int] = set()
        self.frozen = frozen  # None while the day is hot
        self.merge_at = max(_MERGE_MIN, len(frozen) >> 2) if frozen is not None else -1

    def freeze(self) -> None:
        """Fold the set into the sorted array."""
        merged = sorted([*self.frozen, *self.recent]) if self.frozen is not None else sorted(self.recent)
        self.frozen = array("q", merged)
        self.recent = set()
        self.merge_at = max(_MERGE_MIN, len(merged) >> 2)

    def hashes(self) -> array[int]:
        if not self.recent and self.frozen is not None:
            return self.frozen
        return array("q", sorted([*(self.frozen or ()), *self.recent]))

    def __len__(self) -> int:
        return len(self.recent) + (len(self.frozen) if self.frozen is not None else 0)


class EventIdMemory:
    """The ids seen per day of event time; `add` says whether an id is new."""

    __slots__ = ("_buckets", "_hot_from_day", "next_housekeeping")

    def __init__(self) -> None:
        self._buckets: dict[int, _DayBucket] = {}
        self._hot_from_day = -(1 << 62)
        # The caller runs `housekeep` once its clock reaches this time (cheap float check).
        self.next_housekeeping = -math.inf

    def add(self, event_id: str, ts: float) -> bool:
        """Remember `event_id` (occurred at `ts`); False when it was seen before."""
        return self._add(event_id_hash(event_id), int(ts // DAY_SECONDS))

    def _add(self, h: int, day: int) -> bool:
        bucket = self._buckets.get(day)
        if bucket is None:
            bucket = self._buckets[day] = _DayBucket(array("q") if day < self._hot_from_day else None)
        recent = bucket.recent
        if h in recent:
            return False
        frozen = bucket.frozen
        if frozen is not None:
            i = bisect_left(frozen, h)
            if i < len(frozen) and frozen[i] == h:
                return False
            recent.add(h)
            if len(recent) > bucket.merge_at:
                bucket.freeze()
            return True
        recent.add(h)
        return True

    def fresh(
        self, events: Sequence[EventRecord], clock: float, lateness: float
    ) -> tuple[list[EventRecord], int, int, float]:
        """The events to score, in order: (events, late, duplicates, clock after them).

        Late first (`ts < clock - lateness`, with the clock moved by the events kept),
        then duplicates; the ids kept are remembered. Housekeeping is left to the caller.
        """
        kept: list[EventRecord] = []
        keep = kept.append
        late = duplicates = 0
        buckets = self._buckets
        hot_day = None  # the last day seen while it is a plain set: most events fall in it
        hot: set[int] = set()
        sign = _SIGN
        for event in events:
            ts = event[4]
            if ts < clock - lateness:
                late += 1
                continue
            h = xxh3_64_intdigest(event[0].encode()) - sign
            day = int(ts // DAY_SECONDS)
            if day == hot_day:
                if h in hot:
                    duplicates += 1
                    continue
                hot.add(h)
            else:
                bucket = buckets.get(day)
                if bucket is not None and bucket.frozen is None:
                    hot_day, hot = day, bucket.recent
                    if h in hot:
                        duplicates += 1
                        continue
                    hot.add(h)
                elif not self._add(h, day):
                    duplicates += 1
                    continue
                elif buckets[day].frozen is None:
                    hot_day, hot = day, buckets[day].recent
            keep(event)
            if ts > clock:
                clock = ts
        return kept, late, duplicates, clock

    def housekeep(self, clock: float, window: float) -> None:
        """Forget days that ended `window` before `clock`; freeze days no longer hot."""
        clock_day = int(clock // DAY_SECONDS)
        buckets = self._buckets
        for day in [d for d in buckets if (d + 1) * DAY_SECONDS <= clock - window]:
            del buckets[day]
        self._hot_from_day = clock_day - _HOT_DAYS + 1
        for day, bucket in buckets.items():
            if day < self._hot_from_day and bucket.frozen is None:
                bucket.freeze()
        # Nothing changes before the next day starts or the oldest day expires.
        next_day = (clock_day + 1) * DAY_SECONDS
        oldest_expiry = (min(buckets) + 1) * DAY_SECONDS + window if buckets else next_day
        self.next_housekeeping = min(next_day, oldest_expiry)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def snapshot(self) -> dict[str, Any]:
        """Days as base64 of their sorted little-endian int64 hashes, and the housekeeping marks."""
        return {
            "days": {str(day): array_to_b64(self._buckets[day].hashes()) for day in sorted(self._buckets)},
            "hot_from_day": self._hot_from_day,
            "next_housekeeping": None if self.next_housekeeping == -math.inf else self.next_housekeeping,
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> EventIdMemory:
        """The same answers as the memory snapshotted (every restored day starts frozen)."""
        memory = cls()
        for day, text in snapshot["days"].items():
            memory._buckets[int(day)] = _DayBucket(array_from_b64("q", text))
        memory._hot_from_day = int(snapshot["hot_from_day"])
        mark = snapshot["next_housekeeping"]
        memory.next_housekeeping = -math.inf if mark is None else float(mark)
        return memory
