"""The spam-profile detector of one community: events in log order in, flags out.

Pure and deterministic: windows run on event time (`EventRecord.ts`), never on a
clock, and every decision depends only on the events and moderation decisions
seen so far, in their order, so replaying the log gives the same flags whatever
the batch boundaries. Signals, weights and moderation semantics: docs/spam.md.

Per-member state is columnar (docs/spam.md "Memory and speed"): a row index per
member id (a `MemberIndex`: the id's UTF-8 bytes and ~20 bytes, no Python object per
member) and four columns (first and last event time, the one like in its window, a
byte of flags and status); the few members with more to remember (a second like in a
minute, any comment, a flag or a decision) get sparse entries
keyed by id. Members with nothing left to remember are forgotten but for an
8-byte hash that keeps them from counting as newcomers again (`_forget`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.outputs import ModerationDecision
from streams.event_record import COMMENT, JOIN, LIKE, MEMBER, EventRecord
from streams.scoring.member_index import MemberIndex
from streams.scoring.packed_arrays import array_from_b64, array_to_b64
from streams.spam.config import SpamConfig
from streams.spam.flags import (
    BURST_COMMENTS,
    BURST_LIKES,
    DUPLICATE_CONTENT,
    FIRST_DAY_VELOCITY,
    LINK_HEAVY_NEWCOMER,
    REASONS,
    STATUS_CLEARED,
    STATUS_CONFIRMED,
    STATUS_DISMISSED,
    STATUS_FLAGGED,
    STATUS_REVIEW,
    STATUSES,
    FlagRecord,
)
from streams.spam.forgotten import Forgotten, HashSet

SNAPSHOT_VERSION = 3  # 3: columns, review status, forgotten members by class; 2 added the forgotten veterans
_RESTORABLE = (1, 2, 3)
_NEVER = float("-inf")
_UNSEEN = float("inf")
_SIGNALS = len(REASONS)
# A member's second event of a kind at the very same millisecond is taken for a re-delivery of the first
# (a webhook retried, a message produced twice): it must not make a burst or count twice.
_REDELIVERED = -(1 << 30)

# The state byte of a member: status code in the low 3 bits, then flags.
_STATUS_MASK = 0x07
_NONE, _FLAGGED, _CONFIRMED, _CLEARED, _REVIEW, _DISMISSED = range(6)
_STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}
_STAFF = 0x08  # an event with a role other than member: never flagged
_NOT_NEW = 0x10  # never a newcomer: joined from an exempt source, or a forgotten member back
_ESTABLISHED = 0x20  # duplicates weak for good: joined from an exempt source, or an active member back
_UNRESOLVED = 0x40  # perhaps a forgotten member back: looked up at its first comment or decision
_MODERATED = 0x80  # has a detail with `forgiven` set
_EXCLUDED_CODES = (_FLAGGED, _CONFIRMED)
# `status_codes` right after `observe` finds the batch's members in the batch's own row dict, kept when it is
# small (the per-call costs of small batches are what it saves; a big batch's dict is not worth its memory).
_BATCH_ROWS_KEPT = 1024


class _Detail:
    """What only commenters, flagged or moderated members need."""

    __slots__ = (
        "comments",
        "day_comments",
        "day_dropped_comments",
        "day_dropped_links",
        "day_link_comments",
        "day_links",
        "day_replies",
        "fired",
        "flag",
        "forgiven",
        "fps",
        "newcomer_reviewed",
        "recent",
        "reviewed_fps",
        "texts",
        "version",
        "weights",
    )

    def __init__(self) -> None:
        self.forgiven = _NEVER  # evidence at or before this time was cleared by a moderator
        self.newcomer_reviewed = False  # cleared once: first-day signals stay off
        self.texts = 0  # comments written that copied none of the member's recent ones
        self.comments: list[float] | None = None  # sorted recent comment times
        self.fps: list[int] | None = None  # fingerprints of recent comments
        # ...and their (ts, target, has link, label of their group of near-duplicates)
        self.recent: list[tuple[float, str, bool, int]] | None = None
        self.reviewed_fps: list[int] | None = None  # content a moderator has seen
        self.day_comments = 0  # first-day counters
        self.day_replies = 0  # comments under other members' content
        self.day_links = 0
        self.day_link_comments = 0
        self.day_dropped_links = 0  # links left under other members' content
        self.day_dropped_comments = 0  # ...and the comments carrying them (drops)
        self.fired: list[float] | None = None  # per signal: event time it last fired
        self.weights: list[float] | None = None  # per signal: its weight when it last fired
        self.flag: FlagRecord | None = None
        self.version = 0

    def drop_windows(self) -> None:
        self.comments = self.recent = self.fps = None
        self.fired = self.weights = None

    def holds_windows(self) -> bool:
        return self.comments is not None or self.fps is not None or self.fired is not None


def _dense(times: list[float], i: int, k: int, window: float) -> bool:
    """Whether `k + 1` consecutive entries of sorted `times`, one of them at index `i`, span < `window`."""
    last = len(times) - 1 - k
    if i == last + k:  # the newest entry (events in order): one span to check
        return last >= 0 and times[i] - times[last] < window
    j = i - k if i > k else 0
    hi = i if i < last else last
    while j <= hi:
        if times[j + k] - times[j] < window:
            return True
        j += 1
    return False


def _insert(times: list[float], ts: float, keep: int, horizon: float) -> int:
    """Insert `ts` in order, keeping the newest `keep` entries after `horizon`; its index.

    Below 0: dropped as too old, or `_REDELIVERED` when the same time is already there.
    """
    if not times or ts > times[-1]:
        times.append(ts)
        i = len(times) - 1
    elif ts == times[-1]:
        return _REDELIVERED
    else:  # a late event
        i = bisect_left(times, ts)
        if times[i] == ts:
            return _REDELIVERED
        times.insert(i, ts)
    n = len(times)
    drop = n - keep if n > keep else 0
    while drop < n and times[drop] < horizon:
        drop += 1
    if drop:
        del times[:drop]
    return i - drop


class SpamDetector:
    """Spam signals and moderation state of every member of one community."""

    def __init__(self, community_id: str, config: SpamConfig | None = None) -> None:
        self.community_id = community_id
        self.config = config or SpamConfig()
        # Columns, one row per member held, in order of first appearance.
        self._members = MemberIndex()
        self._start = array("d")  # the newcomer clock: the earliest event time seen (normally the join)
        self._last = array("d")  # the latest event time seen
        self._like = array("d")  # the only like in the member's like window, or -inf
        self._state = bytearray()  # status code and flags (_STAFF, _NOT_NEW, ...)
        # Sparse: like windows of two or more, details, and who holds window state (swept when idle).
        self._likes: dict[str, list[float]] = {}
        self._details: dict[str, _Detail] = {}
        self._windowed: dict[str, int] = {}  # member -> row
        self._forgotten = Forgotten(self.config.established_comments)
        self._watermark = _NEVER
        self._next_sweep = _NEVER
        # Window state of a member whose last event is before this was dropped by the latest sweep: the like
        # column is cleared when the member is next seen, not by looking at every member at each sweep.
        self._swept_before = _NEVER
        self._forget_at = 0  # members held when the next sweep looks for ones to forget, or...
        self._next_forget = _NEVER  # ...the event time when it does anyway
        # Whether any member held has (or had) a status other than none: until then every status is none.
        self._any_status = False
        self._batch_rows: dict[str, int] | None = None  # the latest batch's members' rows (see _BATCH_ROWS_KEPT)

    # --- members --------------------------------------------------------------------

    def _add(self, mid: str, ts: float) -> int:
        """Hold a member not held: its row."""
        i = self._members.get_or_add(mid)
        self._start.append(ts)
        self._last.append(ts)
        self._like.append(_NEVER)
        self._state.append(self._new_state())
        return i

    def _new_state(self) -> int:
        """The state byte of a member new to the columns: perhaps a forgotten one back, if any were forgotten."""
        return _UNRESOLVED if self._forgotten else 0

    def _add_rows(self, names: list[str], firsts: dict[str, float], rows: dict[str, int]) -> None:
        """Hold the members `names` (distinct, none held): their rows go to `rows`, their columns start at
        `firsts[name]` (their first event's time)."""
        found, first_new = self._members.resolve(names)
        rows.update(zip(names, found, strict=True))
        added = len(self._members) - first_new
        if added:
            times = array("d", [firsts[mid] for mid, i in zip(names, found, strict=True) if i >= first_new])
            self._start.extend(times)
            self._last.extend(times)
            self._like.extend(array("d", [_NEVER]) * added)
            self._state.extend(bytes((self._new_state(),)) * added)

    def _resolve(self, i: int, mid: str) -> None:
        """Look a member up among the forgotten ones (once: at its first comment or decision)."""
        st = self._state[i] & ~_UNRESOLVED
        found = self._forgotten.lookup(mid)
        if found is not None:
            st |= _NOT_NEW
            if found < 0:
                st |= _ESTABLISHED
            else:
                self._detail(mid).texts += found
        self._state[i] = st

    def _detail(self, mid: str) -> _Detail:
        d = self._details.get(mid)
        if d is None:
            d = self._details[mid] = _Detail()
        return d

    def _drop_windows(self, i: int, mid: str) -> None:
        self._like[i] = _NEVER
        self._likes.pop(mid, None)
        d = self._details.get(mid)
        if d is not None:
            d.drop_windows()
        self._windowed.pop(mid, None)

    # --- events -------------------------------------------------------------------

    def observe(self, events: Sequence[EventRecord]) -> list[FlagRecord]:
        """Feed events in log order; the flags (and reviews) they tipped, each at its tipping event."""
        out: list[FlagRecord] = []
        self._batch_rows = None
        n = len(events)
        if not n:
            return out
        rows: dict[str, int] = {}  # the batch's members: one index lookup per member, not per event
        times = [ev.ts for ev in events]
        p = 0
        while p < n:
            # A sweep runs at the event that moves the watermark past `_next_sweep`; forgetting moves rows, so
            # the events are taken in runs between sweeps, and each run's new members are added at its start.
            ts = times[p]
            if ts > self._watermark:
                self._watermark = ts
                if ts >= self._next_sweep and self._sweep(ts):  # forgot members: rows are new
                    rows = {}
            end = self._run_end(times, p)
            self._observe_run(events, times, p, end, rows, out)
            p = end
        if len(rows) <= _BATCH_ROWS_KEPT:
            self._batch_rows = rows
        return out

    def _run_end(self, times: list[float], p: int) -> int:
        """The first event after `p` that sweeps (or the end), and the watermark moved to the run's newest."""
        wm, due = self._watermark, self._next_sweep
        n = len(times)
        if p + 1 < n:
            newest = max(times[p + 1 :]) if p else max(times)
            if newest < due:  # nothing in the rest sweeps: one run (almost every batch)
                if newest > wm:
                    self._watermark = newest
                return n
            for k in range(p + 1, n):
                ts = times[k]
                if ts > wm:
                    if ts >= due:
                        self._watermark = wm
                        return k
                    wm = ts
            self._watermark = wm
        return n

    def _observe_run(
        self, events: Sequence[EventRecord], times: list[float], p: int, end: int, rows: dict[str, int],
        out: list[FlagRecord],
    ) -> None:
        """Events `p` to `end` (no sweep between them) in order."""
        run = events[p:end] if p or end < len(events) else events
        firsts: dict[str, float] = {}
        for ev in run:  # the members not held by `rows` yet, in order of their first event, and its time
            mid = ev.member_id
            if mid not in rows and mid not in firsts:
                firsts[mid] = ev.ts
        if firsts:
            self._add_rows(list(firsts), firsts, rows)
        start, last, like, state = self._start, self._last, self._like, self._state
        swept_before = self._swept_before
        exempt_sources = self.config.exempt_join_sources
        details = self._details
        for ev in run:
            ts = ev.ts
            mid = ev.member_id
            i = rows[mid]
            if ts < start[i]:
                start[i] = ts
            prev = last[i]
            if prev < swept_before:
                like[i] = _NEVER  # idle through the latest sweep: its window went then
            if ts > prev:
                last[i] = ts
            st = state[i]
            if ev.role != MEMBER and not st & _STAFF:
                st |= _STAFF
                state[i] = st
            typ = ev.type
            if typ == JOIN:
                if ev.join_source in exempt_sources:
                    state[i] = (st | _NOT_NEW | _ESTABLISHED) & ~_UNRESOLVED
                continue
            if st & _STAFF or (st & _STATUS_MASK) in _EXCLUDED_CODES:
                continue
            if st & _MODERATED and ts <= details[mid].forgiven:
                continue
            if typ == COMMENT:
                fired = self._comment(i, mid, ev, ts)
            elif typ == LIKE:
                fired = self._like_event(i, mid, ts)
            else:
                continue
            if fired:
                flag = self._maybe_flag(i, mid, ev, ts)
                if flag is not None:
                    out.append(flag)

    def _comment(self, i: int, mid: str, ev: EventRecord, ts: float) -> bool:
        cfg = self.config
        if self._state[i] & _UNRESOLVED:
            self._resolve(i, mid)
        d = self._detail(mid)
        # Burst.
        times = d.comments
        if times is None:
            times = d.comments = []
            self._windowed[mid] = i
        j = _insert(times, ts, cfg.burst_long_comments + 1, self._last[i] - cfg.burst_long_seconds)
        if j == _REDELIVERED:
            return False
        fired = False
        if j >= 0 and (
            _dense(times, j, cfg.burst_short_comments, cfg.burst_short_seconds)
            or _dense(times, j, cfg.burst_long_comments, cfg.burst_long_seconds)
        ):
            self._fire(d, BURST_COMMENTS, ts, cfg.strong_weight)
            fired = True
        st = self._state[i]
        age = ts - self._start[i]
        # Duplicate content.
        fp = ev.fingerprint
        if fp is None:
            d.texts += 1
        else:
            established = bool(st & _ESTABLISHED) or (
                (bool(st & _NOT_NEW) or age >= cfg.established_seconds) and d.texts >= cfg.established_comments
            )
            if self._duplicate(d, ev, fp, ts, established):
                fired = True
        # Newcomer signals describe the first day so far, so they hold or not at each comment: a launch-day
        # newcomer whose first posts carried links is not link-heavy any more once most of their posts don't.
        if not st & _NOT_NEW and age < cfg.newcomer_seconds and not d.newcomer_reviewed:
            if self._newcomer(d, mid, ev, ts):
                fired = True
        return fired

    def _newcomer(self, d: _Detail, mid: str, ev: EventRecord, ts: float) -> bool:
        cfg = self.config
        fired = False
        d.day_comments += 1
        reply = ev.target_author_id is not None and ev.target_author_id != mid
        if reply:
            d.day_replies += 1
        links = ev.link_count
        if links:
            d.day_links += links
            d.day_link_comments += 1
            if reply:
                d.day_dropped_links += links
                d.day_dropped_comments += 1
        n = d.day_comments
        if n > cfg.velocity_comments:
            strong = n > cfg.velocity_strong_comments and d.day_replies >= cfg.velocity_reply_share * n
            self._fire(d, FIRST_DAY_VELOCITY, ts, cfg.strong_weight if strong else cfg.velocity_weak_weight)
            fired = True
        drops = d.day_dropped_comments
        if d.day_dropped_links >= cfg.link_heavy_links and drops >= cfg.link_heavy_min_link_share * n:
            strong = (drops == n and drops >= cfg.link_heavy_strong_link_comments) or (
                d.day_dropped_links >= cfg.link_heavy_strong_links
                and drops >= cfg.link_drop_comments
                and d.day_link_comments == drops
                and n - drops <= cfg.link_drop_plain_comments
            )
            self._fire(d, LINK_HEAVY_NEWCOMER, ts, cfg.strong_weight if strong else cfg.weak_weight)
            fired = True
        elif d.fired is not None:
            d.fired[LINK_HEAVY_NEWCOMER] = _NEVER
        return fired

    def _duplicate(self, d: _Detail, ev: EventRecord, fp: int, ts: float, established: bool) -> bool:
        cfg = self.config
        target = ev.target_id or ev.event_id  # a top-level post is a place of its own
        recent, fps = d.recent, d.fps
        if recent is None or fps is None:
            recent, fps = d.recent, d.fps = [], []
        max_h = cfg.duplicate_max_hamming
        has_link = ev.link_count > 0
        # Near-duplicates group transitively (A~B and B~C: one text), as spinners vary a few bits per copy.
        # Nearly every comment matches nothing: find that out in C before looking closer.
        window = cfg.duplicate_seconds
        label = fp
        hits: set[int] | None = None
        if fps and min(map(int.bit_count, map(fp.__xor__, fps))) <= max_h:
            for rfp, (rts, _, _, rlabel) in zip(fps, recent, strict=True):
                if (rfp ^ fp).bit_count() <= max_h and abs(ts - rts) < window:
                    if hits is None:
                        hits = set()
                    hits.add(rlabel)
        fps.append(fp)
        if hits is not None:
            label = min(hits)
            if len(hits) > 1:
                recent[:] = [(t, g, k, label if lab in hits else lab) for t, g, k, lab in recent]
        recent.append((ts, target, has_link, label))
        if len(fps) > cfg.duplicate_memory:
            del fps[0]
            del recent[0]
        if hits is None:
            d.texts += 1  # a text of its own, not a copy of a recent one
            return False
        group = [i for i, (t, _, _, lab) in enumerate(recent) if lab == label and abs(ts - t) < window]
        if len({recent[i][1] for i in group}) < cfg.duplicate_posts:
            return False
        if cfg.duplicate_needs_link and not any(recent[i][2] for i in group):
            return False
        reviewed = d.reviewed_fps
        if reviewed and any(min(map(int.bit_count, map(fps[i].__xor__, reviewed))) <= max_h for i in group):
            return False  # a moderator has seen this text and cleared it
        self._fire(d, DUPLICATE_CONTENT, ts, cfg.weak_weight if established else cfg.strong_weight)
        return True

    def _like_event(self, i: int, mid: str, ts: float) -> bool:
        cfg = self.config
        horizon = self._last[i] - cfg.burst_likes_seconds
        times = self._likes.get(mid)
        if times is None:
            one = self._like[i]
            if one == _NEVER or (one < horizon and ts >= horizon):  # the window holds only this like
                self._like[i] = ts
                return False
            times = [one]
        j = _insert(times, ts, cfg.burst_likes + 1, horizon)
        if len(times) > 1:
            if mid not in self._likes:
                self._likes[mid] = times
                self._like[i] = _NEVER
                self._windowed[mid] = i
        else:  # one like or none left in the window: back in the column
            self._like[i] = times[0] if times else _NEVER
            self._likes.pop(mid, None)
        if j >= 0 and _dense(times, j, cfg.burst_likes, cfg.burst_likes_seconds):
            self._fire(self._detail(mid), BURST_LIKES, ts, cfg.strong_weight)
            return True
        return False

    def _fire(self, d: _Detail, signal: int, ts: float, weight: float) -> None:
        if d.fired is None or d.weights is None:
            d.fired = [_NEVER] * _SIGNALS
            d.weights = [0.0] * _SIGNALS
        d.fired[signal] = ts
        d.weights[signal] = weight

    def _maybe_flag(self, i: int, mid: str, ev: EventRecord, ts: float) -> FlagRecord | None:
        d = self._details[mid]
        fired, weights = d.fired, d.weights
        assert fired is not None and weights is not None
        cfg = self.config
        span = cfg.combine_seconds
        score = 0.0
        reasons: list[str] = []
        for sig in range(_SIGNALS):
            if abs(ts - fired[sig]) < span:
                score += weights[sig]
                reasons.append(REASONS[sig])
        st = self._state[i]
        self._any_status = True
        if score < cfg.flag_score:
            # Weak evidence: once, to a moderator (a cleared member has had its review).
            if score < cfg.review_score or st & _STATUS_MASK != _NONE:
                return None
            d.version += 1
            self._state[i] = (st & ~_STATUS_MASK) | _REVIEW
            d.flag = FlagRecord(
                self.community_id, mid, ts, round(score, 3), tuple(reasons), STATUS_REVIEW, ev.event_id,
                version=d.version,
            )
            return d.flag
        d.version += 1
        self._state[i] = (st & ~_STATUS_MASK) | _FLAGGED
        d.flag = FlagRecord(
            self.community_id, mid, ts, round(score, 3), tuple(reasons), STATUS_FLAGGED, ev.event_id,
            version=d.version,
        )
        self._stash_reviewed(d)  # what a moderator will review; reviewed for good if they clear it
        self._drop_windows(i, mid)  # a flagged member is judged again only after a clear, on new evidence
        return d.flag

    def _stash_reviewed(self, d: _Detail) -> None:
        if d.fps:
            d.reviewed_fps = ((d.reviewed_fps or []) + d.fps)[-self.config.duplicate_memory :]

    def _sweep(self, now: float) -> bool:
        """Drop the window state of members idle for `idle_seconds` of event time; now and then forget some.

        True when members were forgotten (the rows of the others changed)."""
        idle_before = now - self.config.idle_seconds
        self._swept_before = idle_before
        last = self._last
        for mid, i in [(mid, i) for mid, i in self._windowed.items() if last[i] < idle_before]:
            self._drop_windows(i, mid)
        self._next_sweep = now + self.config.sweep_seconds
        # Looking for members to forget is a look at every member held: done once a quarter more members
        # are held than after the last look, or `forget_seconds` after it. Cheap (a few steps per member
        # arrived, one per member held a week), and a member goes at most `forget_seconds` after it may.
        held = len(self._members)
        forgot = False
        if held >= self._forget_at or now >= self._next_forget:
            forgot = self._forget(now)
            held = len(self._members)
            self._forget_at = held + (held >> 2) + 1
            self._next_forget = now + self.config.forget_seconds
        return forgot

    def _forget(self, now: float) -> bool:
        """Forget the members of whom nothing can matter again but that they are no newcomers, and how many
        comments they wrote (up to the established count).

        That is: status none, never moderated (nothing forgiven or reviewed, no flag), not
        staff, idle for `forget_seconds`, and past their newcomer and established windows by
        then (or exempt). With `forget_seconds` at least the scorer's lateness, every later
        event of the member is newer than all it did and past both windows, so the member
        recreated on its return (`observe`, `apply_moderation`, resolved by `_resolve`) gets
        exactly the flags it would have got. Its windows went in `_sweep` already (idle for longer).
        """
        cfg = self.config
        forget_before = now - max(cfg.forget_seconds, cfg.idle_seconds)
        settled = max(cfg.newcomer_seconds, cfg.established_seconds)
        id_of, details = self._members.id_of, self._details
        quiet_limit = cfg.established_comments
        n = len(self._members)
        # Who may go, by the columns alone (vectorised): idle, status none, not staff, never moderated,
        # and past the newcomer and established windows (or exempt). Then, one by one: no flag.
        last = np.frombuffer(self._last, np.float64)
        start = np.frombuffer(self._start, np.float64)
        state = np.frombuffer(self._state, np.uint8)
        candidates = np.flatnonzero(
            (last < forget_before)
            & ((state & (_STATUS_MASK | _STAFF | _MODERATED)) == 0)
            & (((state & _NOT_NEW) != 0) | (forget_before - start >= settled))
        )
        gone: list[int] = []
        for i in candidates.tolist():
            mid = id_of(i)
            d = details.get(mid)
            if d is not None and d.flag is not None:
                continue
            if state[i] & _UNRESOLVED:  # never commented since it came back (or new): forgotten as it was
                found = self._forgotten.lookup(mid)
                seen = 0 if found is None else found
            else:
                seen = -1 if state[i] & _ESTABLISHED else (d.texts if d is not None else 0)
            self._forgotten.add(mid, seen if seen < quiet_limit else -1)
            details.pop(mid, None)
            self._likes.pop(mid, None)
            self._windowed.pop(mid, None)
            gone.append(i)
        if not gone:
            return False
        self._forgotten.fold()
        self._batch_rows = None
        kept = np.ones(n, bool)
        kept[gone] = False
        keep = np.flatnonzero(kept)
        self._members = self._members.keep(keep)
        if self._windowed:  # rows move down by the number of members gone before them
            shift = np.cumsum(~kept)
            rows = np.fromiter(self._windowed.values(), np.int64, len(self._windowed))
            self._windowed = dict(zip(self._windowed, (rows - shift[rows]).tolist(), strict=True))
        self._start = array("d", start[keep].tobytes())
        self._last = array("d", last[keep].tobytes())
        self._like = array("d", np.frombuffer(self._like, np.float64)[keep].tobytes())
        self._state = bytearray(state[keep].tobytes())
        return True

    # --- moderation -----------------------------------------------------------------

    def apply_moderation(
        self, member_id: str, action: str, moderator: str, reason: str, ts: float
    ) -> FlagRecord | None:
        """Apply a moderator's `confirm` or `clear` (at event time `ts`); the updated flag, if any.

        `confirm` excludes the member for good (a member never flagged gets a flag
        without reasons). `clear` forgives all evidence up to `ts` and re-admits the
        member; what the moderator reviewed stays reviewed (first-day signals, the
        content seen), so only a new burst or new duplicated content flags again.
        A clear of a member never flagged still forgives, so the outcome does not
        depend on whether the decision was applied before or after the flag on replay.
        A member in `review` is confirmed the same way; cleared, its status is `dismissed` (it never
        was a spam flag: analytics count flags without reviews and dismissals).
        `reason` is kept with the decision (engagement.moderation), not on the flag.
        """
        if action not in ("confirm", "clear"):
            raise ValueError(f"moderation action {action!r} is neither 'confirm' nor 'clear'")
        i = self._members.get(member_id)
        if i is None:  # decided before any event of the member reached us (replay order), or forgotten
            i = self._add(member_id, _UNSEEN)
            self._last[i] = _NEVER
        if self._state[i] & _UNRESOLVED:
            self._resolve(i, member_id)
        d = self._detail(member_id)
        st = self._state[i]
        if action == "clear":
            if ts > d.forgiven:
                d.forgiven = ts
            st |= _MODERATED
            d.newcomer_reviewed = True
            self._stash_reviewed(d)
            self._drop_windows(i, member_id)
            code = st & _STATUS_MASK
            if d.flag is None or code in (_CLEARED, _DISMISSED):
                self._state[i] = st
                return None
            status = STATUS_DISMISSED if code == _REVIEW else STATUS_CLEARED
        else:
            if st & _STATUS_MASK == _CONFIRMED:
                return None
            status = STATUS_CONFIRMED
        self._state[i] = (st & ~_STATUS_MASK) | _STATUS_CODE[status]
        self._any_status = True
        d.version += 1
        base = d.flag or FlagRecord(self.community_id, member_id, ts, 0.0, (), status, "")
        d.flag = FlagRecord(
            base.community_id, base.member_id, base.flagged_at, base.score, base.reasons, status,
            base.event_id, moderator, ts, d.version,
        )
        return d.flag

    def apply_decision(self, decision: ModerationDecision) -> FlagRecord | None:
        """`apply_moderation` for a decision as it arrives from the gateway."""
        return self.apply_moderation(
            decision.member_id, decision.action.value, decision.moderator, decision.reason,
            decision.decided_at.timestamp(),
        )

    # --- queries ------------------------------------------------------------------

    def _code(self, member_id: str) -> int:
        i = self._members.get(member_id)
        return _NONE if i is None else self._state[i] & _STATUS_MASK

    def status_codes(self, member_ids: Sequence[str]) -> npt.NDArray[np.uint8]:
        """The status of each of `member_ids` as its code (the index in `STATUSES`; 0: none, or not held)."""
        n = len(member_ids)
        if not self._any_status:
            return np.zeros(n, np.uint8)
        rows = self._batch_rows or {}
        get = self._members.get
        found = [-1] * n
        for k, mid in enumerate(member_ids):
            i = rows.get(mid)
            if i is None:
                i = get(mid)
            if i is not None:
                found[k] = i
        at = np.array(found, np.int64)
        held = at >= 0
        codes = np.zeros(n, np.uint8)
        codes[held] = np.frombuffer(self._state, np.uint8)[at[held]] & _STATUS_MASK
        return codes

    def is_excluded(self, member_id: str) -> bool:
        """Flagged or confirmed: kept out of the scores (a member in review is not)."""
        return self._code(member_id) in _EXCLUDED_CODES

    def status(self, member_id: str) -> str:
        return STATUSES[self._code(member_id)]

    def flag(self, member_id: str) -> FlagRecord | None:
        d = self._details.get(member_id)
        return None if d is None else d.flag

    def holds(self, member_id: str) -> bool:
        """Whether the member is held in full (not forgotten, or back since)."""
        return self._members.get(member_id) is not None

    def excluded_members(self) -> list[str]:
        state = self._state
        id_of = self._members.id_of
        return sorted(id_of(i) for i in range(len(state)) if state[i] & _STATUS_MASK in _EXCLUDED_CODES)

    def tracked_members(self) -> tuple[int, int]:
        """(members held in full, those of them holding sparse window state); forgotten: `forgotten_members`."""
        return len(self._members), len(self._windowed)

    def forgotten_members(self) -> int:
        """Members forgotten (8 bytes each); one that came back is also held in full again."""
        return len(self._forgotten)

    # --- state for the Faust table --------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON values (orjson-serialisable): columns as base64, details by id."""
        details: dict[str, list[Any]] = {}
        for mid, d in self._details.items():
            details[mid] = [
                _out(d.forgiven),
                d.newcomer_reviewed,
                d.texts,
                d.comments,
                None if d.recent is None or d.fps is None else [
                    [ts, fp, target, link, label]
                    for fp, (ts, target, link, label) in zip(d.fps, d.recent, strict=True)
                ],
                d.reviewed_fps,
                [d.day_comments, d.day_links, d.day_link_comments, d.day_dropped_links, d.day_dropped_comments,
                 d.day_replies],
                None if d.fired is None else [_out(f) for f in d.fired],
                d.weights,
                None if d.flag is None else d.flag.to_json(),
                d.version,
            ]
        forgotten = self._forgotten
        return {
            "v": SNAPSHOT_VERSION,
            "community_id": self.community_id,
            "watermark": _out(self._watermark),
            "next_sweep": _out(self._next_sweep),
            "swept_before": _out(self._swept_before),
            "forget_at": self._forget_at,
            "next_forget": _out(self._next_forget),
            "ids": self._members.ids(),
            "start": array_to_b64(self._start),  # little-endian float64, +-inf as is
            "last": array_to_b64(self._last),
            "like": array_to_b64(self._like),
            "state": array_to_b64(array("B", self._state)),
            "likes": self._likes,
            "details": details,
            # sorted little-endian int64 hashes: the active ones, then quiet ones by comments written
            "forgotten": [array_to_b64(forgotten.active.hashes())]
            + [array_to_b64(q.hashes()) for q in forgotten.quiet],
        }

    @classmethod
    def restore(cls, data: dict[str, Any], config: SpamConfig | None = None) -> SpamDetector:
        """A detector continuing exactly where the one that took `data` (a `snapshot()`) stopped."""
        version = data.get("v")
        if version not in _RESTORABLE:
            raise ValueError(
                f"spam snapshot version {version!r} is not one of {_RESTORABLE}; "
                "rebuild the spam state by replaying the event log"
            )
        det = cls(data["community_id"], config)
        det._watermark = _in(data["watermark"], _NEVER)
        det._next_sweep = _in(data["next_sweep"], _NEVER)
        det._forget_at = int(data.get("forget_at", 0))  # version 1 has none of these
        det._next_forget = _in(data.get("next_forget"), _NEVER)
        if version == 3:
            det._restore_columns(data)
        else:
            det._restore_rows(data)
        det._any_status = bool((np.frombuffer(det._state, np.uint8) & _STATUS_MASK).any())
        det._windowed = {
            mid: i for i, mid in enumerate(det._members.ids())
            if mid in det._likes or (mid in det._details and det._details[mid].holds_windows())
        }
        return det

    def _restore_columns(self, data: dict[str, Any]) -> None:
        self._swept_before = _in(data.get("swept_before"), _NEVER)
        self._members = MemberIndex.from_ids([str(mid) for mid in data["ids"]])
        self._start = array_from_b64("d", data["start"])
        self._last = array_from_b64("d", data["last"])
        self._like = array_from_b64("d", data["like"])
        self._state = bytearray(array_from_b64("B", data["state"]).tobytes())
        self._likes = {str(mid): [float(t) for t in times] for mid, times in data["likes"].items()}
        for mid, row in data["details"].items():
            forgiven, reviewed, seen, comments, recent, reviewed_fps, days, fired, weights, flag, version = row
            d = self._details[str(mid)] = _Detail()
            d.forgiven = _in(forgiven, _NEVER)
            d.newcomer_reviewed = bool(reviewed)
            d.texts = int(seen)
            d.comments = None if comments is None else [float(t) for t in comments]
            _restore_detail(d, recent, reviewed_fps, days, fired, weights, flag, version)
        active, *quiet = data["forgotten"]
        self._forgotten.active = HashSet(array_from_b64("q", active))
        for c, text in enumerate(quiet):
            hashes = HashSet(array_from_b64("q", text))
            if c < len(self._forgotten.quiet):
                self._forgotten.quiet[c] = hashes
            else:  # restored with a lower established count: these are active now
                merged = sorted({*self._forgotten.active.hashes(), *hashes.hashes()})
                self._forgotten.active = HashSet(array("q", merged))

    def _restore_rows(self, data: dict[str, Any]) -> None:
        """Versions 1 and 2: a row per member. Their forgotten veterans count as active (they were weak
        then), and so does any member that had commented (the count was not kept)."""
        self._forgotten.active = HashSet(array_from_b64("q", data.get("veterans", "")))
        for mid, row in data["members"].items():
            start, last_ts, staff, exempt, status, forgiven, comments, likes = row[:8]
            i = self._add(str(mid), _in(start, _UNSEEN))
            self._last[i] = _in(last_ts, _NEVER)
            st = _STATUS_CODE[str(status)]
            if staff:
                st |= _STAFF
            if exempt is None:
                st |= _UNRESOLVED
            elif exempt:
                st |= _NOT_NEW | _ESTABLISHED
            if forgiven is not None:
                st |= _MODERATED
            self._state[i] = st
            if likes:
                if len(likes) == 1:
                    self._like[i] = float(likes[0])
                else:
                    self._likes[str(mid)] = [float(t) for t in likes]
            if comments is not None or len(row) > 8 or forgiven is not None:
                d = self._details[str(mid)] = _Detail()
                d.forgiven = _in(forgiven, _NEVER)
                d.comments = None if comments is None else [float(t) for t in comments]
                d.texts = self.config.established_comments if comments is not None or len(row) > 8 else 0
                if len(row) > 8:
                    reviewed, recent, reviewed_fps, days, fired, weights, flag, version = row[8:]
                    d.newcomer_reviewed = bool(reviewed)
                    _restore_detail(d, recent, reviewed_fps, days, fired, weights, flag, version)


def _restore_detail(
    d: _Detail, recent: Any, reviewed_fps: Any, days: Any, fired: Any, weights: Any, flag: Any, version: Any
) -> None:
    if recent is not None:
        d.fps = [int(fp) for _, fp, _, _, _ in recent]
        d.recent = [(float(t), str(g), bool(k), int(lab)) for t, _, g, k, lab in recent]
    d.reviewed_fps = None if reviewed_fps is None else [int(fp) for fp in reviewed_fps]
    counts = [int(x) for x in days]
    if len(counts) == 4:  # versions 1 and 2 counted fewer: every dropped link its own comment, every comment a reply
        counts += [min(counts[2], counts[3]), counts[0]]
    (d.day_comments, d.day_links, d.day_link_comments, d.day_dropped_links, d.day_dropped_comments,
     d.day_replies) = counts
    d.fired = None if fired is None else [_in(f, _NEVER) for f in fired]
    d.weights = None if weights is None else [float(w) for w in weights]
    d.flag = None if flag is None else FlagRecord.from_json(flag)
    d.version = int(version)


def _out(x: float) -> float | None:
    """JSON has no infinities: the open ends (never, not seen yet) travel as null."""
    return None if x in (_NEVER, _UNSEEN) else x


def _in(x: float | None, default: float) -> float:
    return default if x is None else float(x)
