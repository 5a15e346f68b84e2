"""Per-member state of one community, stored column by column.

One `array`/`bytearray` per field and one list of ids: about 70 bytes of columns a
member plus the id string and its dict slot, instead of an object per member. A
member is an integer index into every column; indexes are given in order of first
appearance in the log, so they are the same on every replay.
"""

from __future__ import annotations

import base64
import math
from array import array
from typing import Any

from streams.scoring.packed_arrays import array_from_b64, array_to_b64

_FLOAT_COLUMNS = (
    "creation",
    "curation",
    "received",
    "first_seen",
    "last_active",
    "last_comment",
    "join_ts",
)
_BYTE_COLUMNS = ("tier", "role", "join_source", "excluded")


class MemberTable:
    """Columns: forward-decay stored creation/curation/received, times, counts and codes."""

    __slots__ = (
        "creation",
        "curation",
        "events",
        "excluded",
        "first_seen",
        "ids",
        "index",
        "join_source",
        "join_ts",
        "last_active",
        "last_comment",
        "received",
        "role",
        "tier",
        "tier_key",
    )

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.creation: array[float] = array("d")  # stored (forward-decay) values
        self.curation: array[float] = array("d")
        self.received: array[float] = array("d")
        self.first_seen: array[float] = array("d")
        self.last_active: array[float] = array("d")  # -inf: never performed an event
        self.last_comment: array[float] = array("d")  # -inf: never commented
        self.join_ts: array[float] = array("d")  # +inf: no join scored
        self.events: array[int] = array("q")
        self.tier = bytearray()  # base tier code (tiers.LURKER/CURATOR/CREATOR)
        self.role = bytearray()  # event_record.ROLE_CODES
        self.join_source = bytearray()  # event_record.JOIN_SOURCE_CODES
        self.excluded = bytearray()  # 1: left out of ranks and counts (spam)
        # Derived, not snapshotted: the key of a creator's (curator's) entry in the scorer's
        # demotion index. It may lag the score below it (see CommunityScorer._demote).
        self.tier_key: array[float] = array("d")

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, member_id: str, ts: float, role: int) -> int:
        """A new lurker first seen at `ts`; returns its index."""
        idx = len(self.ids)
        self.ids.append(member_id)
        self.index[member_id] = idx
        self.creation.append(0.0)
        self.curation.append(0.0)
        self.received.append(0.0)
        self.first_seen.append(ts)
        self.last_active.append(-math.inf)
        self.last_comment.append(-math.inf)
        self.join_ts.append(math.inf)
        self.events.append(0)
        self.tier.append(0)
        self.role.append(role)
        self.join_source.append(0)
        self.excluded.append(0)
        self.tier_key.append(0.0)
        return idx

    def scale_scores(self, multiplier: float) -> None:
        """Multiply every stored score by `multiplier` (a landmark rebase), in place."""
        for name in ("creation", "curation", "received"):
            column: array[float] = getattr(self, name)
            column[:] = array("d", [x * multiplier for x in column])

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": list(self.ids)}
        for name in (*_FLOAT_COLUMNS, "events"):
            out[name] = array_to_b64(getattr(self, name))
        for name in _BYTE_COLUMNS:
            out[name] = base64.b64encode(bytes(getattr(self, name))).decode("ascii")
        return out

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> MemberTable:
        table = cls()
        table.ids = list(snapshot["ids"])
        table.index = {member_id: idx for idx, member_id in enumerate(table.ids)}
        for name in _FLOAT_COLUMNS:
            setattr(table, name, array_from_b64("d", snapshot[name]))
        table.events = array_from_b64("q", snapshot["events"])
        for name in _BYTE_COLUMNS:
            setattr(table, name, bytearray(base64.b64decode(snapshot[name])))
        n = len(table.ids)
        table.tier_key = array("d", bytes(8 * n))
        for name in (*_FLOAT_COLUMNS, "events", *_BYTE_COLUMNS):
            if len(getattr(table, name)) != n:
                raise ValueError(
                    f"scoring snapshot is inconsistent: column {name} has {len(getattr(table, name))} "
                    f"entries for {n} members; discard it and replay the community from the log"
                )
        return table
