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
"""

from __future__ import annotations

from array import array

import numpy as np

_EMPTY = -1
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
        idx, _ = self._probe(member_id, hash(member_id))
        return idx

    def find(self, names: list[str]) -> list[int]:
        """Indexes of `names`, -1 for ids not known (nothing is added)."""
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
        first_new = len(self._ends)
        recent, older = self._recent, self._older
        half = max(_RECENT_MIN, first_new >> 4) >> 1
        get = recent.get
        found = [get(name, -1) for name in names]
        blob, ends, hashes = self._blob, self._ends, self._hashes
        for pos, idx in enumerate(found):
            if idx >= 0:
                continue
            name = names[pos]
            known = older.get(name)
            if known is None:
                h = hash(name)
                known, free = self._probe(name, h)
                if known is None:
                    known = len(ends)
                    blob += name.encode()
                    if len(blob) > 0xFFFF_FFFF:
                        raise OverflowError("over 4 GiB of member ids in one community: beyond the member index")
                    ends.append(len(blob))
                    hashes.append(h & 0xFFFF_FFFF)
                    if free < 0:
                        self._collisions[name] = known
                    else:
                        self._slots[free] = known
                        if len(ends) - len(self._collisions) > _MAX_LOAD * len(self._slots):
                            self._grow()
            found[pos] = known
            if len(recent) >= half:
                self._older = older = recent
                self._recent = recent = {}
            recent[name] = known
        return found, first_new

    def _grow(self) -> None:
        """Twice the slots; every member without a collision is placed again (vectorised)."""
        size = 2 * len(self._slots)
        slots = np.full(size, _EMPTY, np.int32)
        mask = size - 1
        hashes = np.frombuffer(self._hashes, np.uint32).astype(np.int64)
        pending = np.arange(len(hashes), dtype=np.int64)
        if self._collisions:
            keep = np.ones(len(pending), bool)
            keep[list(self._collisions.values())] = False
            pending = pending[keep]
        pos = hashes[pending] & mask
        del hashes
        while pending.size:
            free = slots[pos] == _EMPTY
            # of several claimants of one free slot, the first wins; everyone else probes on
            _, first = np.unique(pos[free], return_index=True)
            winners = np.flatnonzero(free)[first]
            slots[pos[winners]] = pending[winners]
            lost = np.ones(len(pending), bool)
            lost[winners] = False
            pending = pending[lost]
            pos = (pos[lost] + 1) & mask
        self._slots = array("i", slots.tobytes())

    @classmethod
    def from_ids(cls, ids: list[str]) -> MemberIndex:
        index = cls()
        found, _ = index.resolve(ids)
        index._recent.clear()
        index._older.clear()
        if found != list(range(len(ids))):
            raise ValueError(
                "scoring snapshot lists a member id twice; discard it and replay the community from the log"
            )
        return index
