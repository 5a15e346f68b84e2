"""Member id -> row index for one community, in about 30 bytes a member plus the id's own bytes.

A dict of str would cost ~140 bytes a member (the str object, its int value, the dict
slot); here the ids are UTF-8 bytes in one blob with end offsets, and an open-addressing
table of int32 row indexes (linear probing, at most half full) is searched by Python's
`hash()` (fast, cached on the str; randomised per process, which is fine since the table
is rebuilt on restore and never stored). Every hit is checked against the stored bytes,
so a hash collision can never merge two members: the rare id whose hash is already taken
lives in a small dict instead. A bounded dict of recently resolved ids (at most one id in
16 of the community) answers most lookups of a batch without probing. Indexes are handed
out in the order ids are first resolved, so they are the same on every replay.

Built by `make native`, the probe of a batch's ids runs in C (member_probe.c: the same
probe, ~1 us -> ~0.06-0.11 us an id), and so does numbering the ids it did not know (`append`:
the same slots, collisions and order as the Python loop in `resolve`); without it, as Python,
the same indexes come out.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from streams.native import c_helper

Probe = Callable[[list[str], "array[int]", "array[int]", "array[int]", bytearray, dict[str, int]], list[int]]
Append = Callable[
    [list[str], list[int], "array[int]", "array[int]", "array[int]", bytearray, dict[str, int]],
    tuple[bytes, bytes, bytes],
]


_probe_module = c_helper("streams.scoring._member_probe")  # when built and current (streams/native.py)
_c_probe: Probe | None = _probe_module.probe if _probe_module is not None else None
_c_append: Append | None = _probe_module.append if _probe_module is not None else None

_EMPTY = -1
_NOT_STR = -2  # _c_probe: not an exact str, not looked up
_MAX_LOAD = 0.5
_MIN_SLOTS = 1024
_RECENT_MIN = 64  # the recent-id cache holds max(this, members / 16) ids


class MemberIndex:
    __slots__ = ("_blob", "_collisions", "_ends", "_hashes", "_older", "_recent", "_slots")

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array("I")  # end offset of each id in `_blob` (4 GiB of ids at most)
        self._hashes = array("I")  # low 32 bits of hash(id) per member: probe and rebuild without the ids
        self._slots = array("i", [_EMPTY]) * _MIN_SLOTS
        self._collisions: dict[str, int] = {}  # ids whose hash an earlier member already holds
        # Recently resolved ids, in two generations: `_recent` fills up to half the cap, then
        # becomes `_older`; an id found in `_older` moves back. At most max(64, members/16) ids.
        self._recent: dict[str, int] = {}
        self._older: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ends)

    def id_of(self, idx: int) -> str:
        ends = self._ends
        return self._blob[ends[idx - 1] if idx else 0 : ends[idx]].decode()

    def ids(self) -> list[str]:
        blob = bytes(self._blob)
        out: list[str] = []
        start = 0
        for end in self._ends:
            out.append(blob[start:end].decode())
            start = end
        return out

    def get(self, member_id: str) -> int | None:
        """The index of one id, or None."""
        idx = self._recent.get(member_id)
        if idx is None:
            idx = self._older.get(member_id)
        if idx is not None:
            return idx
        # _probe inlined: this is the per-event lookup of the spam core
        slots, hashes = self._slots, self._hashes
        mask = len(slots) - 1
        h = hash(member_id)
        h32 = h & 0xFFFF_FFFF
        pos = h & mask
        while True:
            idx = slots[pos]
            if idx < 0:
                return None
            if hashes[idx] == h32:
                ends = self._ends
                start = ends[idx - 1] if idx else 0
                encoded = member_id.encode()
                if ends[idx] - start == len(encoded) and self._blob.startswith(encoded, start):
                    return idx
                return self._collisions.get(member_id)
            pos = (pos + 1) & mask

    def get_or_add(self, member_id: str) -> int:
        """The index of one id, appended (index `len(self)`) when it is new; remembered as recent."""
        recent = self._recent
        idx = recent.get(member_id)
        if idx is not None:
            return idx
        idx = self._older.get(member_id)
        if idx is None:
            h = hash(member_id)
            idx, free = self._probe(member_id, h)
            if idx is None:
                idx = self._append(member_id, h, free)
        if len(recent) >= max(_RECENT_MIN, len(self._ends) >> 4) >> 1:
            self._older = recent
            self._recent = recent = {}
        recent[member_id] = idx
        return idx

    def find(self, names: list[str]) -> list[int]:
        """Indexes of `names`, -1 for ids not known (nothing is added)."""
        if _c_probe is not None:
            found = _c_probe(names, self._slots, self._hashes, self._ends, self._blob, self._collisions)
            if _NOT_STR not in found:
                return found
        out = []
        for name in names:
            idx = self.get(name)
            out.append(-1 if idx is None else idx)
        return out

    def _probe(self, name: str, h: int) -> tuple[int | None, int]:
        """(index of `name` or None, the free slot where its hash would go, or -1 if the hash is taken)."""
        slots, hashes = self._slots, self._hashes
        mask = len(slots) - 1
        pos = h & mask
        while True:
            idx = slots[pos]
            if idx < 0:
                return None, pos
            if hashes[idx] == h & 0xFFFF_FFFF:
                ends = self._ends
                start = ends[idx - 1] if idx else 0
                encoded = name.encode()
                if ends[idx] - start == len(encoded) and self._blob.startswith(encoded, start):
                    return idx, -1
                return self._collisions.get(name), -1
            pos = (pos + 1) & mask

    def resolve(self, names: list[str]) -> tuple[list[int], int]:
        """Indexes of distinct `names`, new ones appended in list order; returns (indexes, first new)."""
        first_new = n = len(self._ends)
        recent, older = self._recent, self._older
        half = max(_RECENT_MIN, first_new >> 4) >> 1
        if _c_probe is not None:  # every known id at once; the rest (new ones) below
            found = _c_probe(names, self._slots, self._hashes, self._ends, self._blob, self._collisions)
            if _c_append is not None and _NOT_STR not in found:
                return self._append_c(names, found, first_new, recent, half)
        else:
            get = recent.get
            found = [get(name, -1) for name in names]
        # `_probe` and `_append` inlined: a batch of a growing community brings thousands of new ids
        slots, hashes, ends, blob, collisions = self._slots, self._hashes, self._ends, self._blob, self._collisions
        mask = len(slots) - 1
        limit = _MAX_LOAD * len(slots)
        size = len(blob)
        for pos, idx in enumerate(found):
            if idx >= 0:
                continue
            name = names[pos]
            known = older.get(name)
            if known is None:
                h = hash(name)
                h32 = h & 0xFFFF_FFFF
                at = h & mask
                free = True
                while True:
                    i = slots[at]
                    if i < 0:
                        break
                    if hashes[i] == h32:
                        start = ends[i - 1] if i else 0
                        encoded = name.encode()
                        if ends[i] - start == len(encoded) and blob.startswith(encoded, start):
                            known = i
                        else:
                            known = collisions.get(name)
                        free = False
                        break
                    at = (at + 1) & mask
                if known is None:  # new: the next index
                    known = n
                    n += 1
                    encoded = name.encode()
                    size += len(encoded)
                    if size > 0xFFFF_FFFF:
                        raise OverflowError("over 4 GiB of member ids in one community: beyond the member index")
                    blob += encoded
                    ends.append(size)
                    hashes.append(h32)
                    if not free:
                        collisions[name] = known
                    else:
                        slots[at] = known
                        if n - len(collisions) > limit:
                            self._grow()
                            slots = self._slots
                            mask = len(slots) - 1
                            limit = _MAX_LOAD * len(slots)
            found[pos] = known
            if len(recent) >= half:
                self._older = older = recent
                self._recent = recent = {}
            recent[name] = known
        return found, first_new

    def _append_c(
        self, names: list[str], found: list[int], first_new: int, recent: dict[str, int], half: int
    ) -> tuple[list[int], int]:
        """`resolve` with the new ids numbered in C (`_c_append`: the same order, slots and
        collisions as the loop in `resolve`), once the table is grown to hold all of them."""
        assert _c_append is not None
        new = found.count(-1)
        if new:
            while first_new + new - len(self._collisions) > _MAX_LOAD * len(self._slots):
                self._grow()
            blob, ends, hashes = _c_append(
                names, found, self._slots, self._hashes, self._ends, self._blob, self._collisions
            )
            self._blob += blob
            self._ends.frombytes(ends)
            self._hashes.frombytes(hashes)
            for name, idx in zip(names, found, strict=True):
                if idx >= first_new:  # new ids are remembered, as in `resolve`
                    if len(recent) >= half:
                        self._older = recent
                        self._recent = recent = {}
                    recent[name] = idx
        return found, first_new

    def _append(self, name: str, h: int, free: int) -> int:
        """Add `name` (not known; `free` from `_probe`) as the next index."""
        ends = self._ends
        known = len(ends)
        blob = self._blob
        blob += name.encode()
        if len(blob) > 0xFFFF_FFFF:
            raise OverflowError("over 4 GiB of member ids in one community: beyond the member index")
        ends.append(len(blob))
        self._hashes.append(h & 0xFFFF_FFFF)
        if free < 0:
            self._collisions[name] = known
        else:
            self._slots[free] = known
            if known + 1 - len(self._collisions) > _MAX_LOAD * len(self._slots):
                self._grow()
        return known

    def _grow(self) -> None:
        self._place(2 * len(self._slots))

    def _place(self, size: int) -> None:
        """`size` slots; every member without a collision is placed again (vectorised).

        Linear probing, members taken in order of their home slot: each lands on its home or
        just after the one placed before it, whichever is later, so every slot between a
        member's home and its own is taken. The few pushed past the end wrap to the first
        free slots from the start.
        """
        hashes = np.frombuffer(self._hashes, np.uint32).astype(np.int64)
        pending = np.arange(len(hashes), dtype=np.int64)
        if self._collisions:
            keep = np.ones(len(pending), bool)
            keep[list(self._collisions.values())] = False
            pending = pending[keep]
        home = hashes[pending] & (size - 1)
        del hashes
        order = np.argsort(home)
        home, pending = home[order], pending[order]
        rank = np.arange(len(home), dtype=np.int64)
        at = rank + np.maximum.accumulate(home - rank) if len(home) else rank
        slots = np.full(size, _EMPTY, np.int32)
        inside = at < size
        slots[at[inside]] = pending[inside]
        free = 0
        for idx in pending[~inside].tolist():
            while slots[free] != _EMPTY:
                free += 1
            slots[free] = idx
        self._slots = array("i", slots.tobytes())

    def keep(self, rows: npt.NDArray[np.intp]) -> MemberIndex:
        """A new index of the members at `rows` (ascending), numbered from 0 in that order."""
        out = MemberIndex()
        if not len(rows):
            return out
        ends = np.frombuffer(self._ends, np.uint32).astype(np.int64)
        kept = np.zeros(len(ends), bool)
        kept[rows] = True
        lengths = np.diff(ends, prepend=0)
        out._blob = bytearray(np.frombuffer(self._blob, np.uint8)[np.repeat(kept, lengths)].tobytes())
        out._ends = array("I", np.cumsum(lengths[kept]).astype(np.uint32).tobytes())
        hashes = np.frombuffer(self._hashes, np.uint32)[kept]
        out._hashes = array("I", hashes.tobytes())
        if self._collisions:  # of members sharing a hash, the first holds the slot, the others are collisions
            _, first = np.unique(hashes, return_index=True)
            taken = np.ones(len(hashes), bool)
            taken[first] = False
            for idx in np.flatnonzero(taken).tolist():
                out._collisions[out.id_of(idx)] = idx
        size = _MIN_SLOTS
        while len(hashes) - len(out._collisions) > _MAX_LOAD * size:
            size *= 2
        out._place(size)
        return out

    @classmethod
    def from_ids(cls, ids: list[str]) -> MemberIndex:
        index = cls()
        found, _ = index.resolve(ids)
        index._recent.clear()
        index._older.clear()
        if found != list(range(len(ids))):
            raise ValueError(
                "snapshot lists a member id twice; discard it and replay the community from the log"
            )
        return index
