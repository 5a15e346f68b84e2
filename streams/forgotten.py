"""The members this worker must forget, and the screen every event passes before state and storage.

Pure: no Kafka, no ClickHouse. An erasure (schemas/erasures.py) of member M in community
C, at time T, means for every event of C or of a community under C:
- an event whose actor is M and that happened at or before T is dropped: it never
  reaches the scorer, the spam detector or the `events` table;
- an event of someone else whose `target_author_id` is M, at or before T, is kept
  without that field: the actor's like or comment still counts for them, but M
  receives nothing and no stored row names M.
Events of M after T belong to a new member who starts fresh. So state built from the
screened log equals state built from the log without M's events, live or on replay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from schemas.erasures import base_communities, member_key
from streams.event_record import EventRecord


class ForgottenMembers:
    """erased community -> member_key -> newest erased_at (Unix seconds)."""

    def __init__(self) -> None:
        self.by_community: dict[str, dict[str, float]] = {}

    def __bool__(self) -> bool:
        return bool(self.by_community)

    def __len__(self) -> int:
        return sum(len(keys) for keys in self.by_community.values())

    def add(self, community_id: str, key: str, erased_at: float) -> bool:
        """Remember an erasure; True when it is new or moves the cut later."""
        keys = self.by_community.setdefault(community_id, {})
        if keys.get(key, -math.inf) >= erased_at:
            return False
        keys[key] = erased_at
        return True

    def cut(self, community_id: str, member_id: str) -> float | None:
        """The latest erasure time covering `member_id` in `community_id`, or None."""
        found: float | None = None
        for base in base_communities(community_id):
            keys = self.by_community.get(base)
            if keys:
                at = keys.get(member_key(base, member_id))
                if at is not None and (found is None or at > found):
                    found = at
        return found

    def is_forgotten(self, community_id: str, member_id: str, at: float) -> bool:
        cut = self.cut(community_id, member_id)
        return cut is not None and at <= cut

    def screen(self, records: Sequence[EventRecord]) -> list[EventRecord | None] | None:
        """Each record as it may be used (None: dropped), or None when no record changes."""
        if not self.by_community:
            return None
        out: list[EventRecord | None] | None = None
        covered: dict[str, bool] = {}
        cuts: dict[tuple[str, str], float | None] = {}
        for i, rec in enumerate(records):
            community = rec.community_id
            has = covered.get(community)
            if has is None:
                has = covered[community] = any(b in self.by_community for b in base_communities(community))
            if not has:
                continue
            screened: EventRecord | None = rec
            cut = cuts.get((community, rec.member_id), math.nan)
            if cut is not None and math.isnan(cut):
                cut = cuts[(community, rec.member_id)] = self.cut(community, rec.member_id)
            if cut is not None and rec.ts <= cut:
                screened = None
            elif rec.target_author_id is not None:
                target_cut = self.cut(community, rec.target_author_id)
                if target_cut is not None and rec.ts <= target_cut:
                    screened = rec._replace(target_author_id=None)
            if screened is not rec:
                if out is None:
                    out = list(records)
                out[i] = screened
        return out
