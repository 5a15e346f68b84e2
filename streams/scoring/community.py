"""The scorer of one community: events in log order in, tier changes and rows out.

Pure and deterministic: no Kafka, no ClickHouse, no wall clock. Every decision is taken
at an event, from the state after the events before it, so the same events give the same
state, the same tier changes and the same per-minute community rows whatever the batch
boundaries (docs/scoring.md has the rules).
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, cast

import numpy as np

from streams.event_record import COMMENT, JOIN, JOIN_SOURCE_NAMES, ROLE_NAMES, EventRecord, new_record
from streams.native import c_helper
from streams.scoring.config import ScoringConfig
from streams.scoring.event_dedup import EventIdMemory
from streams.scoring.forward_decay import ForwardDecay
from streams.scoring.member_table import MemberTable
from streams.scoring.records import BatchOutcome, CommunityRow, MemberColumns, MemberRow, TierChangeRecord
from streams.scoring.tiers import (
    AMBASSADOR,
    CREATOR,
    CURATOR,
    LURKER,
    TIER_NAMES,
    TierRule,
)
from streams.scoring.top_set import REST_COMPACT_MIN, Discard, TopSet

# `_score`'s per-event loop in C (score_loop.c), when it is built and current (streams/native.py);
# else None, and the Python loop in `_score` runs, the reference
_loop_module = c_helper("streams.scoring._score_loop")
_c_loop: Callable[..., float | None] | None = _loop_module.loop if _loop_module is not None else None

SNAPSHOT_FORMAT = 2
_NO_CLOCK = -math.inf
MINUTE = 60.0
SMALL_BLOCK = 24  # member_columns reads up to this many members without numpy (its ~17 us of calls)
HEAP_COMPACT_MIN = 4096  # lazy heaps are not compacted below this many entries (tests lower it)
_heappush = heapq.heappush
_heappop = heapq.heappop
_community_of = itemgetter(2)


class CommunityScorer:
    """Scores, tiers and counts of one community, advanced by `apply`.

    Lazy heaps keep each step proportional to what changed:
    - `_creators` / `_curators`: (key, idx) min-heaps of every creator (curator), key <= the
      stored creation (curation); their low end yields whoever fell under the low-water mark
      when the clock moves. A key is refreshed only when it reaches the low end, so a
      creator's comment costs no heap update (`_demote`). Entries of members who left the
      tier stay behind and are skipped (`tier_key` tells the live entry).
    - `_tops`: the top-k sets by stored creation (`TopSet`), one per distinct share
      (ambassadors, top 1%, top 20%), with running sums for the concentration shares.
    - `_active`: creators counted active -> the key of their `_active_heap` entry (a lower
      bound of their latest comment), expired by range as the clock moves.
    """

    __slots__ = (
        "_active",
        "_active_heap",
        "_active_window",
        "_amb",
        "_amb_changed",
        "_ambassadors",
        "_clock",
        "_creators",
        "_curators",
        "_decay",
        "_dedup",
        "_eligible",
        "_excluded_count",
        "_heap_limits",
        "_k_range",
        "_large",
        "_m",
        "_pending_excluded",
        "_positive",
        "_rule",
        "_small",
        "_tie",
        "_tier_counts",
        "_tops",
        "_total",
        "_weights",
        "community_id",
        "config",
    )

    def __init__(self, community_id: str, config: ScoringConfig) -> None:
        self.community_id = community_id
        self.config = config
        self._decay = ForwardDecay(config.decay_rate, 0.0, config.rebase_exponent)
        # the config's numbers the per-event rules read, worked out once
        self._rule = TierRule.of(config)
        self._weights = (0.0, config.like_weight, config.share_weight, config.comment_weight)
        self._active_window = config.active_window_seconds
        self._clock = _NO_CLOCK
        self._m = MemberTable()
        self._dedup = EventIdMemory(config.dedup_window_seconds)
        self._creators: list[tuple[float, int]] = []
        self._curators: list[tuple[float, int]] = []
        # per tier: compact its heap past this many entries
        self._heap_limits = [0, HEAP_COMPACT_MIN, HEAP_COMPACT_MIN]
        self._ambassadors: set[int] = set()
        self._amb_changed: list[int] = []  # members whose ambassador standing may have changed
        m = self._m
        self._tops: list[TopSet] = []
        by_share: dict[float, TopSet] = {}
        for share in (config.ambassador_share, config.top_small_share, config.top_large_share):
            if share not in by_share:
                changed = self._amb_changed if not by_share else Discard()
                top = TopSet(share, 1 << len(by_share), m.creation, m.ranks, m.role, m.excluded, changed)
                by_share[share] = top
                self._tops.append(top)
        self._amb = by_share[config.ambassador_share]
        self._small = by_share[config.top_small_share]
        self._large = by_share[config.top_large_share]
        self._tie: float | None = None  # creation value tied across the ambassador top-k boundary
        self._eligible = 0
        self._k_range = (0, 0)  # eligible counts for which no top-k size changes
        self._tier_counts = [0, 0, 0]  # eligible members per base tier
        self._positive = 0  # eligible members with creation > 0
        self._total = 0.0  # running sum of eligible members' stored creation
        self._active: dict[int, float] = {}
        self._active_heap: list[tuple[float, int]] = []
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
        return self._m.index.ids()

    def member_row(self, member_id: str) -> MemberRow:
        idx = self._m.index.get(member_id)
        if idx is None:
            raise KeyError(f"member {member_id!r} has no scored event in community {self.community_id!r}")
        return self._member_row(idx, member_id, self._factor())

    def member_rows(self, member_ids: Iterable[str]) -> list[MemberRow]:
        """`member_row` of many members at once (one vectorised id lookup): what a batch stores."""
        names = list(dict.fromkeys(member_ids))
        found = self._m.index.find(names)
        f = self._factor()
        rows = []
        for name, idx in zip(names, found, strict=True):
            if idx < 0:
                raise KeyError(f"member {name!r} has no scored event in community {self.community_id!r}")
            rows.append(self._member_row(idx, name, f))
        return rows

    def member_columns(self, member_ids: Iterable[str], rows: dict[str, int] | None = None) -> MemberColumns:
        """The rows of many members as columns: `member_rows` without an object per member.

        `rows` (a batch's `BatchOutcome.touched_rows`) saves looking up the members it names."""
        names = list(dict.fromkeys(member_ids))
        if rows is None:
            found = self._m.index.find(names)
        else:
            get, find = rows.get, self._m.index.get
            found = []
            for name in names:
                at = get(name)
                if at is None:
                    at = find(name)
                found.append(-1 if at is None else at)
        if found and min(found) < 0:
            name = names[found.index(-1)]
            raise KeyError(f"member {name!r} has no scored event in community {self.community_id!r}")
        if len(found) <= SMALL_BLOCK:
            return self._small_columns(names, found)
        idx = np.fromiter(found, np.int64, len(names))
        m = self._m
        f = self._factor()
        tier = _column(m.tier)[idx]
        ambassadors = self._ambassadors
        if ambassadors:  # a few members: a set lookup each beats numpy's isin on small blocks
            shown = [i for i, x in enumerate(idx.tolist()) if x in ambassadors]
            tier[shown] = AMBASSADOR
        first_seen = _column(m.first_seen)[idx]
        last_active = _column(m.last_active)[idx]
        never = last_active == -math.inf
        last_active[never] = first_seen[never]
        return MemberColumns(
            self.community_id,
            names,
            tier,
            _column(m.creation)[idx] * f,
            _column(m.curation)[idx] * f,
            _column(m.received)[idx] * f,
            self._clock,
            first_seen,
            last_active,
            _column(m.events)[idx],
            _column(m.join_source)[idx],
            _column(m.role)[idx],
            _column(m.excluded)[idx],
        )

    def _small_columns(self, names: list[str], found: list[int]) -> MemberColumns:
        """`member_columns` of a few members (a live batch brings a few per community): the
        same values read one by one into arrays, which numpy's per-call cost would exceed."""
        m = self._m
        f = self._factor()
        ambassadors = self._ambassadors
        tiers, creation, curation, received = m.tier, m.creation, m.curation, m.received
        first_seen, last_active, counts = m.first_seen, m.last_active, m.events
        join_source, role, excluded = m.join_source, m.role, m.excluded
        never = -math.inf
        return MemberColumns(
            self.community_id,
            names,
            array("B", [AMBASSADOR if i in ambassadors else tiers[i] for i in found]),
            array("d", [creation[i] * f for i in found]),
            array("d", [curation[i] * f for i in found]),
            array("d", [received[i] * f for i in found]),
            self._clock,
            array("d", [first_seen[i] for i in found]),
            array("d", [last_active[i] if last_active[i] != never else first_seen[i] for i in found]),
            array(counts.typecode, [counts[i] for i in found]),
            array("B", [join_source[i] for i in found]),
            array("B", [role[i] for i in found]),
            array("B", [excluded[i] for i in found]),
        )

    def _member_row(self, idx: int, member_id: str, f: float) -> MemberRow:
        m = self._m
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
        """Counts over eligible members now, `as_of` = the clock (O(1) amortised)."""
        return self._row(self._clock, self._clock)

    def minute_row(self) -> CommunityRow:
        """The current state as the row of the clock's event-time minute (`as_of` = its start).

        What `BatchOutcome.community_rows` ends with; store it again after `set_excluded`.
        """
        return self._row(_minute_start(self._clock), self._clock)

    def _row(self, as_of: float, clock: float) -> CommunityRow:
        """The community row at `clock` (one a minute of event time: kept to a few dozen operations)."""
        heap = self._active_heap
        since = clock - self._active_window
        if heap and heap[0][0] < since:
            self._expire_active(since)
        lurkers, curators, creators = self._tier_counts
        ambassadors = len(self._ambassadors)
        total = self._total
        positive = self._positive
        if total > 0.0 and positive:
            # each share clamped to [0, 1] (a running sum may round past either end)
            small, large = self._small, self._large
            if len(small.top) >= positive:
                top1 = 1.0
            else:
                top1 = small.total / total
                top1 = 1.0 if top1 > 1.0 else top1 if top1 > 0.0 else 0.0
            if len(large.top) >= positive:
                top20 = 1.0
            else:
                top20 = large.total / total
                top20 = 1.0 if top20 > 1.0 else top20 if top20 > 0.0 else 0.0
        else:
            top1 = top20 = 0.0
        return new_record(
            CommunityRow,
            (
                self.community_id,
                as_of,
                self._eligible,
                lurkers,
                curators,
                creators - ambassadors,
                ambassadors,
                len(self._active),
                top1,
                top20,
                self._excluded_count + len(self._pending_excluded),
            ),
        )

    # ------------------------------------------------------------------ scoring

    def apply(self, events: Sequence[EventRecord]) -> BatchOutcome:
        """Score `events` (this community's, in log order) and return what changed."""
        community_id = self.community_id
        communities = set(map(_community_of, events))
        if communities and communities != {community_id}:
            stray = next(e for e in events if e.community_id != community_id)
            raise ValueError(
                f"event {stray.event_id} belongs to community {stray.community_id!r}, not "
                f"{community_id!r}; route events to the scorer of their own community"
            )
        out = BatchOutcome()
        cfg = self.config
        kept, out.late, out.duplicates, clock_after = self._dedup.fresh(events, self._clock, cfg.lateness_seconds)
        out.scored = len(kept)
        if not kept:
            return out
        out.accepted = kept
        decay = self._decay
        if self._clock == _NO_CLOCK:
            decay.landmark = kept[0].ts
        start = 0
        if decay.rate * (clock_after - decay.landmark) > decay.rebase_exponent:
            # Rare (every ~27 years of event time): score up to the event that needs a new
            # landmark, move it there, go on.
            clock = self._clock
            for j, event in enumerate(kept):
                ts = event.ts
                if ts > clock:
                    if decay.rate * (ts - decay.landmark) > decay.rebase_exponent:
                        self._score(kept[start:j], out)
                        self._rebase(ts)
                        start = j
                    clock = ts
        self._score(kept[start:] if start else kept, out)
        dedup = self._dedup
        if self._clock >= dedup.next_housekeeping:
            dedup.housekeep(self._clock)
        out.community_rows.append(self.minute_row())
        out.touched.update([c.member_id for c in out.tier_changes])  # actors and target authors: `_score`
        return out

    def _score(self, events: list[EventRecord], out: BatchOutcome) -> None:
        """The per-event rules over events already known to be neither late nor duplicate."""
        if not events:
            return
        m = self._m
        actors = [e[3] for e in events]
        # the author of a like, share or reply by someone else (the one who receives)
        targets = [e[7] if e[7] is not None and e[1] != JOIN and e[7] != e[3] else None for e in events]
        # Row indexes, new members in order of first appearance (actor before target).
        order = dict.fromkeys(chain.from_iterable(zip(actors, targets, strict=True)))
        order.pop(None, None)
        names = cast(list[str], list(order))  # None popped above
        out.touched.update(names)  # actors and target authors: their rows change beyond decay
        found, known = m.index.resolve(names)
        m.grow(len(m.index) - len(m))
        if self._pending_excluded and len(m) > known:
            pending = self._pending_excluded
            for name, idx in zip(names, found, strict=True):
                if idx >= known and name in pending:
                    pending.discard(name)
                    m.excluded[idx] = 1
                    self._excluded_count += 1
        lookup = dict(zip(names, found, strict=True))
        out.touched_rows.update(lookup)
        actor_idx = list(map(lookup.__getitem__, actors))
        target_idx = [-1 if t is None else lookup[t] for t in targets]

        changes = out.tier_changes
        rows = out.community_rows
        decay = self._decay
        rate = decay.rate
        landmark = decay.landmark
        clock = self._clock
        f = self._factor()
        minute = clock // MINUTE if clock != _NO_CLOCK else None
        weights = self._weights
        creator_threshold, creator_floor, curator_threshold, curator_floor = self._rule
        active_window = self._active_window
        active_since = clock - active_window
        creation, curation, received = m.creation, m.curation, m.received
        first_seen, last_active, last_comment = m.first_seen, m.last_active, m.last_comment
        counts, tiers, role_of, excluded = m.events, m.tier, m.role, m.excluded
        join_ts, join_source, ranks = m.join_ts, m.join_source, m.ranks
        creators, curators = self._creators, self._curators
        tops = self._tops
        amb_changed = self._amb_changed
        active = self._active
        exp = math.exp
        inf = math.inf
        low_c = creators[0][0] if creators else inf
        low_u = curators[0][0] if curators else inf
        tie = self._tie
        tier_counts = self._tier_counts
        k_high = self._k_range[1]
        rest_cap = max(REST_COMPACT_MIN, 4 * (len(creation) + 1))  # TopSet's own bound: the table is grown already
        if _c_loop is not None:  # the same loop in C (score_loop.c), calling back the same methods
            done = _c_loop(
                self, events, actor_idx, target_idx, known, changes, rows,
                (creation, curation, received, first_seen, last_active, last_comment, join_ts, counts, tiers,
                 role_of, excluded, join_source, ranks),
                (creators, curators), tops, amb_changed, active, tier_counts,
                (rate, landmark, clock, f, active_window, creator_threshold, creator_floor, curator_threshold,
                 curator_floor, tie, k_high, rest_cap, MINUTE, weights[1], weights[2], weights[3]),
                (JOIN, COMMENT, LURKER, CURATOR, CREATOR), _heappush,
            )  # fmt: skip
            if done is not None:
                self._clock = done
                return
        g_ts = None  # the time `g` (what a unit of weight at it stores) was worked out for
        g = 1.0

        for a, t, (_, kind, _, _, ts, role, _, _, source, _, _) in zip(actor_idx, target_idx, events, strict=True):
            if ts > clock:
                advanced = True
                this_minute = ts // MINUTE
                if this_minute != minute:
                    if minute is not None:  # the clock leaves a minute: its final row
                        rows.append(self._row(minute * MINUTE, clock))
                    minute = this_minute
                clock = ts
                active_since = clock - active_window
                f = exp(-rate * (clock - landmark))
            else:
                advanced = False
            if a >= known:  # first appearance, as the actor: a lurker, counted when eligible
                role_of[a] = role
                known = a + 1
                if not role and not excluded[a]:
                    self._eligible += 1
                    tier_counts[LURKER] += 1
                    if self._eligible > k_high:
                        self._resize_tops()
                        k_high = self._k_range[1]
            if ts < first_seen[a]:
                first_seen[a] = ts
            counts[a] += 1
            if ts >= last_active[a]:
                last_active[a] = ts
                if role != role_of[a]:
                    self._set_role(a, role, clock)
                    k_high = self._k_range[1]

            if kind == JOIN:
                if ts < join_ts[a]:
                    join_ts[a] = ts
                    join_source[a] = source
            else:
                if ts != g_ts:
                    g_ts = ts
                    g = exp(rate * (ts - landmark))
                w = weights[kind] * g
                if kind == COMMENT:
                    old = creation[a]
                    new = creation[a] = old + w
                    if new != old and not role_of[a] and not excluded[a]:
                        grown = new - old
                        self._total += grown
                        if old == 0.0:
                            self._positive += 1
                        r = ranks[a]
                        for top in tops:
                            if r & top.bit:
                                top.total += grown
                            elif len(top.top) >= top.k and new < top.top[0][0]:
                                # under the set's smallest key (which never exceeds its smallest
                                # score): stays outside, what `grew` would decide, minus its calls
                                rest = top.rest
                                _heappush(rest, (-new, -a))
                                if len(rest) > rest_cap:
                                    top.compact_rest()
                            else:
                                top.grew(a, old, new)
                        if tie is not None and old == tie:
                            amb_changed.append(a)
                    if ts > last_comment[a]:
                        last_comment[a] = ts
                        if (
                            tiers[a] == CREATOR
                            and ts >= active_since
                            and a not in active
                            and not role_of[a]
                            and not excluded[a]
                        ):
                            self._activate(a, ts)
                    if tiers[a] != CREATOR and new * f >= creator_threshold:
                        self._change_tier(a, CREATOR, clock, f, changes)
                        low_c = creators[0][0]
                        low_u = curators[0][0] if curators else inf
                else:
                    new = curation[a] = curation[a] + w
                    if tiers[a] == LURKER and new * f >= curator_threshold:
                        self._change_tier(a, CURATOR, clock, f, changes)
                        low_u = curators[0][0]
                if t >= 0:
                    if t >= known:  # first appearance, as the target author
                        known = t + 1
                        if not role_of[t] and not excluded[t]:
                            self._eligible += 1
                            tier_counts[LURKER] += 1
                            if self._eligible > k_high:
                                self._resize_tops()
                                k_high = self._k_range[1]
                    if ts < first_seen[t]:
                        first_seen[t] = ts
                    received[t] += w
                    if tie is not None and creation[t] == tie:
                        amb_changed.append(t)

            if advanced:
                # Creators first: one who falls to curator joins `curators` above its floor.
                if low_c * f < creator_floor:
                    self._demote(creators, CREATOR, creation, creator_floor, clock, f, changes)
                    low_c = creators[0][0] if creators else inf
                    low_u = curators[0][0] if curators else inf
                if low_u * f < curator_floor:
                    self._demote(curators, CURATOR, curation, curator_floor, clock, f, changes)
                    low_u = curators[0][0] if curators else inf
            if amb_changed:
                self._reconcile(changes, clock, f)
                tie = self._tie
        self._clock = clock

    def set_excluded(self, member_id: str, excluded: bool) -> list[TierChangeRecord]:
        """Leave a member out of ranks and counts (spam), or put them back; returns ambassador flips.

        Scores keep accumulating either way. A member the scorer has not seen yet is
        remembered and starts excluded when their first event arrives.
        """
        m = self._m
        idx = m.index.get(member_id)
        if idx is None:
            if excluded:
                self._pending_excluded.add(member_id)
            else:
                self._pending_excluded.discard(member_id)
            return []
        if bool(m.excluded[idx]) == excluded:
            return []
        was = self._is_eligible(idx)
        m.excluded[idx] = 1 if excluded else 0
        self._excluded_count += 1 if excluded else -1
        changes: list[TierChangeRecord] = []
        f = self._factor()
        self._eligibility_changed(idx, was, self._clock)
        self._reconcile(changes, self._clock, f)
        return changes

    # ------------------------------------------------------------------ state

    def snapshot(self) -> dict[str, Any]:
        """The full state as JSON-ready values (floats bit-exact, arrays as base64)."""
        ids = self._m.index
        return {
            "format": SNAPSHOT_FORMAT,
            "community_id": self.community_id,
            "decay_rate": self._decay.rate,
            "landmark": self._decay.landmark,
            "clock": None if self._clock == _NO_CLOCK else self._clock,
            "members": self._m.snapshot(),
            "ambassadors": sorted(ids.id_of(idx) for idx in self._ambassadors),
            "pending_excluded": sorted(self._pending_excluded),
            "dedup": self._dedup.snapshot(),
            # running sums: continued from here, so a restored scorer rounds like the original
            "sums": {"total": self._total, "tops": [top.total for top in self._tops]},
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
        m = scorer._set_table(MemberTable.restore(snapshot["members"]))
        scorer._dedup = EventIdMemory.restore(snapshot["dedup"], config.dedup_window_seconds)
        scorer._pending_excluded = set(snapshot["pending_excluded"])
        scorer._excluded_count = sum(m.excluded)
        sums = snapshot["sums"]
        scorer._rebuild_indexes(float(sums["total"]), [float(x) for x in sums["tops"]])
        index = m.index
        ambassadors = set()
        for member_id in snapshot["ambassadors"]:
            idx = index.get(member_id)
            if idx is None:
                raise ValueError(
                    f"scoring snapshot of {community_id!r} names ambassador {member_id!r}, not a member; "
                    "discard it and replay the community from the log"
                )
            ambassadors.add(idx)
        scorer._ambassadors = ambassadors
        scorer._tie = scorer._boundary_tie()
        return scorer

    # ------------------------------------------------------------------ internals

    def _set_table(self, m: MemberTable) -> MemberTable:
        self._m = m
        old = self._tops
        self._tops = []
        for top in old:
            new = TopSet(top.share, top.bit, m.creation, m.ranks, m.role, m.excluded, top.changed)
            self._tops.append(new)
            if top is self._amb:
                self._amb = new
            if top is self._small:
                self._small = new
            if top is self._large:
                self._large = new
        return m

    def _factor(self) -> float:
        if self._clock == _NO_CLOCK:
            return 1.0
        return self._decay.factor(self._clock)

    def _is_eligible(self, idx: int) -> bool:
        return not self._m.role[idx] and not self._m.excluded[idx]

    def _resize_tops(self) -> None:
        """Follow the top-k sizes after the eligible count moved (cheap while no k changes)."""
        low, high = self._k_range
        eligible = self._eligible
        if low <= eligible <= high:
            return
        low, high = 0, -1  # the counts every set's k holds for: the intersection of their ranges
        for top in self._tops:
            if not top.low <= eligible <= top.high:
                top.resize(eligible)
            if top.low > low:
                low = top.low
            if high < 0 or top.high < high:
                high = top.high
        self._k_range = (low, high)

    def _set_role(self, idx: int, role: int, clock: float) -> None:
        was = self._is_eligible(idx)
        self._m.role[idx] = role
        self._eligibility_changed(idx, was, clock)

    def _eligibility_changed(self, idx: int, was: bool, clock: float) -> None:
        now = self._is_eligible(idx)
        if now == was:
            return
        m = self._m
        step = 1 if now else -1
        self._eligible += step
        self._tier_counts[m.tier[idx]] += step
        stored = m.creation[idx]
        if stored > 0.0:
            self._positive += step
            self._total = self._total + stored if now else (self._total - stored if self._positive else 0.0)
            for top in self._tops:
                if now:
                    top.join(idx)
                else:
                    top.leave(idx)
        if m.tier[idx] == CREATOR:
            if now:
                if m.last_comment[idx] >= clock - self._active_window:
                    self._activate(idx, m.last_comment[idx])
            else:
                self._active.pop(idx, None)
        self._resize_tops()
        self._amb_changed.append(idx)

    def _activate(self, idx: int, last_comment: float) -> None:
        self._active[idx] = last_comment
        heap = self._active_heap
        _heappush(heap, (last_comment, idx))
        if len(heap) > HEAP_COMPACT_MIN and len(heap) > 4 * len(self._active):
            active = self._active
            self._active_heap = [entry for entry in heap if active.get(entry[1]) == entry[0]]
            heapq.heapify(self._active_heap)

    def _expire_active(self, since: float) -> None:
        """Drop creators whose latest comment is before `since` (entries may lag: re-keyed)."""
        heap = self._active_heap
        active = self._active
        last_comment = self._m.last_comment
        while heap and heap[0][0] < since:
            key, idx = _heappop(heap)
            if active.get(idx) != key:
                continue
            latest = last_comment[idx]
            if latest >= since:
                active[idx] = latest
                _heappush(heap, (latest, idx))
            else:
                del active[idx]

    def _change_tier(self, idx: int, new: int, clock: float, f: float, changes: list[TierChangeRecord]) -> None:
        """Move a member to base tier `new` and record it."""
        m = self._m
        tiers = m.tier
        old = tiers[idx]
        tiers[idx] = new  # first: a heap compaction below keeps only entries of the member's tier
        creation = m.creation[idx]
        curation = m.curation[idx]
        if new == CREATOR:
            m.tier_key[idx] = creation
            heap = self._creators
            _heappush(heap, (creation, idx))
            if len(heap) > self._heap_limits[CREATOR]:
                self._compact_tier_heap(heap, CREATOR)
        elif new == CURATOR:
            m.tier_key[idx] = curation
            heap = self._curators
            _heappush(heap, (curation, idx))
            if len(heap) > self._heap_limits[CURATOR]:
                self._compact_tier_heap(heap, CURATOR)
        eligible = not m.role[idx] and not m.excluded[idx]
        if eligible:
            counts = self._tier_counts
            counts[old] -= 1
            counts[new] += 1
        if old == CREATOR:
            self._active.pop(idx, None)
        elif new == CREATOR and eligible and m.last_comment[idx] >= clock - self._active_window:
            self._activate(idx, m.last_comment[idx])
        shown = old
        ambassadors = self._ambassadors
        if idx in ambassadors:  # only creators are ambassadors: losing creator loses both
            shown = AMBASSADOR
            ambassadors.discard(idx)
            self._amb_changed.append(idx)
        elif self._tie is not None or m.ranks[idx] & self._amb.bit:
            self._amb_changed.append(idx)  # inside the top k (or maybe, on a tie): may gain
        changes.append(
            new_record(
                TierChangeRecord,
                (
                    self.community_id,
                    m.index.id_of(idx),
                    TIER_NAMES[shown],
                    TIER_NAMES[new],
                    clock,
                    creation * f,
                    curation * f,
                    m.received[idx] * f,
                ),
            )
        )

    def _demote(
        self,
        heap: list[tuple[float, int]],
        tier: int,
        scores: Any,
        floor: float,
        clock: float,
        f: float,
        changes: list[TierChangeRecord],
    ) -> None:
        """Re-tier every member of `heap` whose decayed score is under `floor`, lowest first.

        Keys may lag the score (it only grows between refreshes), so an entry under the
        floor is checked against its score: still above, it is re-keyed and kept.
        """
        m = self._m
        tier_key = m.tier_key
        tiers = m.tier
        fallen: list[tuple[float, int]] = []
        kept: list[tuple[float, int]] = []
        while heap:
            key, idx = heap[0]
            if key * f >= floor:
                break
            _heappop(heap)
            if tiers[idx] != tier or tier_key[idx] != key:
                continue  # left the tier, or an older key of a re-keyed member
            stored = scores[idx]
            if stored * f >= floor:
                tier_key[idx] = stored
                kept.append((stored, idx))
            else:
                tier_key[idx] = -1.0  # no entry of this member is live any more
                fallen.append((stored, idx))
        for entry in kept:
            _heappush(heap, entry)
        if not fallen:
            return
        fallen.sort()  # the same order whatever the keys lagged by
        tier_of = self._rule.tier
        creation, curation = m.creation, m.curation
        for _, idx in fallen:
            self._change_tier(idx, tier_of(tiers[idx], creation[idx] * f, curation[idx] * f), clock, f, changes)

    def _compact_tier_heap(self, heap: list[tuple[float, int]], tier: int) -> None:
        """Drop entries of members who left the tier or were re-keyed, once they are most of `heap`."""
        m = self._m
        tiers, tier_key = m.tier, m.tier_key
        heap[:] = [entry for entry in heap if tiers[entry[1]] == tier and tier_key[entry[1]] == entry[0]]
        heapq.heapify(heap)
        self._heap_limits[tier] = max(HEAP_COMPACT_MIN, 2 * len(heap))

    # ------------------------------------------------------------------ ambassadors

    def _boundary_tie(self) -> float | None:
        """The creation value shared by the last member inside the ambassador top k and the first outside."""
        amb = self._amb
        if not len(amb) or len(amb) < amb.k:
            return None
        low = amb.minimum()
        best = amb.best_rest()
        if low is not None and best is not None and best[0] == low[0]:
            return low[0]
        return None

    def _reconcile(self, changes: list[TierChangeRecord], clock: float, f: float) -> None:
        """Ambassadors := creators in the top k (creation desc, received desc, member_id asc), now."""
        amb = self._amb
        pending = self._amb_changed
        tie = self._boundary_tie()
        m = self._m
        tiers = m.tier
        old = self._ambassadors
        if tie is None and self._tie is None:
            # no tie at the boundary: only the members in `pending` can have moved
            ranks, bit = m.ranks, amb.bit
            lost: list[int] = []
            gained: list[int] = []
            for idx in set(pending):
                if tiers[idx] == CREATOR and ranks[idx] & bit:
                    if idx not in old:
                        gained.append(idx)
                elif idx in old:
                    lost.append(idx)
        else:
            new = self._exact_ambassadors(tie)
            lost, gained = list(old - new), list(new - old)
        self._tie = tie
        pending.clear()
        if not lost and not gained:
            return
        id_of = m.index.id_of
        for idx in sorted(lost, key=id_of):
            changes.append(self._record(idx, AMBASSADOR, tiers[idx], clock, f))
        for idx in sorted(gained, key=id_of):
            changes.append(self._record(idx, tiers[idx], AMBASSADOR, clock, f))
        old.difference_update(lost)
        old.update(gained)

    def _exact_ambassadors(self, tie: float | None) -> set[int]:
        m = self._m
        tiers, creation = m.tier, m.creation
        inside = self._amb.members()
        if tie is None:
            return {idx for idx in inside if tiers[idx] == CREATOR}
        chosen = [idx for idx in inside if creation[idx] > tie]
        tied_inside = [idx for idx in inside if creation[idx] == tie]
        column = np.frombuffer(creation, np.float64)
        same = np.flatnonzero(column == tie).tolist()
        del column
        amb = self._amb
        tied = tied_inside + [idx for idx in same if not amb.contains(idx) and self._is_eligible(idx)]
        received, id_of = m.received, m.index.id_of
        tied.sort(key=lambda idx: (-received[idx], id_of(idx)))
        chosen += tied[: len(tied_inside)]
        return {idx for idx in chosen if tiers[idx] == CREATOR}

    def _record(self, idx: int, old: int, new: int, clock: float, f: float) -> TierChangeRecord:
        m = self._m
        return new_record(
            TierChangeRecord,
            (
                self.community_id,
                m.index.id_of(idx),
                TIER_NAMES[old],
                TIER_NAMES[new],
                clock,
                m.creation[idx] * f,
                m.curation[idx] * f,
                m.received[idx] * f,
            ),
        )

    # ------------------------------------------------------------------ rebuilding

    def _rebase(self, new_landmark: float) -> None:
        """Move the landmark to `new_landmark`, scaling every stored score (about once in 27 years)."""
        self._m.scale_scores(self._decay.rebase(new_landmark))
        self._rebuild_indexes(None, None)
        self._tie = self._boundary_tie()
        # scaling may round two scores onto one value: judge the ambassadors again at the next event
        self._amb_changed.extend(self._amb.members())
        self._amb_changed.extend(self._ambassadors)

    def _rebuild_indexes(self, total: float | None, top_totals: list[float] | None) -> None:
        """Heaps, top sets and counts from the member columns (after a rebase or a restore).

        `total`/`top_totals`: the running sums to continue from (None: recompute them exactly).
        """
        m = self._m
        tier = np.frombuffer(m.tier, np.uint8)
        eligible_mask = (np.frombuffer(m.role, np.uint8) == 0) & (np.frombuffer(m.excluded, np.uint8) == 0)
        creation = np.frombuffer(m.creation, np.float64)
        curation = np.frombuffer(m.curation, np.float64)
        tier_key = np.frombuffer(m.tier_key, np.float64)
        is_creator, is_curator = tier == CREATOR, tier == CURATOR
        tier_key[:] = 0.0
        tier_key[is_creator] = creation[is_creator]
        tier_key[is_curator] = curation[is_curator]
        creators = np.flatnonzero(is_creator)
        curators = np.flatnonzero(is_curator)
        self._creators = list(zip(creation[creators].tolist(), creators.tolist(), strict=True))
        self._curators = list(zip(curation[curators].tolist(), curators.tolist(), strict=True))
        heapq.heapify(self._creators)
        heapq.heapify(self._curators)
        self._eligible = int(eligible_mask.sum())
        self._tier_counts[:] = [int((eligible_mask & (tier == code)).sum()) for code in (LURKER, CURATOR, CREATOR)]
        positive = np.flatnonzero(eligible_mask & (creation > 0.0))
        self._positive = len(positive)
        candidates = list(zip(creation[positive].tolist(), positive.tolist(), strict=True))
        self._total = math.fsum(creation[positive].tolist()) if total is None else total
        del tier, creation, curation, tier_key
        for i, top in enumerate(self._tops):
            top.rebuild(self._eligible, candidates, None if top_totals is None else top_totals[i])
        self._k_range = (max(top.low for top in self._tops), min(top.high for top in self._tops))
        self._active = {}
        self._active_heap = []
        if self._clock != _NO_CLOCK:
            since = self._clock - self.config.active_window_seconds
            last_comment = m.last_comment
            for idx in creators.tolist():
                if eligible_mask[idx] and last_comment[idx] >= since:
                    self._activate(idx, last_comment[idx])
        self._amb_changed.clear()
        self._heap_limits = [
            0,
            max(HEAP_COMPACT_MIN, 2 * len(self._curators)),
            max(HEAP_COMPACT_MIN, 2 * len(self._creators)),
        ]


def _column(values: Any) -> Any:
    """A member column (an `array` or a `bytearray`) as a numpy view, without a copy."""
    return np.frombuffer(values, np.uint8 if isinstance(values, bytearray) else np.dtype(values.typecode))


def _minute_start(clock: float) -> float:
    return clock if clock == _NO_CLOCK else (clock // MINUTE) * MINUTE
