"""The k eligible members with the largest stored creation, kept exact event by event.

Keys are (stored creation, member index): a total order, so the set is a function of
the columns alone and a restore rebuilds the very same set. Stored creation only grows
between eligibility changes, which makes two lazy heaps enough:
- `top`, a min-heap with exactly one entry per member of the set; an entry's value may
  lag the member's score (it only grew), so the minimum is refreshed before use.
- `rest`, a max-heap (negated keys) of the other candidates; it may hold stale entries
  (an older, lower value, or a member now in the set or no longer eligible), dropped
  when they surface.
`total` is the running sum of the set's stored creation (updated in log order, so it is
the same whatever the batch boundaries; snapshotted so a restore continues bit-exactly).
"""

from __future__ import annotations

import heapq
import math
from array import array

import numpy as np
from mypy_extensions import mypyc_attr

from streams.scoring.tiers import top_count

_heappush = heapq.heappush
_heappop = heapq.heappop
_heapreplace = heapq.heapreplace
REST_COMPACT_MIN = 1024  # `rest` is compacted past max(this, 4 x (members + 1)) entries


@mypyc_attr(native_class=False)  # mypyc compiles no subclass of a builtin otherwise
class Discard(list[int]):
    """A `changed` list for a set whose entries and exits nobody follows."""

    def append(self, _: int) -> None:
        pass


class TopSet:
    __slots__ = (
        "_creation",
        "_excluded",
        "_flags",
        "_role",
        "bit",
        "changed",
        "high",
        "k",
        "low",
        "rest",
        "share",
        "top",
        "total",
    )

    def __init__(
        self,
        share: float,
        bit: int,
        creation: array[float],
        flags: bytearray,
        role: bytearray,
        excluded: bytearray,
        changed: list[int],
    ) -> None:
        self.share = share
        self.bit = bit  # this set's bit in `flags` (one byte per member, shared by the sets)
        self.k = 1
        self.low, self.high = k_range(share, 0)  # eligible counts for which k stays as it is
        self.top: list[tuple[float, int]] = []
        self.rest: list[tuple[float, int]] = []
        self.total = 0.0
        # members that entered or left (or tied the smallest from outside), for the caller to read
        # and clear (a throwaway list when nobody reads it would grow without bound: pass a `Discard`)
        self.changed = changed
        self._creation = creation
        self._flags = flags
        self._role = role
        self._excluded = excluded

    def __len__(self) -> int:
        return len(self.top)

    def contains(self, idx: int) -> bool:
        return bool(self._flags[idx] & self.bit)

    def members(self) -> list[int]:
        return [idx for _, idx in self.top]

    # ------------------------------------------------------------ updates

    def grew(self, idx: int, old: float, new: float) -> bool:
        """An eligible member's stored creation went from `old` to `new` (> old).

        Returns False when only the running sum moved (the member was in the set already).
        """
        if self._flags[idx] & self.bit:
            self.total += new - old
            return False
        self._offer(idx, new)
        return True

    def _offer(self, idx: int, value: float) -> None:
        """A member outside the set with this value: into the set, or into `rest`."""
        top = self.top
        if len(top) < self.k:
            _heappush(top, (value, idx))
            self._flags[idx] |= self.bit
            self.total += value
            self.changed.append(idx)
            return
        low, low_idx = self._fresh_min()
        if value > low or (value == low and idx > low_idx):
            _heapreplace(top, (value, idx))
            flags = self._flags
            flags[low_idx] &= ~self.bit
            flags[idx] |= self.bit
            self.total += value - low
            _heappush(self.rest, (-low, -low_idx))
            self.changed.append(idx)
            self.changed.append(low_idx)
        else:
            if value == low:  # tied with the set's smallest (and behind it by index): the caller
                self.changed.append(idx)  # ranks ties by other keys, so its standing may have changed
            _heappush(self.rest, (-value, -idx))
            if len(self.rest) > REST_COMPACT_MIN and len(self.rest) > 4 * (len(self._creation) + 1):
                self.compact_rest()

    def _fresh_min(self) -> tuple[float, int]:
        """The set's smallest key, with lagging entries refreshed first."""
        top = self.top
        creation = self._creation
        value, idx = top[0]
        while value != creation[idx]:
            _heapreplace(top, (creation[idx], idx))
            value, idx = top[0]
        return value, idx

    def best_rest(self) -> tuple[float, int] | None:
        """The largest key outside the set (stale entries dropped), or None."""
        rest = self.rest
        creation, flags, role, excluded, bit = self._creation, self._flags, self._role, self._excluded, self.bit
        while rest:
            neg, neg_idx = rest[0]
            idx = -neg_idx
            if not flags[idx] & bit and not role[idx] and not excluded[idx] and -neg == creation[idx]:
                return -neg, idx
            _heappop(rest)
        return None

    def minimum(self) -> tuple[float, int] | None:
        return self._fresh_min() if self.top else None

    def resize(self, eligible: int) -> None:
        """Follow k = top_count(share, eligible) after the eligible count changed."""
        if eligible == self.high + 1:  # the usual step: one member past the range
            self.low, self.high = eligible, _range_high(self.share, eligible, top_count(self.share, eligible))
        else:
            self.low, self.high = k_range(self.share, eligible)
        k = top_count(self.share, eligible)
        if k == self.k:
            return
        self.k = k
        top = self.top
        flags = self._flags
        while len(top) > k:
            value, idx = self._fresh_min()
            _heappop(top)
            flags[idx] &= ~self.bit
            self.total -= value
            _heappush(self.rest, (-value, -idx))
            self.changed.append(idx)
        while len(top) < k:
            best = self.best_rest()
            if best is None:
                break
            value, idx = best
            _heappop(self.rest)
            _heappush(top, (value, idx))
            flags[idx] |= self.bit
            self.total += value
            self.changed.append(idx)
        if not top:
            self.total = 0.0

    def leave(self, idx: int) -> None:
        """The member stopped being eligible (its `rest` entries go stale by themselves)."""
        if not self._flags[idx] & self.bit:
            return
        self._flags[idx] &= ~self.bit
        value = self._creation[idx]
        self.top = [entry for entry in self.top if entry[1] != idx]
        heapq.heapify(self.top)
        self.total = self.total - value if self.top else 0.0
        self.changed.append(idx)
        self._refill(self.k)

    def _refill(self, k: int) -> None:
        self.k = k
        top = self.top
        while len(top) < k:
            best = self.best_rest()
            if best is None:
                break
            value, idx = best
            _heappop(self.rest)
            _heappush(top, (value, idx))
            self._flags[idx] |= self.bit
            self.total += value
            self.changed.append(idx)

    def join(self, idx: int) -> None:
        """The member became eligible, with its stored creation (> 0)."""
        self._offer(idx, self._creation[idx])

    def compact_rest(self) -> None:
        creation, flags, role, excluded, bit = self._creation, self._flags, self._role, self._excluded, self.bit
        self.rest = [
            (neg, neg_idx)
            for neg, neg_idx in self.rest
            if not flags[-neg_idx] & bit
            and not role[-neg_idx]
            and not excluded[-neg_idx]
            and -neg == creation[-neg_idx]
        ]
        heapq.heapify(self.rest)

    # ------------------------------------------------------------ rebuilding

    def rebuild(self, eligible: int, candidates: list[tuple[float, int]], total: float | None) -> None:
        """The set from scratch: `candidates` are (stored creation > 0, idx) of every eligible member.

        `total` is the snapshotted running sum (None: recompute it exactly, after a rebase).
        """
        self.k = top_count(self.share, eligible)
        self.low, self.high = k_range(self.share, eligible)
        ordered = sorted(candidates, reverse=True)
        chosen, others = ordered[: self.k], ordered[self.k :]
        flags, bit = self._flags, self.bit
        view = np.frombuffer(flags, np.uint8)
        view &= np.uint8(0xFF ^ bit)
        del view
        for _, idx in chosen:
            flags[idx] |= bit
        self.top = chosen[::-1]  # ascending: a valid min-heap
        self.rest = [(-value, -idx) for value, idx in others]  # descending keys negated: ascending
        self.total = math.fsum(value for value, _ in chosen) if total is None else total
        self.changed.clear()


def k_range(share: float, eligible: int) -> tuple[int, int]:
    """The eligible counts around `eligible` that share its top_count(share, .).

    top_count is close to share x e, so each bound is guessed from k / share, then checked
    (and walked) with top_count itself: a few calls.
    """
    k = top_count(share, eligible)
    high = _range_high(share, eligible, k)
    low = min(eligible, int((k - 1) / share) + 1) if k > 1 else 0
    while low > 0 and top_count(share, low - 1) == k:
        low -= 1
    while top_count(share, low) != k:
        low += 1
    return low, high


def _range_high(share: float, eligible: int, k: int) -> int:
    """The largest count from `eligible` on whose top_count is still k."""
    high = max(eligible, int(k / share))
    while high > eligible and top_count(share, high) != k:
        high -= 1
    while top_count(share, high + 1) == k:
        high += 1
    return high
