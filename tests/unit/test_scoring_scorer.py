"""CommunityScorer: members, staff, spam exclusion, duplicates, late events, rows, snapshots."""

from __future__ import annotations

import orjson
import pytest

from schemas.outputs import Tier
from streams.event_record import BOT, COMMENT, JOIN, JOIN_SOURCE_CODES, LIKE, MEMBER, MODERATOR, OWNER, SHARE
from streams.event_record import EventRecord as E
from streams.scoring import TIER_NAMES, CommunityScorer, ScoringConfig
from streams.tools.bench.scoring import bench_scoring, synthetic_events

DAY = 86_400.0
T0 = 1_700_000_000.0
CONFIG = ScoringConfig()
_ids = iter(range(10**9))


def at(
    t: float, kind: int, member: str, author: str | None = None, role: int = MEMBER,
    source: str | None = None, event_id: str | None = None, community: str = "c",
) -> E:  # fmt: skip
    return E(
        event_id or f"s{next(_ids)}", kind, community, member, t, role,
        "x" if author else None, author, JOIN_SOURCE_CODES[source], None, 0,
    )  # fmt: skip


def tiers(scorer: CommunityScorer) -> dict[str, str]:
    return {m: scorer.member_row(m).tier for m in scorer.member_ids()}


# ----------------------------------------------------------------------------- members


def test_received_goes_to_other_members_only_and_makes_authors_known() -> None:
    scorer = CommunityScorer("c", CONFIG)
    out = scorer.apply([
        at(T0, LIKE, "a", author="b"),
        at(T0, SHARE, "a", author="a"),  # self-share: curation, no received
        at(T0, COMMENT, "c", author="b"),  # a reply gives received
        at(T0, COMMENT, "c"),  # a top-level comment gives none
    ])  # fmt: skip
    a, b, c = (scorer.member_row(m) for m in "abc")
    assert (a.curation, a.received) == pytest.approx((3.0, 0.0))
    assert (b.received, b.events_counted, b.first_seen, b.last_active) == pytest.approx((4.0, 0, T0, T0))
    assert (c.creation, c.received) == pytest.approx((6.0, 0.0))
    assert out.touched == {"a", "b", "c"}
    assert scorer.members_count == 3


def test_first_seen_last_active_and_earliest_join_source() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0, LIKE, "a"), at(T0 + DAY, JOIN, "a", source="promotion")])
    assert scorer.member_row("a").join_source == "promotion"
    scorer.apply([at(T0 + 2 * DAY, JOIN, "a", source="organic")])  # a re-join keeps the first source
    scorer.apply([at(T0 - DAY, JOIN, "a", source="invite")])  # an earlier join, arriving late, wins
    row = scorer.member_row("a")
    assert (row.join_source, row.first_seen, row.last_active, row.events_counted) == (
        "invite", T0 - DAY, T0 + 2 * DAY, 4,
    )  # fmt: skip


def test_unknown_member_row_says_so() -> None:
    scorer = CommunityScorer("c", CONFIG)
    with pytest.raises(KeyError, match="nobody"):
        scorer.member_row("nobody")


def test_events_of_another_community_are_refused_before_anything_changes() -> None:
    scorer = CommunityScorer("c", CONFIG)
    with pytest.raises(ValueError, match="route events"):
        scorer.apply([at(T0, COMMENT, "a"), at(T0, COMMENT, "b", community="other")])
    assert scorer.members_count == 0
    assert scorer.clock == float("-inf")


# ----------------------------------------------------------------------------- staff


@pytest.mark.parametrize("role", [OWNER, MODERATOR, BOT])
def test_staff_is_scored_but_left_out_of_ranks_and_counts(role: int) -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply(
        [at(T0, COMMENT, "staff", role=role) for _ in range(5)]
        + [at(T0, COMMENT, "m1"), at(T0, LIKE, "m2"), at(T0, LIKE, "m2")]
    )
    staff = scorer.member_row("staff")
    assert staff.creation == pytest.approx(15.0)
    assert staff.tier == "creator"  # computed like anyone's, never ambassador
    assert staff.actor_role in ("owner", "moderator", "bot")
    assert scorer.member_row("m1").tier == "ambassador"
    row = scorer.community_row()
    assert (row.members, row.lurkers, row.curators, row.creators, row.ambassadors) == (2, 0, 1, 0, 1)


def test_member_who_becomes_moderator_leaves_the_counts() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0, COMMENT, "a"), at(T0, COMMENT, "b"), at(T0, COMMENT, "b")])
    assert tiers(scorer) == {"a": "creator", "b": "ambassador"}
    out = scorer.apply([at(T0 + 60, LIKE, "b", role=MODERATOR)])
    assert tiers(scorer) == {"a": "ambassador", "b": "creator"}
    assert sorted((c.member_id, c.from_tier, c.to_tier) for c in out.tier_changes) == [
        ("a", "creator", "ambassador"),
        ("b", "ambassador", "creator"),
    ]
    assert scorer.community_row().members == 1
    # An older event with the member role does not undo the newer moderator role.
    scorer.apply([at(T0 + 30, LIKE, "b")])
    assert scorer.member_row("b").actor_role == "moderator"


# ----------------------------------------------------------------------------- spam exclusion


def test_set_excluded_takes_a_member_out_and_back() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply(
        [at(T0, COMMENT, "spam") for _ in range(3)] + [at(T0, COMMENT, "real"), at(T0, JOIN, "quiet")]
    )
    assert tiers(scorer) == {"spam": "ambassador", "real": "creator", "quiet": "lurker"}

    flips = scorer.set_excluded("spam", True)
    assert [(c.member_id, c.from_tier, c.to_tier, c.at) for c in flips] == [
        ("spam", "ambassador", "creator", T0),  # losses first, then gains
        ("real", "creator", "ambassador", T0),
    ]
    row = scorer.community_row()
    assert (row.members, row.creators, row.ambassadors, row.flagged_members) == (2, 0, 1, 1)
    assert scorer.set_excluded("spam", True) == []  # idempotent

    scorer.apply([at(T0 + 10, COMMENT, "spam")])  # keeps accumulating
    spam = scorer.member_row("spam")
    assert spam.excluded and spam.creation == pytest.approx(12.0, rel=1e-4)
    assert spam.tier == "creator"

    flips = scorer.set_excluded("spam", False)
    assert sorted((c.member_id, c.to_tier) for c in flips) == [("real", "creator"), ("spam", "ambassador")]
    row = scorer.community_row()
    assert (row.members, row.creators, row.ambassadors, row.flagged_members) == (3, 1, 1, 0)


def test_excluding_a_member_not_seen_yet_applies_at_their_first_event() -> None:
    scorer = CommunityScorer("c", CONFIG)
    assert scorer.set_excluded("later", True) == []
    assert scorer.community_row().flagged_members == 1
    scorer.apply([at(T0, COMMENT, "later"), at(T0, JOIN, "other")])
    assert scorer.member_row("later").excluded
    row = scorer.community_row()
    assert (row.members, row.lurkers, row.creators, row.ambassadors, row.flagged_members) == (1, 1, 0, 0, 1)


# ----------------------------------------------------------------------------- duplicates and late events


def test_duplicates_change_nothing_within_a_batch_and_across_batches() -> None:
    scorer = CommunityScorer("c", CONFIG)
    first = at(T0, COMMENT, "a", event_id="same")
    out = scorer.apply([first, first, at(T0, LIKE, "b")])
    assert (out.scored, out.duplicates) == (2, 1)
    before = scorer.snapshot()
    out = scorer.apply([first, at(T0 + 1, COMMENT, "a", event_id="same")])  # same id: same fact
    assert (out.scored, out.duplicates, out.late, out.touched, out.tier_changes) == (0, 2, 0, set(), [])
    assert scorer.snapshot() == before


def test_late_events_are_counted_and_ignored() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0, COMMENT, "a"), at(T0 + 10 * DAY, JOIN, "b")])
    before = scorer.snapshot()
    out = scorer.apply([at(T0 + 3 * DAY - 1, LIKE, "c"), at(T0 + 2 * DAY, COMMENT, "a")])
    assert (out.scored, out.late, out.duplicates) == (0, 2, 0)
    assert scorer.snapshot() == before
    out = scorer.apply([at(T0 + 3 * DAY, LIKE, "c")])  # exactly lateness behind the clock: still scored
    assert (out.scored, out.late) == (1, 0)
    assert scorer.member_row("c").curation == pytest.approx(2 ** (-7 / 14))


def test_redelivery_after_the_dedup_window_is_late_not_double_counted() -> None:
    scorer = CommunityScorer("c", CONFIG)
    old = at(T0, COMMENT, "a", event_id="old")
    scorer.apply([old] + [at(T0 + d * DAY, JOIN, "b") for d in range(1, 12)])
    out = scorer.apply([old])
    assert (out.scored, out.duplicates, out.late) == (0, 0, 1)
    assert scorer.member_row("a").events_counted == 1


def test_dedup_memory_forgets_days_past_the_window() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0 + d * DAY, LIKE, "a") for d in range(30)])
    days = scorer.snapshot()["dedup"]["days"]
    assert 7 <= len(days) <= 9  # about a week of days, not thirty


# ----------------------------------------------------------------------------- community row


def test_active_creators_commented_within_the_active_window() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0, COMMENT, "veteran") for _ in range(5)] + [at(T0 + 31 * DAY, COMMENT, "fresh")])
    assert tiers(scorer) == {"veteran": "ambassador", "fresh": "creator"}
    row = scorer.community_row()
    assert scorer.member_row("veteran").creation > 2.7
    assert (row.creators, row.ambassadors, row.active_creators) == (1, 1, 1)


def test_active_creators_count_from_the_latest_comment() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0, COMMENT, "a") for _ in range(5)] + [at(T0 + 2 * DAY, COMMENT, "a")])
    scorer.apply([at(T0 + 31 * DAY, JOIN, "b")])
    assert scorer.member_row("a").tier == "ambassador"
    assert scorer.community_row().active_creators == 1  # the comment of day 2 is 29 days old
    scorer.apply([at(T0 + 33 * DAY, JOIN, "b")])
    assert scorer.community_row().active_creators == 0


def test_creation_concentration_shares() -> None:
    scorer = CommunityScorer("c", CONFIG)
    events = []
    for i in range(10):  # m0 comments 10 times, m1 9 times, ..., m9 once: 55 comments
        events += [at(T0, COMMENT, f"m{i}") for _ in range(10 - i)]
    events += [at(T0, JOIN, f"lurker{i}") for i in range(90)]  # 100 eligible: top1 = 1, top20 = 20
    scorer.apply(events)
    row = scorer.community_row()
    assert row.top1_creation_share == pytest.approx(10 / 55)
    assert row.top20_creation_share == pytest.approx(1.0)
    assert (row.members, row.lurkers, row.creators, row.ambassadors) == (100, 90, 9, 1)
    assert row.lurkers + row.curators + row.creators + row.ambassadors == row.members


# ----------------------------------------------------------------------------- snapshot


def _rows(scorer: CommunityScorer) -> list[object]:
    return [scorer.member_row(m) for m in scorer.member_ids()] + [scorer.community_row()]


def test_snapshot_round_trip_through_json_is_exact_and_continues_identically() -> None:
    events = synthetic_events(3000, 80, seed=5, span_days=30, staff_every=9)
    original = CommunityScorer("c1", CONFIG)
    original.apply(events[:2000])
    original.set_excluded("m0000003", True)
    original.set_excluded("not-yet", True)
    snapshot = orjson.loads(orjson.dumps(original.snapshot()))
    restored = CommunityScorer.restore("c1", CONFIG, snapshot)
    assert _rows(restored) == _rows(original)
    assert restored.clock == original.clock
    out_a, out_b = original.apply(events[2000:]), restored.apply(events[2000:])
    assert out_a == out_b
    assert orjson.dumps(restored.snapshot()) == orjson.dumps(original.snapshot())
    assert _rows(restored) == _rows(original)
    # A redelivered event is still a duplicate after the restore.
    assert restored.apply(events[2990:]).duplicates == 10


def test_restore_refuses_a_snapshot_taken_with_another_half_life() -> None:
    scorer = CommunityScorer("c", CONFIG)
    scorer.apply([at(T0, COMMENT, "a")])
    with pytest.raises(ValueError, match="half-life"):
        CommunityScorer.restore("c", ScoringConfig(half_life_days=30), scorer.snapshot())
    with pytest.raises(ValueError, match="replay"):
        CommunityScorer.restore("other", CONFIG, scorer.snapshot())


def test_empty_scorer_snapshot_restores() -> None:
    scorer = CommunityScorer.restore(
        "c", CONFIG, orjson.loads(orjson.dumps(CommunityScorer("c", CONFIG).snapshot()))
    )
    assert scorer.members_count == 0 and scorer.clock == float("-inf")
    scorer.apply([at(T0, COMMENT, "a")])
    assert scorer.member_row("a").tier == "ambassador"


def test_config_refuses_a_dedup_window_shorter_than_lateness() -> None:
    with pytest.raises(ValueError, match="dedup window"):
        ScoringConfig(dedup_window_seconds=DAY, lateness_seconds=2 * DAY)
    with pytest.raises(ValueError, match="half_life_days"):
        ScoringConfig(half_life_days=0)


def test_tier_names_are_the_schema_tiers() -> None:
    assert set(TIER_NAMES) == {tier.value for tier in Tier}


def test_bench_prints_and_returns_its_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    result = bench_scoring(1000, 100, batch_size=250)
    assert result["members"] == 100
    assert result["events_per_second"] > 0
    assert 0 < result["bytes_per_member"] < 5000
    assert "events_per_second=" in capsys.readouterr().out
