"""The spam-profile detector of one community: events in log order in, flags out.

Pure and deterministic: windows run on event time (`EventRecord.ts`), never on a
clock, and every decision depends only on the events and moderation decisions
seen so far, in their order, so replaying the log gives the same flags whatever
the batch boundaries. Signals, weights and moderation semantics: docs/spam.md.
Members with nothing left to remember are forgotten but for an 8-byte hash that
keeps them from counting as newcomers again (`_forget`, docs/spam.md "Memory and speed").
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from hashlib import blake2b
from typing import Any

from schemas.outputs import ModerationDecision
from streams.event_record import COMMENT, JOIN, LIKE, MEMBER, EventRecord
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
    STATUS_FLAGGED,
    STATUS_NONE,
    FlagRecord,
)

SNAPSHOT_VERSION = 2  # 2 adds the forgotten veterans; a reader of 1 would take them for newcomers
_RESTORABLE = (1, 2)
_NEVER = float("-inf")
_UNSEEN = float("inf")
_SIGNALS = len(REASONS)
_EXCLUDED = (STATUS_FLAGGED, STATUS_CONFIRMED)
# A member's second event of a kind at the very same millisecond is taken for a re-delivery of the first
# (a webhook retried, a message produced twice): it must not make a burst or count twice.
_REDELIVERED = -(1 << 30)


class _Detail:
    """The part of a member's state only commenters, flagged or moderated members need."""

    __slots__ = (
        "day_comments",
        "day_dropped_links",
        "day_link_comments",
        "day_links",
        "fired",
        "flag",
        "fps",
        "newcomer_reviewed",
        "recent",
        "reviewed_fps",
        "version",
        "weights",
    )

    def __init__(self) -> None:
        self.newcomer_reviewed = False  # cleared once: first-day signals stay off
        self.fps: list[int] | None = None  # fingerprints of recent comments
        # ...and their (ts, target, has link, label of their group of near-duplicates)
        self.recent: list[tuple[float, str, bool, int]] | None = None
        self.reviewed_fps: list[int] | None = None  # content a moderator has seen
        self.day_comments = 0  # first-day counters
        self.day_links = 0
        self.day_link_comments = 0
        self.day_dropped_links = 0  # links left under other members' content
        self.fired: list[float] | None = None  # per signal: event time it last fired
        self.weights: list[float] | None = None  # per signal: its weight when it last fired
        self.flag: FlagRecord | None = None
        self.version = 0


class _Member:
    """What the detector remembers of one member: small for the many who only join and like."""

    __slots__ = ("comments", "detail", "exempt", "forgiven", "last_ts", "likes", "staff", "start", "status")

    def __init__(self, ts: float) -> None:
        self.start = ts  # the newcomer clock: the earliest event time seen (normally the join)
        self.last_ts = ts
        self.staff = False
        # Never a newcomer, duplicates weak: joined from an exempt source (import), or back after being
        # forgotten as a veteran (older than both windows when forgotten, see `_forget`). None: not looked
        # up yet among the veterans; done at the first comment, as most members never write one.
        self.exempt: bool | None = False
        self.status = STATUS_NONE
        self.forgiven = _NEVER  # evidence at or before this time was cleared by a moderator
        self.comments: list[float] | None = None  # sorted recent comment times
        self.likes: list[float] | None = None  # sorted recent like times
        self.detail: _Detail | None = None

    def more(self) -> _Detail:
        d = self.detail
        if d is None:
            d = self.detail = _Detail()
        return d

    def drop_windows(self) -> None:
        self.comments = self.likes = None
        d = self.detail
        if d is not None:
            d.recent = d.fps = None
            d.fired = d.weights = None


class _Veterans:
    """Members forgotten (idle, and long past their first week), as stable 64-bit hashes of their ids
    (not `hash()`: that differs per process, and snapshots restore in another one).

    A sorted int64 array (8 bytes a member), plus a set of the latest additions folded into it
    once it outgrows an eighth of the array. Odds that a new member's id collides with one of
    n veterans (and so skips the newcomer signals): n / 2^64, 5e-14 at a million.
    """

    __slots__ = ("frozen", "recent")

    def __init__(self, frozen: array[int] | None = None) -> None:
        self.frozen: array[int] = array("q") if frozen is None else frozen
        self.recent: set[int] = set()

    @staticmethod
    def member_hash(member_id: str) -> int:
        return int.from_bytes(blake2b(member_id.encode(), digest_size=8).digest(), "little", signed=True)

    def holds(self, member_id: str) -> bool:
        if not self.frozen and not self.recent:  # nobody forgotten yet: skip the hashing
            return False
        return self._holds(self.member_hash(member_id))

    def _holds(self, h: int) -> bool:
        if h in self.recent:
            return True
        frozen = self.frozen
        i = bisect_left(frozen, h)
        return i < len(frozen) and frozen[i] == h

    def add(self, member_id: str) -> None:
        h = self.member_hash(member_id)
        if not self._holds(h):  # a veteran who came back and is forgotten again is there already
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
        self._members: dict[str, _Member] = {}
        self._windowed: dict[str, _Member] = {}  # members holding window state, swept when idle
        self._veterans = _Veterans()  # members forgotten: no newcomers when they come back
        self._watermark = _NEVER
        self._next_sweep = _NEVER
        self._forget_at = 0  # members held when the next sweep looks for ones to forget, or...
        self._next_forget = _NEVER  # ...the event time when it does anyway

    # --- events -------------------------------------------------------------------

    def observe(self, events: Sequence[EventRecord]) -> list[FlagRecord]:
        """Feed events in log order; the flags they tipped, each at its tipping event."""
        out: list[FlagRecord] = []
        members = self._members
        for ev in events:
            ts = ev.ts
            if ts > self._watermark:
                self._watermark = ts
                if ts >= self._next_sweep:
                    self._sweep(ts)
            mid = ev.member_id
            m = members.get(mid)
            if m is None:
                m = members[mid] = _Member(ts)
                if self._veterans:
                    m.exempt = None  # perhaps a veteran back: looked up at its first comment
            else:
                if ts < m.start:
                    m.start = ts
                if ts > m.last_ts:
                    m.last_ts = ts
            if ev.role != MEMBER:
                m.staff = True
            typ = ev.type
            if typ == JOIN:
                if ev.join_source in self.config.exempt_join_sources:
                    m.exempt = True
                continue
            if m.staff or m.status in _EXCLUDED or ts <= m.forgiven:
                continue
            if typ == COMMENT:
                fired = self._comment(m, mid, ev, ts)
            elif typ == LIKE:
                fired = self._like(m, mid, ts)
            else:
                continue
            if fired:
                flag = self._maybe_flag(m, mid, ev, ts)
                if flag is not None:
                    out.append(flag)
        return out

    def _comment(self, m: _Member, mid: str, ev: EventRecord, ts: float) -> bool:
        cfg = self.config
        fired = False
        if m.exempt is None:
            m.exempt = self._veterans.holds(mid)
        # Burst.
        times = m.comments
        if times is None:
            times = m.comments = []
            self._windowed[mid] = m
        i = _insert(times, ts, cfg.burst_long_comments + 1, m.last_ts - cfg.burst_long_seconds)
        if i == _REDELIVERED:
            return False
        if i >= 0 and (
            _dense(times, i, cfg.burst_short_comments, cfg.burst_short_seconds)
            or _dense(times, i, cfg.burst_long_comments, cfg.burst_long_seconds)
        ):
            self._fire(m, BURST_COMMENTS, ts, cfg.strong_weight)
            fired = True
        # Duplicate content.
        fp = ev.fingerprint
        if fp is not None:
            if self._duplicate(m, ev, fp, ts):
                fired = True
        # Newcomer signals describe the first day so far, so they hold or not at each comment: a launch-day
        # newcomer whose first posts carried links is not link-heavy any more once most of their posts don't.
        if not m.exempt and ts - m.start < cfg.newcomer_seconds:
            d = m.more()
            if d.newcomer_reviewed:
                return fired
            d.day_comments += 1
            if ev.link_count:
                d.day_links += ev.link_count
                d.day_link_comments += 1
                if ev.target_author_id is not None and ev.target_author_id != mid:
                    d.day_dropped_links += ev.link_count
            if d.day_comments > cfg.velocity_comments:
                strong = d.day_comments > cfg.velocity_strong_comments
                self._fire(m, FIRST_DAY_VELOCITY, ts, cfg.strong_weight if strong else cfg.weak_weight)
                fired = True
            if (
                d.day_links >= cfg.link_heavy_links
                and d.day_link_comments >= cfg.link_heavy_min_link_share * d.day_comments
            ):
                strong = (
                    d.day_dropped_links >= cfg.link_heavy_strong_links
                    and d.day_link_comments >= cfg.link_heavy_strong_link_comments
                    and d.day_link_comments >= cfg.link_heavy_strong_link_share * d.day_comments
                )
                self._fire(m, LINK_HEAVY_NEWCOMER, ts, cfg.strong_weight if strong else cfg.weak_weight)
                fired = True
            elif d.fired is not None:
                d.fired[LINK_HEAVY_NEWCOMER] = _NEVER
        return fired

    def _duplicate(self, m: _Member, ev: EventRecord, fp: int, ts: float) -> bool:
        cfg = self.config
        target = ev.target_id or ev.event_id  # a top-level post is a place of its own
        d = m.more()
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
            return False
        group = [i for i, (t, _, _, lab) in enumerate(recent) if lab == label and abs(ts - t) < window]
        if len({recent[i][1] for i in group}) < cfg.duplicate_posts:
            return False
        if cfg.duplicate_needs_link and not any(recent[i][2] for i in group):
            return False
        reviewed = d.reviewed_fps
        if reviewed and any(min(map(int.bit_count, map(fps[i].__xor__, reviewed))) <= max_h for i in group):
            return False  # a moderator has seen this text and cleared it
        young = not m.exempt and ts - m.start < cfg.established_seconds
        self._fire(m, DUPLICATE_CONTENT, ts, cfg.strong_weight if young else cfg.weak_weight)
        return True

    def _like(self, m: _Member, mid: str, ts: float) -> bool:
        cfg = self.config
        times = m.likes
        if times is None:
            times = m.likes = []
            self._windowed[mid] = m
        i = _insert(times, ts, cfg.burst_likes + 1, m.last_ts - cfg.burst_likes_seconds)
        if i >= 0 and _dense(times, i, cfg.burst_likes, cfg.burst_likes_seconds):
            self._fire(m, BURST_LIKES, ts, self.config.strong_weight)
            return True
        return False

    def _fire(self, m: _Member, signal: int, ts: float, weight: float) -> None:
        d = m.more()
        if d.fired is None or d.weights is None:
            d.fired = [_NEVER] * _SIGNALS
            d.weights = [0.0] * _SIGNALS
        d.fired[signal] = ts
        d.weights[signal] = weight

    def _maybe_flag(self, m: _Member, mid: str, ev: EventRecord, ts: float) -> FlagRecord | None:
        d = m.more()
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
        if score < cfg.flag_score:
            return None
        d.version += 1
        m.status = STATUS_FLAGGED
        d.flag = FlagRecord(
            self.community_id, mid, ts, round(score, 3), tuple(reasons), STATUS_FLAGGED, ev.event_id,
            version=d.version,
        )
        self._stash_reviewed(d)  # what a moderator will review; reviewed for good if they clear it
        m.drop_windows()  # a flagged member is judged again only after a clear, on new evidence
        self._windowed.pop(mid, None)
        return d.flag

    def _stash_reviewed(self, d: _Detail) -> None:
        if d.fps:
            d.reviewed_fps = ((d.reviewed_fps or []) + d.fps)[-self.config.duplicate_memory :]

    def _sweep(self, now: float) -> None:
        """Drop the window state of members idle for `idle_seconds` of event time; now and then forget some."""
        idle_before = now - self.config.idle_seconds
        for mid in [mid for mid, m in self._windowed.items() if m.last_ts < idle_before]:
            self._windowed.pop(mid).drop_windows()
        self._next_sweep = now + self.config.sweep_seconds
        # Looking for members to forget is a look at every member held: done once a quarter more members
        # are held than after the last look, or `forget_seconds` after it. Cheap (a few steps per member
        # arrived, one per member held a week), and a member goes at most `forget_seconds` after it may.
        held = len(self._members)
        if held >= self._forget_at or now >= self._next_forget:
            self._forget(now)
            held = len(self._members)
            self._forget_at = held + (held >> 2) + 1
            self._next_forget = now + self.config.forget_seconds

    def _forget(self, now: float) -> None:
        """Forget the members of whom nothing can matter again but that they are no newcomers.

        That is: status none, never moderated (nothing forgiven or reviewed, no flag), not
        staff, idle for `forget_seconds`, and past their newcomer and established windows by
        then (or exempt). With `forget_seconds` at least the scorer's lateness, every later
        event of the member is newer than all it did and past both windows, so the veteran
        recreated `exempt` on its return (`observe`, `apply_moderation`) gets exactly the
        flags it would have got. Its windows went in `_sweep` already (idle for longer).
        """
        cfg = self.config
        forget_before = now - max(cfg.forget_seconds, cfg.idle_seconds)
        settled = max(cfg.newcomer_seconds, cfg.established_seconds)
        veterans = self._veterans
        gone: list[str] = []
        for mid, m in self._members.items():
            if m.last_ts >= forget_before or m.status != STATUS_NONE or m.forgiven != _NEVER or m.staff:
                continue
            # (a veteran back that never commented is not looked up here: it goes once settled again)
            if m.exempt or forget_before - m.start >= settled:
                gone.append(mid)
        if gone:
            for mid in gone:
                del self._members[mid]
                veterans.add(mid)
            veterans.fold()

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
        `reason` is kept with the decision (engagement.moderation), not on the flag.
        """
        if action not in ("confirm", "clear"):
            raise ValueError(f"moderation action {action!r} is neither 'confirm' nor 'clear'")
        m = self._members.get(member_id)
        if m is None:  # decided before any event of the member reached us (replay order), or forgotten
            m = self._members[member_id] = _Member(_UNSEEN)
            m.last_ts = _NEVER
            m.exempt = self._veterans.holds(member_id)
        d = m.more()
        if action == "clear":
            if ts > m.forgiven:
                m.forgiven = ts
            d.newcomer_reviewed = True
            self._stash_reviewed(d)
            m.drop_windows()
            self._windowed.pop(member_id, None)
            if d.flag is None or m.status == STATUS_CLEARED:
                return None
            status = STATUS_CLEARED
        else:
            if m.status == STATUS_CONFIRMED:
                return None
            status = STATUS_CONFIRMED
        m.status = status
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

    def is_excluded(self, member_id: str) -> bool:
        """Flagged or confirmed: kept out of the scores."""
        m = self._members.get(member_id)
        return m is not None and m.status in _EXCLUDED

    def status(self, member_id: str) -> str:
        m = self._members.get(member_id)
        return STATUS_NONE if m is None else m.status

    def flag(self, member_id: str) -> FlagRecord | None:
        m = self._members.get(member_id)
        return None if m is None or m.detail is None else m.detail.flag

    def excluded_members(self) -> list[str]:
        return sorted(mid for mid, m in self._members.items() if m.status in _EXCLUDED)

    def tracked_members(self) -> tuple[int, int]:
        """(members held in full, those of them holding window state); forgotten ones: `forgotten_members`."""
        return len(self._members), len(self._windowed)

    def forgotten_members(self) -> int:
        """Members forgotten as veterans (8 bytes each); one that came back is also held in full again."""
        return len(self._veterans)

    # --- state for the Faust table --------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON values (orjson-serialisable)."""
        members: dict[str, list[Any]] = {}
        for mid, m in self._members.items():
            row: list[Any] = [
                _out(m.start), _out(m.last_ts), m.staff, m.exempt, m.status, _out(m.forgiven),
                m.comments, m.likes,
            ]
            d = m.detail
            if d is not None:
                row += [
                    d.newcomer_reviewed,
                    None if d.recent is None or d.fps is None else [
                        [ts, fp, target, link, label]
                        for fp, (ts, target, link, label) in zip(d.fps, d.recent, strict=True)
                    ],
                    d.reviewed_fps,
                    [d.day_comments, d.day_links, d.day_link_comments, d.day_dropped_links],
                    None if d.fired is None else [_out(f) for f in d.fired],
                    d.weights,
                    None if d.flag is None else d.flag.to_json(),
                    d.version,
                ]
            members[mid] = row
        return {
            "v": SNAPSHOT_VERSION,
            "community_id": self.community_id,
            "watermark": _out(self._watermark),
            "next_sweep": _out(self._next_sweep),
            "forget_at": self._forget_at,
            "next_forget": _out(self._next_forget),
            "members": members,
            "veterans": array_to_b64(self._veterans.hashes()),  # sorted little-endian int64 hashes
        }

    @classmethod
    def restore(cls, data: dict[str, Any], config: SpamConfig | None = None) -> SpamDetector:
        """A detector continuing exactly where the one that took `data` (a `snapshot()`) stopped."""
        if data.get("v") not in _RESTORABLE:
            raise ValueError(
                f"spam snapshot version {data.get('v')!r} is not one of {_RESTORABLE}; "
                "rebuild the spam state by replaying the event log"
            )
        det = cls(data["community_id"], config)
        det._watermark = _in(data["watermark"], _NEVER)
        det._next_sweep = _in(data["next_sweep"], _NEVER)
        det._forget_at = int(data.get("forget_at", 0))  # version 1 has none of these
        det._next_forget = _in(data.get("next_forget"), _NEVER)
        det._veterans = _Veterans(array_from_b64("q", data.get("veterans", "")))
        for mid, row in data["members"].items():
            start, last_ts, staff, exempt, status, forgiven, comments, likes = row[:8]
            m = _Member(_in(start, _UNSEEN))
            m.last_ts = _in(last_ts, _NEVER)
            m.staff, m.exempt, m.status = bool(staff), None if exempt is None else bool(exempt), str(status)
            m.forgiven = _in(forgiven, _NEVER)
            m.comments = None if comments is None else [float(t) for t in comments]
            m.likes = None if likes is None else [float(t) for t in likes]
            if len(row) > 8:
                reviewed, recent, reviewed_fps, days, fired, weights, flag, version = row[8:]
                d = m.more()
                d.newcomer_reviewed = bool(reviewed)
                if recent is not None:
                    d.fps = [int(fp) for _, fp, _, _, _ in recent]
                    d.recent = [(float(t), str(g), bool(k), int(lab)) for t, _, g, k, lab in recent]
                d.reviewed_fps = None if reviewed_fps is None else [int(fp) for fp in reviewed_fps]
                d.day_comments, d.day_links, d.day_link_comments, d.day_dropped_links = (int(x) for x in days)
                d.fired = None if fired is None else [_in(f, _NEVER) for f in fired]
                d.weights = None if weights is None else [float(w) for w in weights]
                d.flag = None if flag is None else FlagRecord.from_json(flag)
                d.version = int(version)
            det._members[mid] = m
            if m.comments is not None or m.likes is not None:
                det._windowed[mid] = m
        return det


def _out(x: float) -> float | None:
    """JSON has no infinities: the open ends (never, not seen yet) travel as null."""
    return None if x in (_NEVER, _UNSEEN) else x


def _in(x: float | None, default: float) -> float:
    return default if x is None else float(x)
