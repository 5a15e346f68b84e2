"""The worked example of docs/scoring.md, number for number."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from streams.event_record import COMMENT, JOIN, JOIN_SOURCE_CODES, LIKE, MEMBER, SHARE, EventRecord
from streams.scoring import CommunityScorer, ScoringConfig, TierChangeRecord

DAY = 86_400.0
T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z


def ev(
    event_id: str, kind: int, member: str, day: float, author: str | None = None, source: str | None = None
) -> EventRecord:
    return EventRecord(
        event_id, kind, "demo", member, T0 + day * DAY, MEMBER,
        "p1" if author else None, author, JOIN_SOURCE_CODES[source], None, 0,
    )  # fmt: skip


BATCH_A = [
    ev("e1", JOIN, "alice", 0, source="invite"),
    ev("e2", JOIN, "bob", 0, source="organic"),
    ev("e3", COMMENT, "alice", 0),
    ev("e4", LIKE, "bob", 0, author="alice"),
    ev("e5", SHARE, "bob", 1, author="alice"),
    ev("e6", COMMENT, "carol", 2, author="alice"),
    ev("e7", JOIN, "dave", 3, source="promotion"),
]
BATCH_B = [
    ev("e8", LIKE, "dave", 10, author="carol"),
    ev("e9", LIKE, "dave", 12, author="alice"),
    ev("e9", LIKE, "dave", 12, author="alice"),  # e10: a re-delivery of e9
    ev("e11", COMMENT, "bob", 4),  # 8 days behind the clock: late
    ev("e12", SHARE, "dave", 12.5, author="carol"),
]


def changes(records: Sequence[TierChangeRecord]) -> list[tuple[str, str, str, float]]:
    return [(c.member_id, c.from_tier, c.to_tier, (c.at - T0) / DAY) for c in records]


def test_batch_a_tiers_and_ambassador() -> None:
    scorer = CommunityScorer("demo", ScoringConfig())
    out = scorer.apply(BATCH_A)
    assert changes(out.tier_changes) == [
        ("alice", "lurker", "creator", 0.0),
        ("alice", "creator", "ambassador", 0.0),
        ("bob", "lurker", "curator", 1.0),
        ("carol", "lurker", "creator", 2.0),
        ("alice", "ambassador", "creator", 2.0),
        ("carol", "creator", "ambassador", 2.0),
        ("alice", "creator", "lurker", 3.0),
    ]
    by_member = {c.member_id: c for c in out.tier_changes if "ambassador" not in (c.from_tier, c.to_tier)}
    assert by_member["bob"].curation == pytest.approx(2.9517, abs=5e-5)
    assert by_member["alice"].creation == pytest.approx(2.5859, abs=5e-5)  # day 3: under 2.7
    assert scorer.member_row("carol").creation == pytest.approx(2.8551, abs=5e-5)
    assert scorer.member_row("bob").curation == pytest.approx(2.6734, abs=5e-5)
    assert (out.scored, out.duplicates, out.late) == (7, 0, 0)
    # one community row per event-time minute the clock was in: days 0, 1, 2 and 3
    assert [(r.as_of - T0) / DAY for r in out.community_rows] == [0.0, 1.0, 2.0, 3.0]
    assert [(r.creators, r.ambassadors, r.curators) for r in out.community_rows] == [
        (0, 1, 0),  # end of day 0: alice, the only creator, is the ambassador
        (0, 1, 1),  # day 1: bob became a curator
        (1, 1, 1),  # day 2: carol took the ambassador slot, alice still a creator
        (0, 1, 1),  # day 3: alice fell to lurker
    ]


def test_batch_a_alice_keeps_creator_at_day_2() -> None:
    scorer = CommunityScorer("demo", ScoringConfig())
    scorer.apply(BATCH_A[:6])
    alice = scorer.member_row("alice")
    assert alice.creation == pytest.approx(2.7172, abs=5e-5)
    assert alice.tier == "creator"
    assert alice.received == pytest.approx(5.8091, abs=5e-5)


def test_batch_b_demotions_duplicate_late_and_final_rows() -> None:
    scorer = CommunityScorer("demo", ScoringConfig())
    scorer.apply(BATCH_A)
    out = scorer.apply(BATCH_B)
    assert changes(out.tier_changes) == [
        ("carol", "ambassador", "lurker", 10.0),
        ("bob", "curator", "lurker", 12.0),
        ("dave", "lurker", "curator", 12.5),
    ]
    assert out.tier_changes[0].creation == pytest.approx(2.0189, abs=5e-5)
    assert out.tier_changes[1].curation == pytest.approx(1.7122, abs=5e-5)
    assert out.tier_changes[2].curation == pytest.approx(3.8591, abs=5e-5)
    assert (out.scored, out.duplicates, out.late) == (3, 1, 1)

    expected = {  # tier, C, U, R, events_counted, join_source
        "alice": ("lurker", 1.6156, 0.0, 4.4297, 2, "invite"),
        "bob": ("lurker", 0.0, 1.6703, 0.0, 3, "organic"),
        "carol": ("lurker", 1.7838, 0.0, 0.8836 + 2.0, 1, ""),
        "dave": ("curator", 0.0, 3.8591, 0.0, 4, "promotion"),
    }
    for member, (tier, c, u, r, counted, source) in expected.items():
        row = scorer.member_row(member)
        assert (row.tier, row.events_counted, row.join_source) == (tier, counted, source), member
        assert (row.creation, row.curation, row.received) == pytest.approx((c, u, r), abs=5e-5), member

    community = scorer.community_row()
    assert community.as_of == T0 + 12.5 * DAY
    assert (community.members, community.lurkers, community.curators, community.creators) == (4, 3, 1, 0)
    assert (community.ambassadors, community.active_creators) == (0, 0)
    assert community.top1_creation_share == pytest.approx(0.5247, abs=5e-5)
    assert community.top20_creation_share == pytest.approx(0.5247, abs=5e-5)
