"""Members the spam core has forgotten, as stable 64-bit hashes of their ids: 8 bytes a member.

A forgotten member left nothing worth remembering but that it is no newcomer, and how
much it had written (a quiet member's duplicates stay strong, an active one's weak):
so there is one set per class (docs/spam.md, "Memory and speed").
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from hashlib import blake2b


def member_hash(member_id: str) -> int:
    """Stable across processes (not `hash()`: that differs per process, and snapshots restore in another one)."""
    return int.from_bytes(blake2b(member_id.encode(), digest_size=8).digest(), "little", signed=True)


class HashSet:
    """A sorted int64 array, plus a set of the latest additions folded into it once it outgrows an
    eighth of the array. Odds that a new member's id collides with one of n hashes: n / 2^64.
    """

    __slots__ = ("frozen", "recent")

    def __init__(self, frozen: array[int] | None = None) -> None:
        self.frozen: array[int] = array("q") if frozen is None else frozen
        self.recent: set[int] = set()

    def holds(self, h: int) -> bool:
        if h in self.recent:
            return True
        frozen = self.frozen
        i = bisect_left(frozen, h)
        return i < len(frozen) and frozen[i] == h

    def add(self, h: int) -> None:
        if not self.holds(h):
            self.recent.add(h)

    def fold(self) -> None:
        """Fold the latest additions into the array when there are enough of them to pay for the copy."""
        if len(self.recent) > len(self.frozen) >> 3:
            self.frozen = self.hashes()
            self.recent = set()

    def hashes(self) -> array[int]:
        """All of them, sorted."""
        if not self.recent:
            return self.frozen
        return array("q", sorted([*self.frozen, *self.recent]))

    def __len__(self) -> int:
        return len(self.frozen) + len(self.recent)


class Forgotten:
    """Forgotten members by class: `quiet[c]` had written `c` comments (fewer than the established
    count), `active` had written at least that many or came from an exempt source."""

    __slots__ = ("active", "quiet")

    def __init__(self, quiet_classes: int) -> None:
        self.active = HashSet()
        self.quiet = [HashSet() for _ in range(quiet_classes)]

    def __len__(self) -> int:
        return len(self.active) + sum(len(q) for q in self.quiet)

    def __bool__(self) -> bool:
        return bool(self.active) or any(self.quiet)

    def lookup(self, member_id: str) -> int | None:
        """None: never forgotten; -1: an active member; c >= 0: a quiet one that had written c comments."""
        if not self:
            return None
        h = member_hash(member_id)
        if self.active.holds(h):
            return -1
        for c in range(len(self.quiet) - 1, -1, -1):  # comments only grow: the highest class is the latest
            if self.quiet[c].holds(h):
                return c
        return None

    def add(self, member_id: str, comments: int) -> None:
        """Forget a member that had written `comments` comments (-1: active whatever the count)."""
        h = member_hash(member_id)
        if 0 <= comments < len(self.quiet):
            self.quiet[comments].add(h)
        else:
            self.active.add(h)

    def fold(self) -> None:
        self.active.fold()
        for q in self.quiet:
            q.fold()
