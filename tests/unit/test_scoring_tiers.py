"""Tier rules: thresholds, hysteresis as the clock moves, curators, ambassador rank and k."""

from __future__ import annotations

import math

import pytest

from streams.event_record import COMMENT, JOIN, LIKE, MEMBER, SHARE, EventRecord
from streams.scoring import CommunityScorer, ScoringConfig
from streams.scoring.tiers import CREATOR, CURATOR, LURKER, base_tier, top_count

DAY = 86_400.0
T0 = 1_700_000_000.0
HALF_LIFE = 14 * DAY
_ids = iter(range(10**9))


def at(t: float, kind: int, member: str, author: str | None = None) -> EventRecord:
    return EventRecord(
        f"t{next(_ids)}", kind, "c", member, t, MEMBER, "x" if author else None, author, 0, None, 0
    )


def when_decayed_to(value: float, start: float, initial: float) -> float:
    """The time at which `initial` placed at `start` has decayed to `value`."""
    return start + HALF_LIFE * math.log2(initial / value)


CONFIG = ScoringConfig()


@pytest.mark.parametrize(
    ("prev", "creation", "curation", "expected"),
    [
        (LURKER, 3.0, 0.0, CREATOR),
        (LURKER, 2.99, 5.0, CURATOR),
        (CREATOR, 2.8, 0.0, CREATOR),
        (CREATOR, 2.69, 0.0, LURKER),
        (CREATOR, 2.69, 1.9, LURKER),  # no curator hysteresis for someone who was a creator
        (CREATOR, 2.69, 2.0, CURATOR),
        (CURATOR, 0.0, 1.9, CURATOR),
        (CURATOR, 0.0, 1.79, LURKER),
        (CURATOR, 2.9, 1.79, LURKER),  # creator hysteresis needs a creator before
        (LURKER, 0.0, 1.99, LURKER),
        (LURKER, 0.0, 2.0, CURATOR),
        (LURKER, 3.0, 2.0, CREATOR),  # creator wins over curator
    ],
)
def test_base_tier_rule(prev: int, creation: float, curation: float, expected: int) -> None:
    assert base_tier(prev, creation, curation, CONFIG) == expected


@pytest.mark.parametrize(
    ("members", "k"), [(0, 1), (1, 1), (99, 1), (100, 1), (101, 2), (250, 3), (1000, 10)]
)
def test_ambassador_k(members: int, k: int) -> None:
    assert top_count(0.01, members) == k


def test_top_count_is_not_fooled_by_float_noise() -> None:
    assert 0.07 * 100 > 7  # the float product overshoots...
    assert top_count(0.07, 100) == 7  # ...the count does not


def test_creator_hysteresis_as_the_clock_moves_without_their_events() -> None:
    scorer = CommunityScorer("c", CONFIG)
    out = scorer.apply([at(T0, COMMENT, "a")])
    assert [(c.member_id, c.from_tier, c.to_tier) for c in out.tier_changes[:1]] == [
        ("a", "lurker", "creator")
    ]
    assert scorer.member_row("a").creation == pytest.approx(3.0)

    stay = when_decayed_to(2.8, T0, 3.0)
    out = scorer.apply([at(stay, JOIN, "clock")])
    row = scorer.member_row("a")
    assert row.creation == pytest.approx(2.8)
    assert row.tier in ("creator", "ambassador")
    assert all(c.member_id != "a" or c.to_tier == "ambassador" for c in out.tier_changes)

    just_above = when_decayed_to(2.7001, T0, 3.0)
    scorer.apply([at(just_above, JOIN, "clock")])
    assert scorer.member_row("a").tier in ("creator", "ambassador")

    below = when_decayed_to(2.6999, T0, 3.0)
    out = scorer.apply([at(below, JOIN, "clock")])
    demotion = [c for c in out.tier_changes if c.member_id == "a"]
    assert len(demotion) == 1
    assert demotion[0].to_tier == "lurker"
    assert demotion[0].at == below
    assert demotion[0].creation == pytest.approx(2.6999)
    assert "a" in out.touched
    assert scorer.member_row("a").tier == "lurker"


def test_demotion_happens_inside_a_batch_at_the_event_that_moves_the_clock() -> None:
    below = when_decayed_to(2.69, T0, 3.0)
    scorer = CommunityScorer("c", CONFIG)
    out = scorer.apply(
        [at(T0, COMMENT, "a"), at(T0 + DAY, LIKE, "b"), at(below, LIKE, "b"), at(below + DAY, LIKE, "b")]
    )
    a_changes = [(c.from_tier, c.to_tier, c.at) for c in out.tier_changes if c.member_id == "a"]
    assert a_changes == [("lurker", "creator", T0), ("creator", "ambassador", T0), ("ambassador", "lurker", below)]


def test_late_comment_just_under_three_does_not_promote() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0, JOIN, "clock"), at(T0 - 3600, COMMENT, "a")])
    row = scorer.member_row("a")
    assert 2.99 < row.creation < 3.0
    assert row.tier == "lurker"


def test_tiers_are_judged_after_the_event_that_moves_the_clock() -> None:
    scorer = CommunityScorer("c", CONFIG)
    out = scorer.apply([at(T0, COMMENT, "a"), at(T0 + 20 * DAY, COMMENT, "a")])
    a_changes = [(c.from_tier, c.to_tier) for c in out.tier_changes if c.member_id == "a"]
    # Between the two comments a's creation fell to 1.1, but no event happened then: at the
    # second comment's instant it is 4.1, so a was never demoted.
    assert a_changes == [("lurker", "creator"), ("creator", "ambassador")]
    assert scorer.member_row("a").creation == pytest.approx(3.0 + 3.0 * 2 ** (-20 / 14))
    assert scorer.member_row("a").tier == "ambassador"


def test_curator_rules() -> None:
    scorer = CommunityScorer("c", CONFIG)
    out = scorer.apply(
        [at(T0, LIKE, "one"), at(T0, LIKE, "two"), at(T0, LIKE, "two"), at(T0, SHARE, "sharer")]
    )
    promoted = sorted(c.member_id for c in out.tier_changes if c.to_tier == "curator")
    assert promoted == ["sharer", "two"]
    assert scorer.member_row("one").tier == "lurker"

    stay = when_decayed_to(1.9, T0, 2.0)
    scorer.apply([at(stay, JOIN, "clock")])
    assert scorer.member_row("two").tier == "curator"
    out = scorer.apply([at(when_decayed_to(1.79, T0, 2.0), JOIN, "clock")])
    assert sorted((c.member_id, c.to_tier) for c in out.tier_changes) == [
        ("sharer", "lurker"),
        ("two", "lurker"),
    ]


def test_creator_is_not_a_curator_and_falls_back_to_curator_only_at_two() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([
        at(T0, COMMENT, "rich"), at(T0, SHARE, "rich"), at(T0, LIKE, "rich"),  # U = 3
        at(T0, COMMENT, "poor"), at(T0, SHARE, "poor"),  # U = 2, will be 1.9 when C < 2.7
    ])  # fmt: skip
    community = scorer.community_row()
    assert community.curators == 0
    assert community.creators + community.ambassadors == 2
    out = scorer.apply([at(when_decayed_to(2.69, T0, 3.0), JOIN, "clock")])
    assert sorted((c.member_id, c.to_tier) for c in out.tier_changes if c.member_id != "clock") == [
        ("poor", "lurker"),
        ("rich", "curator"),
    ]


def _ambassadors(scorer: CommunityScorer) -> list[str]:
    return sorted(m for m in scorer.member_ids() if scorer.member_row(m).tier == "ambassador")


@pytest.mark.parametrize(("members", "k"), [(1, 1), (99, 1), (100, 1), (101, 2), (250, 3)])
def test_ambassadors_are_the_top_k_creators(members: int, k: int) -> None:
    events = []
    for i in range(members):
        for _ in range(1 + i % 4):  # C = 3, 6, 9 or 12: many ties
            events.append(at(T0, COMMENT, f"m{i:03d}"))
        for _ in range(i % 3):  # received breaks the ties
            events.append(at(T0, LIKE, "fan", author=f"m{i:03d}"))
    events.append(at(T0, JOIN, "fan"))
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply(events)
    eligible = members + 1
    assert scorer.community_row().members == eligible
    expected_k = top_count(0.01, eligible)
    ranked = sorted(
        (scorer.member_row(m) for m in scorer.member_ids()),
        key=lambda r: (-r.creation, -r.received, r.member_id),
    )
    expected = sorted(r.member_id for r in ranked[:expected_k] if r.creation >= 3.0)
    assert _ambassadors(scorer) == expected
    assert len(expected) == min(expected_k, members)
    assert top_count(0.01, members) == k


def test_ambassador_ties_break_by_received_then_member_id() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0, COMMENT, m) for m in ("b", "a", "c")] + [at(T0, LIKE, "x", author="c")])
    assert _ambassadors(scorer) == ["c"]  # equal creation, c received a like
    scorer2 = CommunityScorer("c", CONFIG)
    scorer2.apply([at(T0, COMMENT, m) for m in ("b", "c", "a")])
    assert _ambassadors(scorer2) == ["a"]  # all equal: smallest member_id


def test_non_creator_in_top_k_leaves_the_ambassador_slot_empty() -> None:
    scorer = CommunityScorer("c", CONFIG)
    clock = T0 + DAY
    scorer.apply([at(T0, COMMENT, "y"), at(clock, JOIN, "z"), at(clock - 3600, COMMENT, "x")])
    x, y = scorer.member_row("x"), scorer.member_row("y")
    assert x.creation > y.creation
    assert (x.tier, y.tier) == ("lurker", "creator")
    assert scorer.community_row().ambassadors == 0


def test_ambassador_flips_are_emitted_at_the_event_that_causes_them() -> None:
    scorer = CommunityScorer("c", CONFIG)
    out = scorer.apply([at(T0, COMMENT, "a"), at(T0 + 1, COMMENT, "b"), at(T0 + 2, COMMENT, "b")])
    flips = [
        (c.member_id, c.from_tier, c.to_tier, c.at - T0)
        for c in out.tier_changes
        if "ambassador" in (c.from_tier, c.to_tier)
    ]
    # a leads after the first comment; b's first comment is worth a little more (less decayed)
    assert flips == [
        ("a", "creator", "ambassador", 0),
        ("a", "ambassador", "creator", 1),
        ("b", "creator", "ambassador", 1),
    ]
    # one batch or three: the same changes
    one_by_one = CommunityScorer("c", CONFIG)
    singles = [
        c
        for e in [at(T0, COMMENT, "a"), at(T0 + 1, COMMENT, "b"), at(T0 + 2, COMMENT, "b")]
        for c in one_by_one.apply([e]).tier_changes
    ]
    assert [(c.member_id, c.from_tier, c.to_tier, c.at) for c in singles] == [
        (c.member_id, c.from_tier, c.to_tier, c.at) for c in out.tier_changes
    ]


def test_members_demoted_at_one_instant_are_listed_by_ascending_creation() -> None:
    scorer = CommunityScorer("c", CONFIG)
    # a's index key still holds its first comment when b, with less in total, falls with it.
    scorer.apply([at(T0, COMMENT, "a"), at(T0 + 3600, COMMENT, "b"), at(T0 + 7200, COMMENT, "a")])
    out = scorer.apply([at(T0 + 100 * DAY, JOIN, "clock")])
    demoted = [c for c in out.tier_changes if c.to_tier == "lurker"]
    assert [c.member_id for c in demoted] == ["b", "a"]
    assert demoted[0].creation < demoted[1].creation


@pytest.mark.parametrize("share", [0.01, 0.07, 0.2, 0.05, 1 / 3, 0.999, 1.0])
def test_top_count_rounds_exactly_as_its_definition(share: float) -> None:
    """top_count skips the (slow) rounding away from integers: same k as max(1, ceil(round(x, 9)))."""
    for members in range(0, 20_001):
        assert top_count(share, members) == max(1, math.ceil(round(share * members, 9))), members


def test_a_tie_reached_from_outside_the_top_k_breaks_by_received() -> None:
    """bob, known before alice, ties her creation at the k-th place: his received like ranks him first."""
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0, JOIN, "bob"), at(T0, JOIN, "alice"), at(T0, LIKE, "carol", author="bob")])
    out = scorer.apply([at(T0 + 10, COMMENT, "alice"), at(T0 + 10, COMMENT, "bob")])
    assert scorer.member_row("alice").creation == scorer.member_row("bob").creation
    assert _ambassadors(scorer) == ["bob"]
    assert [(c.member_id, c.from_tier, c.to_tier) for c in out.tier_changes[-2:]] == [
        ("alice", "ambassador", "creator"),
        ("bob", "creator", "ambassador"),
    ]
