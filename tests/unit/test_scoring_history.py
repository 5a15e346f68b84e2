"""History does not depend on batching: the same log cut into batches of 1, 7, 1,000 and 50,000
gives the same final state, the same tier changes (ambassadors included) and, once rows of
one minute replace each other as ClickHouse's ReplacingMergeTree does under FINAL, the same
per-minute community snapshots."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import pytest

from schemas.events import CanonicalEvent
from streams.event_record import COMMENT, EventRecord, from_canonical
from streams.scoring import CommunityRow, CommunityScorer, ScoringConfig, TierChangeRecord
from streams.scoring.tiers import top_count
from streams.tools.simulate import simulate

CONFIG = ScoringConfig()
HOUR = 3600.0


@pytest.fixture(scope="module")
def community() -> list[EventRecord]:
    """A simulated community (90-9-1, staff, a launch day, spam), delivered the way a log is:
    arrival order jittered by up to two hours, about 3% re-delivered, a few very late."""
    events, _ = simulate(
        seed=5, communities=1, members_per_community=2_000, days=12, start=datetime(2025, 3, 3, tzinfo=UTC)
    )
    records = [from_canonical(CanonicalEvent.model_validate_json(orjson.dumps(e))) for e in events]
    rng = random.Random(5)
    arrival = sorted(range(len(records)), key=lambda i: records[i].ts + rng.uniform(0, 2 * HOUR))
    out: list[EventRecord] = []
    for i in arrival:
        out.append(records[i])
        roll = rng.random()
        if roll < 0.03:
            out.append(rng.choice(out[-200:]))  # a re-delivery
        elif roll < 0.035:
            out.append(records[i]._replace(event_id=records[i].event_id + "-late", ts=records[i].ts - 9 * 86400))
    return out


def replay(
    events: Sequence[EventRecord], batch_size: int
) -> tuple[CommunityScorer, list[TierChangeRecord], list[CommunityRow]]:
    scorer = CommunityScorer(events[0].community_id, CONFIG)
    changes: list[TierChangeRecord] = []
    rows: list[CommunityRow] = []
    for start in range(0, len(events), batch_size):
        out = scorer.apply(events[start : start + batch_size])
        changes += out.tier_changes
        rows += out.community_rows
    return scorer, changes, rows


def collapsed(rows: Sequence[CommunityRow]) -> dict[float, CommunityRow]:
    """What `community_state FINAL` keeps: the last row stored for each (community, as_of)."""
    return {row.as_of: row for row in rows}


def test_history_is_the_same_for_every_batch_size(community: list[EventRecord]) -> None:
    reference, reference_changes, reference_rows = replay(community, 1)
    history = collapsed(reference_rows)
    snapshot = orjson.dumps(reference.snapshot())
    assert len(community) > 10_000
    assert sum("ambassador" in (c.from_tier, c.to_tier) for c in reference_changes) >= 4
    assert len(history) > 2_000  # busy minutes of 12 days
    for batch_size in (7, 1_000, 50_000):
        scorer, changes, rows = replay(community, batch_size)
        assert changes == reference_changes, batch_size
        assert collapsed(rows) == history, batch_size
        assert orjson.dumps(scorer.snapshot()) == snapshot, batch_size
    assert len(rows) == len(history)  # one batch: each minute once, the last one provisional


def test_rows_fall_on_minutes_of_event_time(community: list[EventRecord]) -> None:
    scorer, _, rows = replay(community, 1_000)
    assert all(row.as_of % 60 == 0 for row in rows)
    # a minute has a row exactly when the clock was in it
    clock = -math.inf
    minutes = set()
    for event in community:
        if event.ts >= clock - CONFIG.lateness_seconds:
            clock = max(clock, event.ts)
            minutes.add(math.floor(clock / 60) * 60.0)
    assert set(collapsed(rows)) == minutes
    assert rows[-1] == scorer.minute_row()
    assert scorer.minute_row()._replace(as_of=scorer.clock) == scorer.community_row()


def test_each_minute_row_is_the_state_at_the_end_of_that_minute(community: list[EventRecord]) -> None:
    """The row a batch ends with equals a naive recount from the member rows at that moment."""
    scorer = CommunityScorer(community[0].community_id, CONFIG)
    last_comment: dict[str, float] = {}
    checked = 0
    for i, event in enumerate(community):
        out = scorer.apply([event])
        for e in out.accepted:
            if e.type == COMMENT:
                last_comment[e.member_id] = max(e.ts, last_comment.get(e.member_id, -math.inf))
        if i % 97 == 0 and out.scored:
            assert_rows_match(out.community_rows[-1], naive_row(scorer, last_comment))
            checked += 1
    assert checked > 100


def naive_row(scorer: CommunityScorer, last_comment: dict[str, float]) -> CommunityRow:
    rows = [scorer.member_row(m) for m in scorer.member_ids()]
    eligible = [r for r in rows if r.actor_role == "member" and not r.excluded]
    by_creation = sorted((r.creation for r in eligible), reverse=True)
    total = math.fsum(by_creation)

    def share(fraction: float) -> float:
        return math.fsum(by_creation[: top_count(fraction, len(eligible))]) / total if total > 0 else 0.0

    since = scorer.clock - CONFIG.active_window_seconds
    return CommunityRow(
        scorer.community_id,
        math.floor(scorer.clock / 60) * 60.0,
        len(eligible),
        sum(r.tier == "lurker" for r in eligible),
        sum(r.tier == "curator" for r in eligible),
        sum(r.tier == "creator" for r in eligible),
        sum(r.tier == "ambassador" for r in eligible),
        sum(
            r.tier in ("creator", "ambassador") and last_comment.get(r.member_id, -math.inf) >= since for r in eligible
        ),
        share(CONFIG.top_small_share),
        share(CONFIG.top_large_share),
        sum(r.excluded for r in rows),
    )


def assert_rows_match(row: CommunityRow, naive: CommunityRow) -> None:
    assert row[:8] == naive[:8]
    assert row.top1_creation_share == pytest.approx(naive.top1_creation_share, rel=1e-9, abs=1e-12)
    assert row.top20_creation_share == pytest.approx(naive.top20_creation_share, rel=1e-9, abs=1e-12)
    assert row.flagged_members == naive.flagged_members


def test_ambassadors_are_exact_after_every_event(community: list[EventRecord]) -> None:
    scorer = CommunityScorer(community[0].community_id, CONFIG)
    for i, event in enumerate(community[:6000]):
        scorer.apply([event])
        if i % 50:
            continue
        rows = [scorer.member_row(m) for m in scorer.member_ids()]
        eligible = [r for r in rows if r.actor_role == "member" and not r.excluded]
        k = top_count(CONFIG.ambassador_share, len(eligible))
        ranked = sorted(eligible, key=lambda r: (-r.creation, -r.received, r.member_id))
        expected = {r.member_id for r in ranked[:k] if r.tier in ("creator", "ambassador")}
        assert {r.member_id for r in rows if r.tier == "ambassador"} == expected, i
