"""Micro-benchmark of the scoring core: events per second and resident bytes per member.

`bench_scoring` is what `engage bench` runs; `synthetic_events` also feeds the property tests.
Run alone: python -m streams.scoring.bench [n_events] [n_members]
"""

from __future__ import annotations

import gc
import random
import sys
import time
import tracemalloc
from typing import Any

from streams.event_record import COMMENT, JOIN, LIKE, MEMBER, SHARE, EventRecord
from streams.scoring.community import CommunityScorer
from streams.scoring.config import DAY_SECONDS, ScoringConfig

START_TS = 1_700_000_000.0


def synthetic_events(
    n_events: int,
    n_members: int,
    *,
    community_id: str = "c1",
    seed: int = 0,
    span_days: float = 60.0,
    start: float = START_TS,
    jitter_seconds: float = 0.0,
    staff_every: int = 0,
) -> list[EventRecord]:
    """A skewed community: everyone joins once, a few members do most of the acting.

    Events are in time order, except that each time is moved by up to `jitter_seconds`
    (out-of-order arrival). Every `staff_every`-th member (0: none) acts as a moderator.
    """
    rng = random.Random(seed)
    span = span_days * DAY_SECONDS
    n_joins = min(n_events, n_members)
    times = sorted(start + rng.random() * span for _ in range(n_events))
    join_slots = set(rng.sample(range(n_events), n_joins))
    next_join = 0
    out: list[EventRecord] = []
    for i, ts in enumerate(times):
        if i in join_slots:
            member = next_join
            next_join += 1
            kind = JOIN
        else:
            member = int(max(next_join, 1) * rng.random() ** 3)  # skew: low indexes act most
            roll = rng.random()
            kind = COMMENT if roll < 0.25 else SHARE if roll < 0.35 else LIKE
        target_author = None
        if kind != JOIN and (kind != COMMENT or rng.random() < 0.6):
            target_author = f"m{int(max(next_join, 1) * rng.random() ** 2):07d}"
        role = 2 if staff_every and member % staff_every == staff_every - 1 else MEMBER
        out.append(
            EventRecord(
                f"e{seed}-{i}",
                kind,
                community_id,
                f"m{member:07d}",
                ts + (rng.uniform(-jitter_seconds, jitter_seconds) if jitter_seconds else 0.0),
                role,
                None if target_author is None else f"t{i}",
                target_author,
                1 + member % 4 if kind == JOIN else 0,
                None,
                0,
            )
        )
    return out


def _run(events: list[EventRecord], config: ScoringConfig, batch_size: int) -> CommunityScorer:
    scorer = CommunityScorer(events[0].community_id, config)
    for start in range(0, len(events), batch_size):
        scorer.apply(events[start : start + batch_size])
    return scorer


def bench_scoring(
    n_events: int = 1_000_000,
    n_members: int = 100_000,
    batch_size: int = 10_000,
    seed: int = 0,
    measure_memory: bool = True,
) -> dict[str, Any]:
    """Score `n_events` synthetic events over `n_members` members; print and return the numbers.

    bytes_per_member is what tracemalloc sees the scorer hold after the run, without the
    event-id dedup memory (reported per event as dedup_bytes_per_event). Measuring it
    scores everything a second time under tracemalloc, several times slower: skip it with
    `measure_memory=False`.
    """
    config = ScoringConfig()
    events = synthetic_events(n_events, n_members, seed=seed)
    gc.collect()
    began = time.perf_counter()
    scorer = _run(events, config, batch_size)
    row = scorer.community_row()
    seconds = time.perf_counter() - began
    members = scorer.members_count
    del scorer
    gc.collect()
    result: dict[str, Any] = {
        "events": n_events,
        "members": members,
        "batch_size": batch_size,
        "seconds": round(seconds, 3),
        "events_per_second": round(n_events / seconds),
        "creators": row.creators + row.ambassadors,
        "ambassadors": row.ambassadors,
    }
    if measure_memory:
        result.update(_memory(events, config, batch_size, members))
    print(" ".join(f"{key}={value}" for key, value in result.items()))
    return result


def _memory(
    events: list[EventRecord], config: ScoringConfig, batch_size: int, members: int
) -> dict[str, float]:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    scorer = _run(events, config, batch_size)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = dedup = 0
    for stat in after.compare_to(before, "filename"):
        total += stat.size_diff
        if stat.traceback[0].filename.endswith("event_dedup.py"):
            dedup += stat.size_diff
    del scorer
    return {
        "bytes_per_member": round((total - dedup) / max(members, 1), 1),
        "dedup_bytes_per_event": round(dedup / max(len(events), 1), 1),
    }


if __name__ == "__main__":
    n_events = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    n_members = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    bench_scoring(n_events, n_members)
