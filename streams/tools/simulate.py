"""Seeded generator of realistic communities: canonical events plus who is spam.

It feeds the spam evaluation and the benchmarks. A community follows the 90-9-1
shape (lurkers, curators, creators), members arrive by source and churn (promotion
joiners fastest), owners post, a bot posts digests. Planted spam profiles of every
kind join, stay quiet for a while, then attack; hard negatives (prolific creators,
a greeter pasting the same welcome, a busy launch day, stock replies such as
"thanks!") look like spam to a naive rule. Deterministic for a seed; pure Python
and fast enough for a million events in a few seconds.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streams.event_record import (
    BOT,
    COMMENT,
    IMPORT,
    INVITE,
    JOIN,
    JOIN_SOURCE_NAMES,
    LIKE,
    MEMBER,
    MODERATOR,
    ORGANIC,
    OWNER,
    PROMOTION,
    ROLE_NAMES,
    SHARE,
    TYPE_NAMES,
)

_log = math.log

SPAM_KINDS: tuple[str, ...] = ("burst", "duplicate", "link_heavy", "link_dropper", "velocity")
LEGIT_KINDS: tuple[str, ...] = (
    "normal",
    "prolific_creator",
    "greeter",
    "launch_day",
    "link_sharer",
    "owner",
    "moderator",
    "bot",
)
# Legitimate members that look like spam to a naive rule (docs/spam.md, "The simulator").
HARD_NEGATIVE_KINDS: tuple[str, ...] = ("prolific_creator", "greeter", "launch_day", "link_sharer", "bot")
DEFAULT_START = datetime(2025, 3, 3, tzinfo=UTC)

DAY = 86_400.0
HOUR = 3_600.0
LURKER, CURATOR, CREATOR = 0, 1, 2

# Relative activity by local hour: quiet nights, a long afternoon and evening.
_DIURNAL = (
    1.0,
    0.6,
    0.4,
    0.3,
    0.3,
    0.5,
    1.0,
    2.0,
    3.5,
    4.5,
    5.0,
    5.0,
    5.0,
    5.0,
    5.0,
    5.0,
    5.0,
    5.5,
    6.0,
    6.5,
    6.0,
    5.0,
    3.5,
    2.0,
)
_DIURNAL_MAX = max(_DIURNAL)
# Mean active lifetime (days) and evergreen share by join source: promotion joiners leave fastest.
_LIFETIME_DAYS = {INVITE: 200.0, ORGANIC: 120.0, PROMOTION: 4.0, IMPORT: 90.0}
_EVERGREEN = {INVITE: 0.30, ORGANIC: 0.20, PROMOTION: 0.03, IMPORT: 0.25}
# "SS.mmmZ" for every millisecond of a minute: the tail of each timestamp, looked up, not formatted.
_SECONDS = [f"{ms // 1000:02d}.{ms % 1000:03d}Z" for ms in range(60_000)]
_HOURS_MINUTES = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
GREETER_HISTORY_DAYS = 14  # greeters' comments from before the window are in the log (their record)
_STOCK_PHRASES = 6  # "thanks!", "+1", "congrats!"...: one fingerprint each, shared by everybody


@dataclass(frozen=True)
class _Options:
    seed: int
    t0: float
    t1: float
    history_days: float
    prolific: int
    greeters: int
    link_sharers: int
    launch_day: bool
    promotion: bool
    imports: bool
    bots: bool
    spam: int | tuple[int, ...]
    spam_kinds: tuple[str, ...]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0.0:
        return 0
    if lam < 30.0:
        limit = math.exp(-lam)
        k = 0
        p = rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))


def _near(rng: random.Random, fp: int, max_flips: int = 2) -> int:
    """A near-duplicate fingerprint: `fp` with up to `max_flips` bits flipped."""
    for _ in range(rng.randint(0, max_flips)):
        fp ^= 1 << rng.randrange(64)
    return fp


@dataclass(frozen=True)
class AttackShape:
    """The ranges one kind of spam profile is drawn from (each profile draws its own values)."""

    quiet_seconds: tuple[float, float]  # join to attack, log-uniform
    likes_before: tuple[int, int]  # ordinary likes before the attack
    comments_before: tuple[int, int]  # ordinary comments (no link) before the attack
    comments: tuple[int, int]  # attack comments
    links: tuple[int, int]  # links in a comment that carries links
    link_share: tuple[float, float]  # share of attack comments carrying links
    gap_seconds: tuple[float, float]  # between attack comments (uniform for bursts, log-uniform otherwise)


MINUTE = 60.0
ATTACK_SHAPES: dict[str, AttackShape] = {
    # Sleepers: quiet for minutes to ten days (past the 7 days after which a member counts as old).
    "burst": AttackShape((2 * MINUTE, 10 * DAY), (0, 6), (0, 2), (8, 40), (1, 2), (0.0, 1.0), (0.5, 6.0)),
    "duplicate": AttackShape(
        (2 * MINUTE, 10 * DAY), (0, 6), (0, 2), (3, 12), (1, 2), (0.8, 1.0), (20.0, 30 * MINUTE)
    ),
    # Newcomer-day attacks: within hours of joining.
    "link_heavy": AttackShape((MINUTE, 16 * HOUR), (0, 4), (0, 0), (3, 8), (1, 3), (1.0, 1.0), (30.0, HOUR)),
    "link_dropper": AttackShape((MINUTE, 16 * HOUR), (0, 4), (0, 1), (2, 3), (2, 3), (1.0, 1.0), (MINUTE, 3 * HOUR)),
    "velocity": AttackShape(
        (MINUTE, 4 * HOUR), (0, 4), (0, 1), (25, 90), (1, 2), (0.0, 0.4), (2 * MINUTE, 12 * MINUTE)
    ),
}


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return lo * math.exp(rng.random() * math.log(hi / lo)) if hi > lo else lo


class _Community:
    """Builds one community's members and events (as compact tuples) in generation order."""

    def __init__(self, rng: random.Random, cidx: int, cid: str, size: int, opt: _Options) -> None:
        self.rng = rng
        self.n_spam = opt.spam if isinstance(opt.spam, int) else opt.spam[cidx]
        self.cidx = cidx
        self.cid = cid
        self.size = size
        self.opt = opt
        self.t0, self.t1 = opt.t0, opt.t1
        self.tz = rng.choice((-8.0, -5.0, 0.0, 1.0, 5.5, 9.0)) * HOUR  # local time of the community
        # Members (parallel lists).
        self.m_id: list[str] = []
        self.m_role: list[int] = []
        self.m_join: list[float] = []
        self.m_src: list[int] = []
        self.m_end: list[float] = []
        self.m_kind: list[str] = []
        self.m_spam: list[bool] = []
        self.m_join_seq: list[int] = []
        self.attack_seq: dict[int, int] = {}  # spam member -> seq of its first attack event (by time)
        # Events: (ms, type, member, target_seq, fingerprint, links, join_source); the seq is the index.
        self.ev: list[tuple[int, int, int, int, int | None, int, int]] = []
        # Comments before their targets are known: (ts, member, fp, links, mode, fixed_target, spam, attack).
        # mode 0: top-level post, 1: reply to recent content, 2: reply to `fixed_target` (a join).
        self.comments: list[tuple[float, int, int, int, int, int, bool, bool]] = []
        # Likes and shares before their targets are known: (ts, member, type, attack).
        self.actions: list[tuple[float, int, int, bool]] = []
        self.stock = [rng.getrandbits(64) for _ in range(_STOCK_PHRASES)]
        extra = self.n_spam + opt.link_sharers + 100
        self._ids = rng.sample(range(10 * (size + extra)), size + extra)

    # --- time ---------------------------------------------------------------------

    def when(self, a: float, b: float) -> float:
        """A time in [a, b) following the community's day rhythm."""
        rng, tz, span = self.rng, self.tz, b - a
        for _ in range(8):
            t = a + rng.random() * span
            if rng.random() * _DIURNAL_MAX < _DIURNAL[int(((t + tz) % DAY) // HOUR)]:
                return t
        return a + rng.random() * span

    # --- members ------------------------------------------------------------------

    def add_member(
        self, role: int, join: float, src: int, kind: str, spam: bool = False, end: float | None = None
    ) -> int:
        m = len(self.m_id)
        self.m_id.append(f"{self.cid}-u{self._ids[m]}")
        self.m_role.append(role)
        self.m_join.append(join)
        self.m_src.append(src)
        if end is None:
            rng = self.rng
            if rng.random() < _EVERGREEN[src]:
                end = math.inf
            else:
                end = join + rng.expovariate(1.0 / _LIFETIME_DAYS[src]) * DAY
        self.m_end.append(end)
        self.m_kind.append(kind)
        self.m_spam.append(spam)
        self.m_join_seq.append(len(self.ev))
        self.ev.append((int(join * 1000), JOIN, m, -1, None, 0, src))
        return m

    def active(self, m: int, a: float | None = None, b: float | None = None) -> tuple[float, float]:
        """The part of [a, b) (default: the simulated window) in which member `m` is active."""
        lo = max(self.m_join[m], self.t0 if a is None else a)
        hi = min(self.m_end[m], self.t1 if b is None else b)
        return lo, hi

    # --- activity -----------------------------------------------------------------

    def sessions(
        self,
        m: int,
        a: float,
        b: float,
        per_day: float,
        session_mean: float,
        gap_median: float,
        link_p: float,
        reply_p: float,
        stock_p: float = 0.05,
        max_links: int = 2,
        session_max: int = 6,
    ) -> None:
        """Comments in conversation sessions: a few messages tens of seconds apart, then a pause."""
        if b <= a or per_day <= 0.0:
            return
        rng = self.rng
        comments = self.comments
        stock = self.stock
        n_sessions = _poisson(rng, per_day * (b - a) / DAY / session_mean)
        stop = 1.0 / session_mean
        mu = math.log(gap_median)
        free = -math.inf  # one conversation at a time: a session starts after the previous one ended
        for start in sorted([self.when(a, b) for _ in range(n_sessions)]):
            t = max(start, free)
            k = 1
            while k < session_max and rng.random() > stop:
                k += 1
            for _ in range(k):
                if t >= b:
                    break
                if rng.random() < stock_p:
                    fp, links = _near(rng, stock[rng.randrange(_STOCK_PHRASES)], 1), 0
                else:
                    fp = rng.getrandbits(64)
                    links = rng.randint(1, max_links) if rng.random() < link_p else 0
                comments.append((t, m, fp, links, 1 if rng.random() < reply_p else 0, -1, False, False))
                t += 6.0 + rng.lognormvariate(mu, 0.7)
            free = t + 120.0 + rng.expovariate(1 / 600.0)

    def likes(
        self, m: int, a: float, b: float, per_day: float, spree_mean: float = 2.0, share_per_day: float = 0.0
    ) -> None:
        """Likes in short sprees (catching up on a thread), and a few shares."""
        if b <= a:
            return
        rng = self.rng
        actions = self.actions
        span_days = (b - a) / DAY
        if per_day > 0.0:
            stop = 1.0 / spree_mean
            for _ in range(_poisson(rng, per_day * span_days / spree_mean)):
                t = self.when(a, b)
                while True:
                    actions.append((t, m, LIKE, False))
                    if rng.random() < stop:
                        break
                    t += 2.0 - 10.0 * _log(1.0 - rng.random())
        for _ in range(_poisson(rng, share_per_day * span_days)):
            actions.append((self.when(a, b), m, SHARE, False))

    # --- the community ------------------------------------------------------------

    def build(self) -> None:
        rng, opt, t0, t1 = self.rng, self.opt, self.t0, self.t1
        n = self.size
        hist = max(opt.history_days, 1.0) * DAY
        founded = t0 - hist
        days = (t1 - t0) / DAY

        owner = self.add_member(OWNER, founded, INVITE, "owner", end=math.inf)
        staff = [owner]
        for _ in range(n // 1500):
            staff.append(
                self.add_member(
                    MODERATOR, founded + rng.random() * hist * 0.5, INVITE, "moderator", end=math.inf
                )
            )
        bot = self.add_member(BOT, founded + DAY, IMPORT, "bot", end=math.inf) if opt.bots else -1
        n_regular = max(0, n - len(self.m_id) - opt.prolific - opt.greeters - opt.link_sharers)

        # Who joins when, and from where. Most members joined before the window (their joins are in
        # the log, back to the founding); the rest arrive during it: steadily (organic, invites), in a
        # promotion surge that does not stay, in one bulk import, and on the launch day.
        n_new = int(n_regular * 0.3)
        n_launch = max(5, n_new // 5) if opt.launch_day and days >= 2 else 0
        n_promo = max(5, n_new // 4) if opt.promotion and days >= 2 else 0
        n_import = max(3, n_new // 10) if opt.imports and days >= 2 else 0
        n_steady = max(0, n_new - n_launch - n_promo - n_import)
        n_old = n_regular - n_new
        launch_t = t0 + (int(days / 3) + (15.0 * HOUR - self.tz) / DAY) * DAY
        promo_t = t0 + (int(2 * days / 3) + (11.0 * HOUR - self.tz) / DAY) * DAY
        import_t = t0 + rng.random() * days * 0.8 * DAY

        regular: list[tuple[int, int]] = []  # (member, archetype)
        newcomers: list[int] = []
        for i in range(n_regular):
            if i < n_old:
                join = t0 - hist * rng.random() ** 0.6
                src = (
                    ORGANIC
                    if rng.random() < 0.5
                    else INVITE
                    if rng.random() < 0.7
                    else (PROMOTION if rng.random() < 0.7 else IMPORT)
                )
            elif i < n_old + n_steady:
                join = self.when(t0, t1)
                src = ORGANIC if rng.random() < 0.65 else INVITE
            elif i < n_old + n_steady + n_promo:
                join = promo_t + rng.expovariate(1.0 / (2 * HOUR))
                src = PROMOTION
            elif i < n_old + n_steady + n_promo + n_import:
                join = import_t + (i - n_old - n_steady - n_promo) * 0.01
                src = IMPORT
            else:
                join = launch_t - HOUR + rng.expovariate(1.0 / (3 * HOUR))
                src = ORGANIC if rng.random() < 0.5 else PROMOTION if rng.random() < 0.6 else INVITE
            if join >= t1:
                join = t1 - rng.random() * HOUR
            r = rng.random()
            arche = CREATOR if r < 0.01 else CURATOR if r < 0.10 else LURKER
            if src == PROMOTION and arche != LURKER and rng.random() < 0.7:
                arche = LURKER  # giveaway joiners rarely engage
            m = self.add_member(MEMBER, join, src, "normal")
            regular.append((m, arche))
            if join >= t0 and src != IMPORT:
                newcomers.append(m)
        launch_first = n_old + n_steady + n_promo + n_import

        # Staff.
        a, b = self.active(owner)
        self.sessions(
            owner,
            a,
            b,
            rng.lognormvariate(math.log(3.0), 0.4),
            1.5,
            60.0,
            0.35,
            0.5,
            stock_p=0.0,
            max_links=3,
        )
        self.likes(owner, a, b, 4.0, share_per_day=0.3)
        for mod in staff[1:]:
            a, b = self.active(mod)
            self.sessions(mod, a, b, 1.5, 1.5, 60.0, 0.2, 0.8)
            self.likes(mod, a, b, 2.0)
        if bot >= 0:  # a digest every six hours: near-duplicate text, many links
            base = rng.getrandbits(64)
            t = t0 + rng.random() * 6 * HOUR
            while t < t1:
                self.comments.append((t, bot, _near(rng, base), rng.randint(4, 8), 0, -1, False, False))
                t += 6 * HOUR

        # Regular members, by archetype.
        for i, (m, arche) in enumerate(regular):
            a, b = self.active(m)
            if arche == CREATOR:
                self.sessions(m, a, b, rng.lognormvariate(math.log(5.0), 0.7), 1.8, 45.0, 0.1, 0.7)
                self.likes(m, a, b, rng.lognormvariate(math.log(6.0), 0.8), 2.5, 0.3)
            elif arche == CURATOR:
                if rng.random() < 0.25:
                    self.sessions(m, a, b, rng.lognormvariate(math.log(0.06), 0.8), 1.2, 60.0, 0.05, 0.85)
                self.likes(
                    m,
                    a,
                    b,
                    rng.lognormvariate(math.log(3.0), 0.8),
                    3.0,
                    rng.lognormvariate(math.log(0.2), 1.0),
                )
            elif rng.random() < 0.25:
                self.likes(m, a, b, rng.lognormvariate(math.log(0.05), 1.0), 1.0)
            if self.m_src[m] == PROMOTION and self.m_join[m] >= t0 and rng.random() < 0.08:
                # "Entered!": one stock reply right after joining the giveaway.
                t = self.m_join[m] + 30 + rng.expovariate(1 / 300)
                if t < b:
                    fp = _near(rng, self.stock[0], 1)
                    self.comments.append((t, m, fp, 0, 1, -1, False, False))
            if i >= launch_first and rng.random() < 0.3:
                self._launch_enthusiast(m)

        # The launch day: the existing regulars who are around are far busier than usual.
        if n_launch:
            la, lb = launch_t, launch_t + 8 * HOUR
            for m, arche in regular[:launch_first]:
                a, b = self.active(m, la, lb)
                if arche == CREATOR:
                    self.sessions(m, a, b, 24.0, 1.8, 40.0, 0.15, 0.7)
                    self.likes(m, a, b, 12.0, 3.0)
                elif arche == CURATOR:
                    self.sessions(m, a, b, 1.5, 1.2, 60.0, 0.1, 0.85)
                    self.likes(m, a, b, 10.0, 3.0)

        # Hard negatives.
        for _ in range(opt.prolific):
            m = self.add_member(
                MEMBER, t0 - hist * (0.1 + 0.9 * rng.random()), INVITE, "prolific_creator", end=math.inf
            )
            a, b = self.active(m)
            self.sessions(
                m, a, b, rng.lognormvariate(math.log(35.0), 0.3), 2.2, 35.0, 0.12, 0.8, session_max=6
            )
            self.likes(m, a, b, 15.0, 3.0, 1.0)
        for _ in range(opt.greeters):
            m = self.add_member(
                MEMBER, t0 - hist * (0.2 + 0.8 * rng.random()), INVITE, "greeter", end=math.inf
            )
            # A regular with a record: its last two weeks of conversation are in the log too.
            a, b = self.active(m, t0 - GREETER_HISTORY_DAYS * DAY)
            self.sessions(m, a, b, 3.0, 1.5, 50.0, 0.1, 0.7)
            self.likes(m, a, b, 5.0, 2.0)
            self._greet(m, newcomers, with_link=rng.random() < 0.5)
        latest = max(t0, t1 - 1.5 * DAY)
        for _ in range(opt.link_sharers):
            join = t0 + rng.random() * (latest - t0)
            src = ORGANIC if rng.random() < 0.6 else INVITE if rng.random() < 0.6 else PROMOTION
            self._link_sharer(self.add_member(MEMBER, join, src, "link_sharer"))

        # Spam profiles.
        kinds = opt.spam_kinds
        offset = rng.randrange(len(kinds)) if kinds else 0
        for j in range(self.n_spam if kinds else 0):
            kind = kinds[(offset + j) % len(kinds)]
            join = t0 + rng.random() * (latest - t0)
            r = rng.random()
            if kind == "link_dropper":  # joins on its own or through a giveaway
                src = ORGANIC if r < 0.6 else PROMOTION
            else:
                src = ORGANIC if r < 0.55 else PROMOTION if r < 0.85 else INVITE
            m = self.add_member(MEMBER, join, src, kind, spam=True, end=math.inf)
            newcomers.append(m)
            self._spam(m, kind)

    def _launch_enthusiast(self, m: int) -> None:
        """A launch-day newcomer who comments a lot on the first day; some open with links to their work."""
        rng = self.rng
        self.m_kind[m] = "launch_day"
        a = self.m_join[m] + 60 + rng.expovariate(1 / 900)
        b = min(self.t1, self.m_join[m] + 12 * HOUR)
        showcase = rng.random() < 0.3
        n = rng.randint(5, 22)
        answer = rng.randint(1, n - 1) if showcase and rng.random() < 0.5 else -1
        t = a
        for i in range(n):
            if t >= b:
                break
            if i == 0 and showcase:  # the launch post: their project, its site, its repository
                fp, links, mode = rng.getrandbits(64), rng.randint(1, 3), 0
            elif i == answer:  # a question under someone's comment answered: "the repo and the docs"
                fp, links, mode = rng.getrandbits(64), 2, 1
            elif rng.random() < 0.05:
                fp, links, mode = _near(rng, self.stock[rng.randrange(_STOCK_PHRASES)], 1), 0, 1
            else:
                fp = rng.getrandbits(64)
                links = 1 if rng.random() < (0.12 if showcase else 0.06) else 0
                mode = 1 if rng.random() < 0.7 else 0
            self.comments.append((t, m, fp, links, mode, -1, False, False))
            t += 20 + rng.lognormvariate(math.log(12 * 60.0), 1.0)
        self.likes(m, a, b, 20.0, 3.0)

    def _link_sharer(self, m: int) -> None:
        """An enthusiastic newcomer: talks on day one, and shares one or two useful links while at it."""
        rng = self.rng
        a = self.m_join[m] + rng.uniform(60, 6 * HOUR)
        b = min(self.t1, self.m_join[m] + 20 * HOUR)
        n = rng.randint(3, 12)
        # one comment with two links, or one or two comments with one each; never the first comment
        with_links = rng.sample(range(1, n), 1 if rng.random() < 0.6 else min(2, n - 1))
        two = len(with_links) == 1 and rng.random() < 0.4
        t = a
        for i in range(n):
            if t >= b:
                break
            links = (2 if two else 1) if i in with_links else 0
            mode = 1 if rng.random() < 0.8 else 0
            self.comments.append((t, m, rng.getrandbits(64), links, mode, -1, False, False))
            t += 30 + rng.lognormvariate(math.log(25 * 60.0), 1.0)
        self.likes(m, a, b, rng.uniform(2.0, 30.0), 2.5)

    def _greet(self, m: int, newcomers: list[int], with_link: bool) -> None:
        """The same welcome (near-duplicate fingerprint) under many newcomers' joins, a human's pace apart."""
        rng = self.rng
        base = rng.getrandbits(64)
        wishes: list[tuple[float, int]] = []
        for nm in newcomers:
            p = 0.3 if self.m_src[nm] == PROMOTION else 0.6
            if rng.random() < p:
                wishes.append((self.m_join[nm] + 60 + rng.lognormvariate(math.log(20 * 60.0), 1.0), nm))
        wishes.sort()
        last = -math.inf
        for t, nm in wishes:
            t = max(t, last + 90 + rng.random() * 120)
            if t >= self.t1:
                break
            last = t
            self.comments.append(
                (t, m, _near(rng, base), 1 if with_link else 0, 2, self.m_join_seq[nm], False, False)
            )

    def _spam(self, m: int, kind: str) -> None:
        """A spam profile: joins, looks quiet or normal for a while, then attacks; its shape drawn from
        the ranges in `ATTACK_SHAPES` (docs/spam.md, "The simulator")."""
        rng, t1 = self.rng, self.t1
        join = self.m_join[m]
        shape = ATTACK_SHAPES[kind]
        quiet = _log_uniform(rng, *shape.quiet_seconds)
        attack = min(join + quiet, t1 - HOUR)
        # Before the attack: a few likes, perhaps an ordinary comment or two, to look like everyone else.
        before = attack - join
        if before > 60:
            for _ in range(rng.randint(*shape.likes_before)):
                self.actions.append((join + rng.random() * before, m, LIKE, False))
            for _ in range(rng.randint(*shape.comments_before)):
                t = join + rng.random() * before
                self.comments.append((t, m, rng.getrandbits(64), 0, 1, -1, True, False))
        comments = self.comments
        n = rng.randint(*shape.comments)
        lo_links, hi_links = shape.links
        link_share = rng.uniform(*shape.link_share)
        gap_lo, gap_hi = shape.gap_seconds
        t = attack
        if kind == "burst":
            if rng.random() < 0.25:  # a like storm first
                for _ in range(rng.randint(60, 150)):
                    self.actions.append((t, m, LIKE, True))
                    t += rng.uniform(0.2, 1.0)
            base = rng.getrandbits(64)
            same_text = rng.random() < 0.5
            for _ in range(n):
                fp = _near(rng, base) if same_text else rng.getrandbits(64)
                links = rng.randint(lo_links, hi_links) if rng.random() < link_share else 0
                comments.append((t, m, fp, links, 1, -1, True, True))
                t += rng.uniform(gap_lo, gap_hi)
        elif kind == "duplicate":
            base = rng.getrandbits(64)
            for _ in range(n):
                links = rng.randint(lo_links, hi_links) if rng.random() < link_share else 0
                comments.append((t, m, _near(rng, base), links, 1, -1, True, True))
                t += _log_uniform(rng, gap_lo, gap_hi)
        elif kind in ("link_heavy", "link_dropper"):  # under other members' content, a link in every comment
            for _ in range(n):
                comments.append((t, m, rng.getrandbits(64), rng.randint(lo_links, hi_links), 1, -1, True, True))
                t += _log_uniform(rng, gap_lo, gap_hi)
        else:  # velocity: a stream of distinct, mostly link-free comments through the first day
            end = join + 20 * HOUR
            for _ in range(n):
                if t >= end:
                    break
                links = rng.randint(lo_links, hi_links) if rng.random() < link_share else 0
                comments.append((t, m, rng.getrandbits(64), links, 1, -1, True, True))
                t += _log_uniform(rng, gap_lo, gap_hi)

    # --- targets ------------------------------------------------------------------

    def resolve(self) -> None:
        """Give every reply, like and share a target among the content posted before it."""
        ev = self.ev
        t0, t1 = self.opt.t0 - (GREETER_HISTORY_DAYS + 1) * DAY, self.t1
        pool_ts: list[float] = []
        pool_seq: list[int] = []
        pool_author: list[int] = []
        pool_spam: list[bool] = []
        attack_seq = self.attack_seq
        hit: dict[int, set[int]] = defaultdict(set)  # an attacker's targets: a new thread each time
        self.comments.sort()
        for t, m, fp, links, mode, fixed, spam, attack in self.comments:
            if t < t0 or t >= t1:
                continue
            target = -1
            if mode == 2:
                target = fixed
            elif mode == 1 and pool_ts:
                target = self._pick(pool_seq, pool_author, pool_spam, len(pool_ts), m, 0.9)
                if attack:
                    for _ in range(8):
                        if target >= 0 and target not in hit[m]:
                            break
                        # an attack goes under other members' content, spam or not, rather than in a post of its own
                        target = self._pick(pool_seq, pool_author, pool_spam, len(pool_ts), m, 0.9 if _ < 4 else 0.0)
                    if target < 0:  # the recent content is all its own: the latest post by anybody else
                        target = next((pool_seq[j] for j in range(len(pool_ts) - 1, -1, -1) if pool_author[j] != m), -1)
                    hit[m].add(target)
            seq = len(ev)
            if attack and m not in attack_seq:
                attack_seq[m] = seq
            ev.append((int(t * 1000), COMMENT, m, target, fp, links, 0))
            pool_ts.append(t)
            pool_seq.append(seq)
            pool_author.append(m)
            pool_spam.append(spam)
        self.actions.sort()
        for t, m, typ, attack in self.actions:
            if t >= t1:
                continue
            end = bisect_left(pool_ts, t)
            if end == 0:
                continue
            target = self._pick(pool_seq, pool_author, pool_spam, end, m, 0.7)
            if target < 0:
                continue
            seq = len(ev)
            if attack and (m not in attack_seq or ev[attack_seq[m]][0] > int(t * 1000)):
                attack_seq[m] = seq  # a like storm opens the attack before its comments
            ev.append((int(t * 1000), typ, m, target, None, 0, 0))

    def _pick(
        self, seqs: list[int], authors: list[int], spam: list[bool], end: int, m: int, spam_skip: float
    ) -> int:
        """Recent content by someone else; spam gets passed over (`spam_skip`) more often than not."""
        rng = self.rng
        for _ in range(4):
            j = end - 1 - int(-25.0 * _log(1.0 - rng.random()))  # recent content, 25 posts back on average
            if j < 0:
                j = rng.randrange(end)
            if authors[j] == m or (spam[j] and rng.random() < spam_skip):
                continue
            return seqs[j]
        return -1

    def labels(self) -> list[dict[str, Any]]:
        out = []
        for m, mid in enumerate(self.m_id):
            spam = self.m_spam[m]
            attack = self.attack_seq.get(m)
            out.append(
                {
                    "community_id": self.cid,
                    "member_id": mid,
                    "label": "spam" if spam else "legit",
                    "kind": self.m_kind[m],
                    "attack_start_event_id": f"{self.cid}-e{attack}" if attack is not None else None,
                    "role": ROLE_NAMES[self.m_role[m]],
                    "join_source": JOIN_SOURCE_NAMES[self.m_src[m]],
                }
            )
        return out


def draw_sizes(seed: int, communities: int, smallest: int = 10, largest: int = 10_000) -> list[int]:
    """Community sizes drawn log-uniformly from [smallest, largest] (a micro-community to a large one)."""
    rng = random.Random(f"sizes-{seed}")
    return [round(_log_uniform(rng, smallest, largest)) for _ in range(communities)]


def spam_for_size(size: int) -> int:
    """Spam profiles planted in a community of `size` members over two weeks: 1 per 40 members, 3 to 60."""
    return min(60, max(3, size // 40))


def simulate(
    seed: int = 0,
    communities: int = 4,
    members_per_community: int | Sequence[int] = 2_000,
    days: float = 14.0,
    start: datetime = DEFAULT_START,
    spam_profiles_per_community: int | Sequence[int] = 24,
    *,
    history_days: float = 365.0,
    prolific_per_community: int = 2,
    greeters_per_community: int = 1,
    link_sharers_per_community: int = 2,
    launch_day: bool = True,
    promotion: bool = True,
    imports: bool = True,
    bots: bool = True,
    spam_kinds: Sequence[str] = SPAM_KINDS,
    source: str = "simulate",
) -> tuple[Iterator[dict[str, Any]], list[dict[str, Any]]]:
    """Canonical events (JSON-shaped dicts, sorted by occurred_at) and one label per member.

    Members joined before `start` have their joins in the log (back to the founding,
    `history_days` earlier); activity runs from `start` for `days`. Labels:
    {community_id, member_id, label: spam|legit, kind, attack_start_event_id, role, join_source}.
    """
    if start.tzinfo is None:
        raise ValueError("simulate(start=...) needs an aware datetime, e.g. datetime(2025, 3, 3, tzinfo=UTC)")
    unknown = [k for k in spam_kinds if k not in SPAM_KINDS]
    if unknown:
        raise ValueError(f"unknown spam kind(s) {unknown}; choose from {', '.join(SPAM_KINDS)}")
    sizes = (
        [members_per_community] * communities
        if isinstance(members_per_community, int)
        else list(members_per_community)
    )
    if len(sizes) != communities:
        raise ValueError(f"members_per_community has {len(sizes)} sizes for {communities} communities")
    spam: int | tuple[int, ...] = (
        spam_profiles_per_community
        if isinstance(spam_profiles_per_community, int)
        else tuple(spam_profiles_per_community)
    )
    if not isinstance(spam, int) and len(spam) != communities:
        raise ValueError(f"spam_profiles_per_community has {len(spam)} counts for {communities} communities")
    t0 = start.timestamp()
    opt = _Options(
        seed=seed,
        t0=t0,
        t1=t0 + days * DAY,
        history_days=history_days,
        prolific=prolific_per_community,
        greeters=greeters_per_community,
        link_sharers=link_sharers_per_community,
        launch_day=launch_day,
        promotion=promotion,
        imports=imports,
        bots=bots,
        spam=spam,
        spam_kinds=tuple(spam_kinds),
    )
    built: list[_Community] = []
    labels: list[dict[str, Any]] = []
    for cidx, size in enumerate(sizes):
        c = _Community(random.Random(seed * 1_000_003 + cidx), cidx, f"sim{seed}-c{cidx}", size, opt)
        c.build()
        c.resolve()
        c.comments.clear()
        c.actions.clear()
        built.append(c)
        labels.extend(c.labels())
    return _events(built, source), labels


def _events(built: list[_Community], source: str) -> Iterator[dict[str, Any]]:
    # One sort of plain ints: (time in ms, community, seq) packed, far faster than sorting tuples.
    keys: list[int] = []
    for c in built:
        base = c.cidx << 24
        keys.extend([(e[0] << 36) | base | seq for seq, e in enumerate(c.ev)])
    keys.sort()
    cids = [c.cid for c in built]
    evs = [c.ev for c in built]
    member_ids = [c.m_id for c in built]
    roles = [[ROLE_NAMES[r] for r in c.m_role] for c in built]
    last_minute = last_day = -1
    prefix = date = ""
    mask = (1 << 24) - 1
    for key in keys:
        ci = (key >> 24) & 0xFFF
        seq = key & mask
        ms, typ, m, target, fp, links, src = evs[ci][seq]
        minute, milli = divmod(ms, 60_000)
        if minute != last_minute:
            last_minute = minute
            day, minute_of_day = divmod(minute, 1440)
            if day != last_day:
                last_day = day
                date = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%dT")
            prefix = date + _HOURS_MINUTES[minute_of_day]
        cid = cids[ci]
        mids = member_ids[ci]
        out: dict[str, Any] = {
            "event_id": f"{cid}-e{seq}",
            "type": TYPE_NAMES[typ],
            "community_id": cid,
            "member_id": mids[m],
            "occurred_at": prefix + _SECONDS[milli],
            "source": source,
            "actor_role": roles[ci][m],
        }
        if target >= 0:
            out["target_id"] = f"{cid}-e{target}"
            out["target_author_id"] = mids[evs[ci][target][2]]
        if typ == COMMENT:
            out["content_fingerprint"] = fp
            out["link_count"] = links
        elif typ == JOIN:
            out["join_source"] = JOIN_SOURCE_NAMES[src]
        yield out


def write_simulation(out_events_path: str | Path, out_labels_path: str | Path, **kw: Any) -> tuple[int, int]:
    """Write `simulate(**kw)` as JSON Lines: events, then labels. Returns (events, labels) written."""
    events, labels = simulate(**kw)
    n = 0
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    with open(out_events_path, "wb", buffering=1 << 20) as f:
        write = f.write
        for ev in events:
            write(dumps(ev, option=newline))
            n += 1
    with open(out_labels_path, "wb") as f:
        for label in labels:
            f.write(orjson.dumps(label) + b"\n")
    return n, len(labels)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Write a seeded simulation: events and labels, JSON Lines.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--communities", type=int, default=20)
    parser.add_argument("--members", type=int, default=5_000, help="members per community")
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--spam", type=int, default=24, help="spam profiles per community")
    parser.add_argument("--events", default="simulation-events.jsonl")
    parser.add_argument("--labels", default="simulation-labels.jsonl")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    n_events, n_labels = write_simulation(
        args.events,
        args.labels,
        seed=args.seed,
        communities=args.communities,
        members_per_community=args.members,
        days=args.days,
        spam_profiles_per_community=args.spam,
    )
    took = time.perf_counter() - began
    print(
        f"{n_events} events to {args.events}, {n_labels} labels to {args.labels} "
        f"in {took:.2f} s ({n_events / took:,.0f} events/s with JSON encoding)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
