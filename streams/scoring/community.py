"""The scorer of one community: events in log order in, tier changes and rows out.

Pure and deterministic: no Kafka, no ClickHouse, no wall clock; the same events give
the same state and the same creator/curator changes whatever the batch boundaries
(docs/scoring.md has the rules).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from streams.event_record import COMMENT, JOIN, JOIN_SOURCE_NAMES, MEMBER, ROLE_NAMES, EventRecord
from streams.scoring.config import ScoringConfig
from streams.scoring.event_dedup import EventIdMemory
from streams.scoring.forward_decay import ForwardDecay
from streams.scoring.member_table import MemberTable
from streams.scoring.records import BatchOutcome, CommunityRow, MemberRow, TierChangeRecord
from streams.scoring.tiers import (
    AMBASSADOR,
    CREATOR,
    CURATOR,
    LURKER,
    TIER_NAMES,
    at_least,
    base_tier,
    top_by_creation,
    top_count,
)

SNAPSHOT_FORMAT = 1
_NO_CLOCK = -math.inf


class CommunityScorer:
    """Scores, tiers and counts of one community, advanced by `apply`.

    Sorted indexes keep each step proportional to what changed:
    - `_creators` (key, idx) and `_curators` (key, idx) hold every creator (curator)
      with a key <= its stored creation (curation); their low end yields, by range,
      whoever fell under the low-water mark when the clock moves. A key is only
      refreshed when it reaches that low end, so scoring a creator's comment costs no
      index update (`_demote`).
    - `_ranked` (-stored creation, idx) over eligible members with creation > 0 gives
      the top k; members whose creation changed in a batch are re-keyed once, at its end
      (`_stale_ranked` remembers the key they still have there).
    """

    __slots__ = (
        "_ambassadors",
        "_ambassadors_dirty",
        "_clock",
        "_creators",
        "_curators",
        "_decay",
        "_dedup",
        "_eligible",
        "_excluded_count",
        "_m",
        "_pending_excluded",
        "_ranked",
        "_stale_ranked",
        "_tier_counts",
        "community_id",
        "config",
    )

    def __init__(self, community_id: str, config: ScoringConfig) -> None:
        self.community_id = community_id
        self.config = config
        self._decay = ForwardDecay(config.decay_rate, 0.0, config.rebase_exponent)
        self._clock = _NO_CLOCK
        self._m = MemberTable()
        self._dedup = EventIdMemory()
        self._ranked = SortedList()
        self._stale_ranked: dict[int, float] = {}  # idx -> stored creation its `_ranked` key was made of
        self._creators = SortedList()
        self._curators = SortedList()
        self._ambassadors: set[int] = set()
        self._ambassadors_dirty = False
        self._eligible = 0
        self._tier_counts = [0, 0, 0]  # eligible members per base tier
        self._excluded_count = 0
        self._pending_excluded: set[str] = set()  # excluded before the scorer saw them

    # ------------------------------------------------------------------ reading

    @property
    def clock(self) -> float:
        """The newest event time scored (-inf before the first)."""
        return self._clock

    @property
    def members_count(self) -> int:
        """Every known member, staff and excluded included."""
        return len(self._m)

    def member_ids(self) -> list[str]:
        """Every known member id, in order of first appearance."""
        return list(self._m.ids)

    def member_row(self, member_id: str) -> MemberRow:
        idx = self._m.index.get(member_id)
        if idx is None:
            raise KeyError(f"member {member_id!r} has no scored event in community {self.community_id!r}")
        m = self._m
        f = self._factor()
        last_active = m.last_active[idx]
        return MemberRow(
            self.community_id,
            member_id,
            TIER_NAMES[AMBASSADOR if idx in self._ambassadors else m.tier[idx]],
            m.creation[idx] * f,
            m.curation[idx] * f,
            m.received[idx] * f,
            self._clock,
            m.first_seen[idx],
            last_active if last_active != -math.inf else m.first_seen[idx],
            m.events[idx],
            JOIN_SOURCE_NAMES[m.join_source[idx]],
            ROLE_NAMES[m.role[idx]],
            bool(m.excluded[idx]),
        )

    def community_row(self) -> CommunityRow:
        """Counts over eligible members; costs O(creators + commenting members), so once a batch."""
        self._flush_ranked()
        cfg = self.config
        ranked = self._ranked
        total = math.fsum(-key for key, _ in ranked)
        shares = []
        for share in (cfg.top_small_share, cfg.top_large_share):
            top = math.fsum(-key for key, _ in ranked.islice(0, top_count(share, self._eligible)))
            shares.append(top / total if total > 0 else 0.0)
        m = self._m
        since = self._clock - cfg.active_window_seconds
        active = sum(
            1
            for _, idx in self._creators
            if m.last_comment[idx] >= since and not m.role[idx] and not m.excluded[idx]
        )
        lurkers, curators, creators = self._tier_counts
        ambassadors = len(self._ambassadors)
        return CommunityRow(
            self.community_id,
            self._clock,
            self._eligible,
            lurkers,
            curators,
            creators - ambassadors,
            ambassadors,
            active,
            shares[0],
            shares[1],
            self._excluded_count + len(self._pending_excluded),
        )

    # ------------------------------------------------------------------ scoring

    def apply(self, events: Sequence[EventRecord]) -> BatchOutcome:
        """Score `events` (this community's, in log order) and return what changed.

        Creator/curator changes are evaluated at every event; the ambassador set only at
        the end of the batch, so an ambassador flip undone within one batch is never emitted.
        """
        community_id = self.community_id
        for event in events:
            if event.community_id != community_id:
                raise ValueError(
                    f"event {event.event_id} belongs to community {event.community_id!r}, not "
                    f"{community_id!r}; route events to the scorer of their own community"
                )
        out = BatchOutcome()
        changes = out.tier_changes
        touched = out.touched
        cfg = self.config
        decay = self._decay
        rate = decay.rate
        landmark = decay.landmark
        rebase_exponent = decay.rebase_exponent
        clock = self._clock
        f = self._factor()
        lateness = cfg.lateness_seconds
        dedup_window = cfg.dedup_window_seconds
        weights = (0.0, cfg.like_weight, cfg.share_weight, cfg.comment_weight)
        creator_threshold = at_least(cfg.creator_threshold)
        curator_threshold = at_least(cfg.curator_threshold)
        creator_floor = at_least(cfg.creator_threshold * cfg.low_water)
        curator_floor = at_least(cfg.curator_threshold * cfg.low_water)
        dedup = self._dedup
        dedup_add = dedup.add
        m = self._m
        index_get = m.index.get
        creation, curation, received = m.creation, m.curation, m.received
        first_seen, last_active, last_comment = m.first_seen, m.last_active, m.last_comment
        counts, tiers, roles, excluded = m.events, m.tier, m.role, m.excluded
        creators, curators = self._creators, self._curators
        stale_ranked = self._stale_ranked
        exp = math.exp
        inf = math.inf
        # The lowest key of each demotion index, refreshed whenever that index changes.
        low_c = creators[0][0] if creators else inf
        low_u = curators[0][0] if curators else inf
        scored = late = duplicates = 0

        accepted_append = out.accepted.append
        for event in events:
            event_id, kind, _, member_id, ts, role, _, target_author, join_source, _, _ = event
            if ts < clock - lateness:
                late += 1
                continue
            if not dedup_add(event_id, ts):
                duplicates += 1
                continue
            accepted_append(event)
            scored += 1
            advanced = ts > clock
            if advanced:
                if clock == _NO_CLOCK:
                    decay.landmark = landmark = ts
                elif rate * (ts - landmark) > rebase_exponent:
                    self._rebase(ts)
                    landmark = decay.landmark
                    low_c = creators[0][0] if creators else inf
                    low_u = curators[0][0] if curators else inf
                clock = ts
                f = exp(-rate * (clock - landmark))
                if clock >= dedup.next_housekeeping:
                    dedup.housekeep(clock, dedup_window)

            idx = index_get(member_id)
            if idx is None:
                idx = self._add_member(member_id, ts, role)
            elif ts < first_seen[idx]:
                first_seen[idx] = ts
            counts[idx] += 1
            if ts >= last_active[idx]:
                last_active[idx] = ts
                if role != roles[idx]:
                    self._set_role(idx, role)
            touched.add(member_id)

            if kind == JOIN:
                if ts < m.join_ts[idx]:
                    m.join_ts[idx] = ts
                    m.join_source[idx] = join_source
            else:
                w = weights[kind] * exp(rate * (ts - landmark))
                if kind == COMMENT:
                    old = creation[idx]
                    new = creation[idx] = old + w
                    if idx not in stale_ranked and not roles[idx] and not excluded[idx]:
                        stale_ranked[idx] = old
                    if ts > last_comment[idx]:
                        last_comment[idx] = ts
                    if tiers[idx] != CREATOR and new * f >= creator_threshold:
                        self._change_tier(idx, CREATOR, clock, f, changes)
                        low_c = creators[0][0]
                        low_u = curators[0][0] if curators else inf
                else:
                    new = curation[idx] = curation[idx] + w
                    if tiers[idx] == LURKER and new * f >= curator_threshold:
                        self._change_tier(idx, CURATOR, clock, f, changes)
                        low_u = curators[0][0]
                if target_author is not None and target_author != member_id:
                    target = index_get(target_author)
                    if target is None:
                        target = self._add_member(target_author, ts, MEMBER)
                    elif ts < first_seen[target]:
                        first_seen[target] = ts
                    received[target] += w
                    touched.add(target_author)

            if advanced and (low_c * f < creator_floor or low_u * f < curator_floor):
                # Creators first: one who falls to curator joins `curators` above its floor.
                self._demote(creators, creation, creator_floor, clock, f, changes, touched)
                self._demote(curators, curation, curator_floor, clock, f, changes, touched)
                low_c = creators[0][0] if creators else inf
                low_u = curators[0][0] if curators else inf

        self._clock = clock
        out.scored, out.late, out.duplicates = scored, late, duplicates
        if scored or self._ambassadors_dirty:  # received breaks ties, so any event may reorder
            self._refresh_ambassadors(changes, touched)
        return out

    def set_excluded(self, member_id: str, excluded: bool) -> list[TierChangeRecord]:
        """Leave a member out of ranks and counts (spam), or put them back; returns ambassador flips.

        Scores keep accumulating either way. A member the scorer has not seen yet is
        remembered and starts excluded when their first event arrives.
        """
        idx = self._m.index.get(member_id)
        if idx is None:
            if excluded:
                self._pending_excluded.add(member_id)
            else:
                self._pending_excluded.discard(member_id)
            return []
        if bool(self._m.excluded[idx]) == excluded:
            return []
        was = self._is_eligible(idx)
        self._m.excluded[idx] = 1 if excluded else 0
        self._excluded_count += 1 if excluded else -1
        self._eligibility_changed(idx, was)
        changes: list[TierChangeRecord] = []
        self._refresh_ambassadors(changes, set())
        return changes

    # ------------------------------------------------------------------ state

    def snapshot(self) -> dict[str, Any]:
        """The full state as JSON-ready values (floats bit-exact, arrays as base64)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "community_id": self.community_id,
            "decay_rate": self._decay.rate,
            "landmark": self._decay.landmark,
            "clock": None if self._clock == _NO_CLOCK else self._clock,
            "members": self._m.snapshot(),
            "ambassadors": sorted(self._m.ids[idx] for idx in self._ambassadors),
            "pending_excluded": sorted(self._pending_excluded),
            "dedup": self._dedup.snapshot(),
        }

    @classmethod
    def restore(cls, community_id: str, config: ScoringConfig, snapshot: dict[str, Any]) -> CommunityScorer:
        if snapshot.get("format") != SNAPSHOT_FORMAT or snapshot.get("community_id") != community_id:
            raise ValueError(
                f"scoring snapshot (format {snapshot.get('format')}, community "
                f"{snapshot.get('community_id')!r}) is not a format-{SNAPSHOT_FORMAT} snapshot of "
                f"{community_id!r}; discard it and replay the community from the log"
            )
        if snapshot["decay_rate"] != config.decay_rate:
            raise ValueError(
                f"scoring snapshot of {community_id!r} was taken with another half-life "
                f"(decay rate {snapshot['decay_rate']} != {config.decay_rate}); stored scores only make "
                "sense with their own rate: replay the log to change the half-life"
            )
        scorer = cls(community_id, config)
        scorer._decay.landmark = float(snapshot["landmark"])
        clock = snapshot["clock"]
        scorer._clock = _NO_CLOCK if clock is None else float(clock)
        m = scorer._m = MemberTable.restore(snapshot["members"])
        scorer._dedup = EventIdMemory.restore(snapshot["dedup"])
        scorer._pending_excluded = set(snapshot["pending_excluded"])
        scorer._excluded_count = sum(m.excluded)
        scorer._rebuild_indexes()
        scorer._ambassadors = {m.index[member_id] for member_id in snapshot["ambassadors"]}
        return scorer

    # ------------------------------------------------------------------ internals

    def _factor(self) -> float:
        if self._clock == _NO_CLOCK:
            return 1.0
        return self._decay.factor(self._clock)

    def _is_eligible(self, idx: int) -> bool:
        return not self._m.role[idx] and not self._m.excluded[idx]

    def _add_member(self, member_id: str, ts: float, role: int) -> int:
        m = self._m
        idx = m.add(member_id, ts, role)
        if member_id in self._pending_excluded:
            self._pending_excluded.discard(member_id)
            m.excluded[idx] = 1
            self._excluded_count += 1
        if self._is_eligible(idx):
            self._eligible += 1
            self._tier_counts[LURKER] += 1
            self._ambassadors_dirty = True  # k may have grown
        return idx

    def _set_role(self, idx: int, role: int) -> None:
        was = self._is_eligible(idx)
        self._m.role[idx] = role
        self._eligibility_changed(idx, was)

    def _eligibility_changed(self, idx: int, was: bool) -> None:
        now = self._is_eligible(idx)
        if now == was:
            return
        self._flush_ranked()  # `_ranked` keys must be exact to add or remove one
        m = self._m
        step = 1 if now else -1
        self._eligible += step
        self._tier_counts[m.tier[idx]] += step
        stored = m.creation[idx]
        if stored > 0.0:
            if now:
                self._ranked.add((-stored, idx))
            else:
                self._ranked.remove((-stored, idx))
        self._ambassadors_dirty = True

    def _flush_ranked(self) -> None:
        """Re-key in `_ranked` every member whose creation changed since the last flush."""
        stale = self._stale_ranked
        if not stale:
            return
        ranked = self._ranked
        m = self._m
        for idx, old in stale.items():
            if old > 0.0:
                ranked.remove((-old, idx))
            new = m.creation[idx]
            if new > 0.0:
                ranked.add((-new, idx))
        stale.clear()

    def _change_tier(
        self,
        idx: int,
        new: int,
        clock: float,
        f: float,
        changes: list[TierChangeRecord],
        indexed: bool = True,
    ) -> None:
        """Move a member to base tier `new` and record it (`indexed`: still in its old tier's index)."""
        m = self._m
        old = m.tier[idx]
        if indexed and old == CREATOR:
            self._creators.remove((m.tier_key[idx], idx))
        elif indexed and old == CURATOR:
            self._curators.remove((m.tier_key[idx], idx))
        if new == CREATOR:
            key = m.tier_key[idx] = m.creation[idx]
            self._creators.add((key, idx))
        elif new == CURATOR:
            key = m.tier_key[idx] = m.curation[idx]
            self._curators.add((key, idx))
        m.tier[idx] = new
        if self._is_eligible(idx):
            self._tier_counts[old] -= 1
            self._tier_counts[new] += 1
        shown = old
        if idx in self._ambassadors:  # only creators are ambassadors: losing creator loses both
            shown = AMBASSADOR
            self._ambassadors.discard(idx)
            self._ambassadors_dirty = True
        changes.append(self._record(idx, shown, new, clock, f))

    def _demote(
        self,
        index: Any,
        scores: Any,
        floor: float,
        clock: float,
        f: float,
        changes: list[TierChangeRecord],
        touched: set[str],
    ) -> None:
        """Re-tier every member of `index` whose decayed score is under `floor`, lowest first.

        Keys may lag the score (it only grows between refreshes), so an entry under the
        floor is checked against its score: still above, it is re-keyed and kept.
        """
        tier_key = self._m.tier_key
        fallen: list[tuple[float, int]] = []
        kept: list[tuple[float, int]] = []
        while index:
            key, idx = index[0]
            if key * f >= floor:
                break
            index.pop(0)
            stored = scores[idx]
            (kept if stored * f >= floor else fallen).append((stored, idx))
        for stored, idx in kept:
            tier_key[idx] = stored
            index.add((stored, idx))
        fallen.sort()  # the same order whatever the keys lagged by
        m = self._m
        cfg = self.config
        for _, idx in fallen:
            new = base_tier(m.tier[idx], m.creation[idx] * f, m.curation[idx] * f, cfg)
            self._change_tier(idx, new, clock, f, changes, indexed=False)
            touched.add(m.ids[idx])

    def _refresh_ambassadors(self, changes: list[TierChangeRecord], touched: set[str]) -> None:
        """Ambassadors := creators in the top k of eligible members by creation."""
        self._flush_ranked()
        self._ambassadors_dirty = False
        m = self._m
        k = top_count(self.config.ambassador_share, self._eligible)
        top = top_by_creation(self._ranked, k, m.received, m.ids)
        tiers = m.tier
        new = {idx for idx in top if tiers[idx] == CREATOR}
        old = self._ambassadors
        if new == old:
            return
        f = self._factor()
        clock = self._clock
        ids = m.ids
        for idx in sorted(old - new, key=ids.__getitem__):
            changes.append(self._record(idx, AMBASSADOR, tiers[idx], clock, f))
            touched.add(ids[idx])
        for idx in sorted(new - old, key=ids.__getitem__):
            changes.append(self._record(idx, tiers[idx], AMBASSADOR, clock, f))
            touched.add(ids[idx])
        self._ambassadors = new

    def _record(self, idx: int, old: int, new: int, clock: float, f: float) -> TierChangeRecord:
        m = self._m
        return TierChangeRecord(
            self.community_id,
            m.ids[idx],
            TIER_NAMES[old],
            TIER_NAMES[new],
            clock,
            m.creation[idx] * f,
            m.curation[idx] * f,
            m.received[idx] * f,
        )

    def _rebase(self, new_landmark: float) -> None:
        """Move the landmark to `new_landmark`, scaling every stored score (about once in 27 years)."""
        self._m.scale_scores(self._decay.rebase(new_landmark))
        self._rebuild_indexes()

    def _rebuild_indexes(self) -> None:
        """Sorted indexes and eligible counts from the member columns (after a rebase or a restore)."""
        m = self._m
        ranked: list[tuple[float, int]] = []
        creators: list[tuple[float, int]] = []
        curators: list[tuple[float, int]] = []
        counts = [0, 0, 0]
        eligible = 0
        for idx in range(len(m)):
            tier = m.tier[idx]
            if tier == CREATOR:
                m.tier_key[idx] = m.creation[idx]
                creators.append((m.creation[idx], idx))
            elif tier == CURATOR:
                m.tier_key[idx] = m.curation[idx]
                curators.append((m.curation[idx], idx))
            if self._is_eligible(idx):
                eligible += 1
                counts[tier] += 1
                if m.creation[idx] > 0.0:
                    ranked.append((-m.creation[idx], idx))
        # Refill in place: `apply` holds references to these.
        self._stale_ranked.clear()
        for index, items in ((self._ranked, ranked), (self._creators, creators), (self._curators, curators)):
            index.clear()
            index.update(items)
        self._tier_counts = counts
        self._eligible = eligible
