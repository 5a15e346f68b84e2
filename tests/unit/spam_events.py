"""Hand-made `EventRecord`s for the spam detector tests: members, comments, likes at chosen times."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from streams.event_record import COMMENT, JOIN, LIKE, MEMBER, SHARE, EventRecord

DAY = 86_400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ORGANIC, IMPORT = 2, 4
_ids = itertools.count()


def ev(
    typ: int,
    member: str,
    ts: float,
    *,
    role: int = MEMBER,
    target: str | None = None,
    author: str | None = None,
    fp: int | None = None,
    links: int = 0,
    source: int = 0,
) -> EventRecord:
    if typ == COMMENT and fp is None:
        fp = (next(_ids) * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)  # distinct texts: far apart in Hamming
    if typ in (LIKE, SHARE) and target is None:
        target, author = f"post-{next(_ids)}", "someone"
    return EventRecord(f"e{next(_ids)}", typ, "c1", member, ts, role, target, author, source, fp, links)


def join(member: str, ts: float, source: int = ORGANIC, role: int = MEMBER) -> EventRecord:
    return ev(JOIN, member, ts, role=role, source=source)


def comments(member: str, times: Iterable[float], **kw: object) -> list[EventRecord]:
    out = []
    for i, t in enumerate(times):
        out.append(ev(COMMENT, member, t, target=f"thread-{i}", author=f"author-{i}", **kw))  # type: ignore[arg-type]
    return out


def spaced(start: float, n: int, span: float) -> list[float]:
    """`n` times from `start`, the last one `span` seconds after the first."""
    return [start + span * i / (n - 1) for i in range(n)]


OLD = T0 - 90 * DAY  # a member who joined long ago: no newcomer signal applies
YOUNG = T0 - 2 * DAY  # joined two days ago: past the first day, younger than a week
FP = 0x0123_4567_89AB_CDEF


def posts(member: str, fps: list[int], targets: list[str], links: int = 1, start: float = T0) -> list[EventRecord]:
    """Comments with the given fingerprints on the given targets, a minute apart."""
    return [
        ev(COMMENT, member, start + 60 * i, fp=fp, target=t, author=f"a-{t}", links=links)
        for i, (fp, t) in enumerate(zip(fps, targets, strict=True))
    ]
