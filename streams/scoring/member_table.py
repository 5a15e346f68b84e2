"""Per-member state of one community, stored column by column.

One `array`/`bytearray` per field (about 75 bytes a member) and a `MemberIndex` for the
ids (their UTF-8 bytes and ~30 bytes of index), instead of an object per member. A
member is an integer index into every column; indexes are given in order of first
appearance in the log, so they are the same on every replay. Columns grow a batch of
new members at a time.
"""

from __future__ import annotations

import base64
import math
from array import array
from typing import Any

from streams.scoring.member_index import MemberIndex
from streams.scoring.packed_arrays import array_from_b64, array_to_b64

# name -> (typecode, value of a new member); all are snapshotted
_FLOAT_COLUMNS = {
    "creation": 0.0,  # stored (forward-decay) values
    "curation": 0.0,
    "received": 0.0,
    "first_seen": math.inf,  # lowered by the member's first scored event
    "last_active": -math.inf,  # -inf: never performed an event
    "last_comment": -math.inf,  # -inf: never commented
    "join_ts": math.inf,  # +inf: no join scored
}
_EVENTS_TYPECODE = "I"  # events counted: unsigned 32 bits
_BYTE_COLUMNS = ("tier", "role", "join_source", "excluded")


class MemberTable:
    """Columns: forward-decay stored creation/curation/received, times, counts and codes."""

    __slots__ = (
        "creation",
        "curation",
        "events",
        "excluded",
        "first_seen",
        "index",
        "join_source",
        "join_ts",
        "last_active",
        "last_comment",
        "ranks",
        "received",
        "role",
        "tier",
        "tier_key",
    )

    def __init__(self) -> None:
        self.index = MemberIndex()
        self.creation: array[float] = array("d")
        self.curation: array[float] = array("d")
        self.received: array[float] = array("d")
        self.first_seen: array[float] = array("d")
        self.last_active: array[float] = array("d")
        self.last_comment: array[float] = array("d")
        self.join_ts: array[float] = array("d")
        self.events: array[int] = array(_EVENTS_TYPECODE)
        self.tier = bytearray()  # base tier code (tiers.LURKER/CURATOR/CREATOR)
        self.role = bytearray()  # event_record.ROLE_CODES
        self.join_source = bytearray()  # event_record.JOIN_SOURCE_CODES
        self.excluded = bytearray()  # 1: left out of ranks and counts (spam)
        # Derived, not snapshotted: the key of a creator's (curator's) entry in the scorer's
        # demotion heap (it may lag the score, see CommunityScorer._demote), and one bit per
        # top set (top_set.TopSet) the member is in.
        self.tier_key: array[float] = array("d")
        self.ranks = bytearray()

    def __len__(self) -> int:
        return len(self.tier)

    def id_of(self, idx: int) -> str:
        return self.index.id_of(idx)

    def grow(self, n: int) -> None:
        """Room for `n` more members, each a lurker not seen yet (first_seen +inf)."""
        if n <= 0:
            return
        for name, value in _FLOAT_COLUMNS.items():
            getattr(self, name).extend(array("d", [value]) * n)
        self.events.extend(array(_EVENTS_TYPECODE, [0]) * n)
        zeros = bytes(n)
        for name in _BYTE_COLUMNS:
            getattr(self, name).extend(zeros)
        self.tier_key.extend(array("d", [0.0]) * n)
        self.ranks.extend(zeros)

    def scale_scores(self, multiplier: float) -> None:
        """Multiply every stored score by `multiplier` (a landmark rebase), in place."""
        for name in ("creation", "curation", "received"):
            column: array[float] = getattr(self, name)
            column[:] = array("d", [x * multiplier for x in column])

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": self.index.ids()}
        for name in _FLOAT_COLUMNS:
            out[name] = array_to_b64(getattr(self, name))
        out["events"] = array_to_b64(array("q", self.events))
        for name in _BYTE_COLUMNS:
            out[name] = base64.b64encode(bytes(getattr(self, name))).decode("ascii")
        return out

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> MemberTable:
        table = cls()
        ids = list(snapshot["ids"])
        table.index = MemberIndex.from_ids(ids)
        for name in _FLOAT_COLUMNS:
            setattr(table, name, array_from_b64("d", snapshot[name]))
        table.events = array(_EVENTS_TYPECODE, array_from_b64("q", snapshot["events"]))
        for name in _BYTE_COLUMNS:
            setattr(table, name, bytearray(base64.b64decode(snapshot[name])))
        n = len(ids)
        table.tier_key = array("d", bytes(8 * n))
        table.ranks = bytearray(n)
        for name in (*_FLOAT_COLUMNS, "events", *_BYTE_COLUMNS):
            if len(getattr(table, name)) != n:
                raise ValueError(
                    f"scoring snapshot is inconsistent: column {name} has {len(getattr(table, name))} "
                    f"entries for {n} members; discard it and replay the community from the log"
                )
        return table
