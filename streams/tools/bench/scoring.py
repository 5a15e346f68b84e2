"""Micro-benchmark of the scoring core: events per second and resident bytes per member.

`bench_scoring` is what `engage bench` runs; `synthetic_events` also feeds the property tests.
`bench_communities` scores many communities of skewed sizes the way the worker does (each
batch grouped per community); `memory_per_member` is the resident-bytes probe at 1,000,000
members. Run alone: python -m streams.tools.bench.scoring [n_events] [n_members]
"""

from __future__ import annotations

import gc
import heapq
import random
import resource
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


def _memory(events: list[EventRecord], config: ScoringConfig, batch_size: int, members: int) -> dict[str, float]:
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


def community_events(
    n_events: int = 300_000,
    n_members: int = 100_000,
    n_communities: int = 100,
    span_days: float = 14.0,
    seed: int = 0,
) -> list[EventRecord]:
    """Communities of Zipf-skewed sizes (the largest ~19% of members at 100), merged in time order."""
    weights = [1.0 / (rank + 1) for rank in range(n_communities)]
    total = sum(weights)
    streams = [
        synthetic_events(
            max(2, round(n_events * w / total)),
            max(2, round(n_members * w / total)),
            community_id=f"c{c}",
            seed=seed + c,
            span_days=span_days,
            jitter_seconds=600.0,
        )
        for c, w in enumerate(weights)
    ]
    return list(heapq.merge(*streams, key=lambda e: e.ts))


def bench_communities(events: list[EventRecord] | None = None, batch_size: int = 10_000) -> dict[str, Any]:
    """Score `events` (default `community_events()`) batch by batch, grouped per community."""
    events = community_events() if events is None else events
    config = ScoringConfig()
    scorers: dict[str, CommunityScorer] = {}
    rows = 0
    gc.collect()
    began = time.process_time()
    for start in range(0, len(events), batch_size):
        groups: dict[str, list[EventRecord]] = {}
        for event in events[start : start + batch_size]:
            groups.setdefault(event.community_id, []).append(event)
        for community_id, group in groups.items():
            scorer = scorers.get(community_id)
            if scorer is None:
                scorer = scorers[community_id] = CommunityScorer(community_id, config)
            rows += len(scorer.apply(group).community_rows)
    seconds = time.process_time() - began
    result = {
        "events": len(events),
        "communities": len(scorers),
        "members": sum(s.members_count for s in scorers.values()),
        "community_rows": rows,
        "cpu_seconds": round(seconds, 3),
        "us_per_event": round(1e6 * seconds / len(events), 2),
    }
    print(" ".join(f"{key}={value}" for key, value in result.items()))
    return result


def memory_per_member(members: int = 1_000_000, communities: int = 10, spread_seconds: float = 7200.0) -> float:
    """Resident bytes per member of the scorers alone (RSS delta), dedup memory included.

    Every member joins and likes another member's post; joins are spread evenly over
    `spread_seconds` (7,200: all within hours; 5,184,000: over 60 days).
    """

    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()

    config = ScoringConfig()
    per = members // communities
    step = spread_seconds / per
    gc.collect()
    before = rss()
    scorers = []
    n = 0
    for c in range(communities):
        cid = f"c{c}"
        scorer = CommunityScorer(cid, config)
        batch: list[EventRecord] = []
        for m in range(per):
            ts = START_TS + m * step
            mid = f"member-{m:07d}"
            author = f"member-{(m * 7) % per:07d}"
            batch.append(EventRecord(f"j{n}", JOIN, cid, mid, ts, MEMBER, None, None, 2, None, 0))
            batch.append(EventRecord(f"l{n}", LIKE, cid, mid, ts + 0.5, MEMBER, "p1", author, 0, None, 0))
            n += 1
            if len(batch) >= 20_000:
                scorer.apply(batch)
                batch = []
        scorer.apply(batch)
        scorers.append(scorer)
        del batch
    gc.collect()
    per_member = (rss() - before) / max(1, sum(s.members_count for s in scorers))
    print(
        f"members={members} communities={communities} spread_seconds={spread_seconds} bytes_per_member={per_member:.1f}"
    )
    return per_member


if __name__ == "__main__":
    n_events = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    n_members = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    bench_scoring(n_events, n_members, measure_memory=False)
    bench_communities()
    memory_per_member(spread_seconds=7200.0)
    memory_per_member(spread_seconds=60 * DAY_SECONDS)
