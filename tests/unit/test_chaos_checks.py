"""The chaos drills' pure parts: the senders' faults and the comparison with a replay."""

from __future__ import annotations

import math
from collections import Counter

from streams.scoring import MemberRow
from streams.tools.chaos import Plan, Result, community_feed, compare, with_faults_of_senders

RATE = math.log(2) / (14 * 86400)


def row(creation: float, as_of: float, tier: str = "creator", counted: int = 3) -> MemberRow:
    return MemberRow("c", "m", tier, creation, 0.0, 0.0, as_of, 0.0, 0.0, counted, "", "member", False)


def stored(creation: float, as_of_ms: int, tier: str = "creator", counted: int = 3, status: str = "none") -> dict:
    return {"tier": tier, "creation": creation, "curation": 0.0, "received": 0.0, "as_of_ms": as_of_ms,
            "events_counted": counted, "spam_status": status}


def test_scores_stored_at_an_older_clock_match_once_decayed_to_the_same_instant() -> None:
    later = 1000.0 + 3600
    ref = {("c", "m"): {"row": row(10.0 * math.exp(-RATE * 3600), later), "spam_status": "none"}}
    assert compare({("c", "m"): stored(10.0, 1_000_000)}, ref, RATE) == []


def test_a_score_off_by_more_than_1e9_relative_a_tier_a_status_or_a_count_is_a_mismatch() -> None:
    ref = {("c", "m"): {"row": row(10.0, 1000.0), "spam_status": "none"}}
    assert compare({("c", "m"): stored(10.0 * (1 + 1e-8), 1_000_000)}, ref, RATE)
    assert compare({("c", "m"): stored(10.0, 1_000_000, tier="lurker")}, ref, RATE)
    assert compare({("c", "m"): stored(10.0, 1_000_000, counted=4)}, ref, RATE)
    assert compare({("c", "m"): stored(10.0, 1_000_000, status="cleared")}, ref, RATE)
    assert compare({}, ref, RATE) == ["member ('c', 'm'): only in the replay"]


def test_senders_reorder_and_repeat_but_every_event_is_sent() -> None:
    plan = Plan(events=300)
    events = community_feed(plan, seed=3, now=1_790_000_000.0)
    sent = with_faults_of_senders(events, plan, seed=3)
    ids = [e["event_id"] for e in events]
    assert {e["event_id"] for e in sent} == set(ids)
    assert len(sent) - len(events) == int(len(events) * plan.duplicate_share) > 0
    assert [e["event_id"] for e in sent] != ids  # out of order
    assert max(Counter(e["event_id"] for e in sent).values()) >= 2


def test_a_result_is_ok_only_with_nothing_lost_nothing_doubled_and_state_equal() -> None:
    good = Result("x", accepted=5, stored=5, state_matches_replay=True, rollups_match=True)
    assert good.ok
    assert not Result("x", lost=1, state_matches_replay=True, rollups_match=True).ok
    assert not Result("x", doubled=1, state_matches_replay=True, rollups_match=True).ok
    assert not Result("x", rollups_match=True).ok
    assert '"state_matches_replay": true' in good.to_json()
