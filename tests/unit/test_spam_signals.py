"""Each spam signal pinned just below and just above its threshold, and who is never flagged."""

from __future__ import annotations

import pytest
from spam_events import DAY, FP, IMPORT, OLD, T0, YOUNG, comments, ev, join, posts, spaced

from schemas.outputs import SpamStatus
from streams.event_record import BOT, COMMENT, LIKE, MODERATOR, OWNER, SHARE, EventRecord
from streams.spam import FlagRecord, SpamConfig, SpamDetector


def run(events: list[EventRecord], config: SpamConfig | None = None) -> tuple[SpamDetector, list[FlagRecord]]:
    det = SpamDetector("c1", config)
    return det, det.observe(events)




# --- burst -----------------------------------------------------------------------------


def test_six_comments_inside_30_seconds_flag_at_the_sixth() -> None:
    events = [join("m", OLD), *comments("m", spaced(T0, 6, 29.9))]
    det, flags = run(events)
    assert len(flags) == 1
    flag = flags[0]
    assert flag.reasons == ("burst_comments",)
    assert flag.event_id == events[-1].event_id and flag.flagged_at == events[-1].ts
    assert flag.status == "flagged" and flag.score == 1.0
    assert det.is_excluded("m") and det.status("m") == "flagged"


@pytest.mark.parametrize(("n", "span"), [(5, 5.0), (6, 30.0)])
def test_five_comments_or_six_over_30_seconds_are_no_burst(n: int, span: float) -> None:
    det, flags = run([join("m", OLD), *comments("m", spaced(T0, n, span))])
    assert flags == [] and not det.is_excluded("m")


def test_sixteen_comments_inside_ten_minutes_are_a_burst_fifteen_are_not() -> None:
    # 40 s apart: never six inside 30 s, so only the long window can fire.
    _, flags = run([join("m", OLD), *comments("m", spaced(T0, 16, 599.0))])
    assert [f.reasons for f in flags] == [("burst_comments",)]
    _, flags = run([join("m", OLD), *comments("m", spaced(T0, 15, 560.0))])
    assert flags == []
    _, flags = run([join("m", OLD), *comments("m", spaced(T0, 16, 600.0))])
    assert flags == []


def test_fifty_one_likes_in_a_minute_are_a_burst_fifty_are_not() -> None:
    likes = [ev(LIKE, "m", t) for t in spaced(T0, 51, 59.9)]
    _, flags = run([join("m", OLD), *likes])
    assert [f.reasons for f in flags] == [("burst_likes",)]
    assert flags[0].event_id == likes[-1].event_id
    _, flags = run([join("m", OLD), *likes[:50]])
    assert flags == []


def test_a_late_comment_completing_a_burst_is_caught() -> None:
    times = spaced(T0, 6, 20.0)
    events = comments("m", times)
    late = events.pop(2)  # arrives after the others, with its original event time
    _, flags = run([join("m", OLD), *events, late])
    assert len(flags) == 1 and flags[0].event_id == late.event_id


def test_shares_do_not_count_towards_any_burst() -> None:
    shares = [ev(SHARE, "m", t) for t in spaced(T0, 80, 30.0)]
    assert run([join("m", OLD), *shares])[1] == []


# --- duplicate content ----------------------------------------------------------------------

def test_the_same_link_post_on_three_targets_flags_a_young_member_at_the_third() -> None:
    events = [join("m", YOUNG), *posts("m", [FP, FP ^ 0b1, FP ^ 0b110], ["t1", "t2", "t3"])]
    _, flags = run(events)
    assert len(flags) == 1
    assert flags[0].reasons == ("duplicate_content",) and flags[0].event_id == events[-1].event_id


def test_two_targets_or_a_repeat_on_the_same_target_is_no_duplicate() -> None:
    assert run([join("m", YOUNG), *posts("m", [FP, FP], ["t1", "t2"])])[1] == []
    assert run([join("m", YOUNG), *posts("m", [FP, FP, FP], ["t1", "t2", "t1"])])[1] == []


def test_hamming_three_is_near_four_is_not() -> None:
    near = [FP, FP ^ 0b111, FP ^ 0b111_000]  # each 3 bits from the first
    assert len(run([join("m", YOUNG), *posts("m", near, ["t1", "t2", "t3"])])[1]) == 1
    far = [FP, FP ^ 0b1111, FP ^ 0b1111_0000]  # 4 bits from the first, 8 from each other
    assert run([join("m", YOUNG), *posts("m", far, ["t1", "t2", "t3"])])[1] == []


def test_near_duplicates_group_transitively() -> None:
    # b and c are 4 bits apart, but both are 2 bits from a: one text, three targets.
    a, b, c = FP, FP ^ 0b11, FP ^ 0b1100
    assert len(run([join("m", YOUNG), *posts("m", [b, c, a], ["t1", "t2", "t3"])])[1]) == 1


def test_duplicates_spread_over_more_than_a_day_do_not_count() -> None:
    events = [join("m", YOUNG)]
    for i, t in enumerate((T0, T0 + 0.6 * DAY, T0 + 1.2 * DAY)):
        events += posts("m", [FP], [f"t{i}"], start=t)
    assert run(events)[1] == []


def test_linkless_duplicates_are_stock_replies_not_spam() -> None:
    _, flags = run([join("m", YOUNG), *posts("m", [FP] * 5, [f"t{i}" for i in range(5)], links=0)])
    assert flags == []


def test_an_established_member_pasting_the_same_welcome_is_not_flagged() -> None:
    # The greeter: weeks old, the same welcome (with a link to the rules) under every newcomer.
    targets = [f"join-{i}" for i in range(12)]
    events = [join("greeter", OLD), *posts("greeter", [FP ^ (1 << i) for i in range(12)], targets)]
    det, flags = run(events)
    assert flags == [] and det.status("greeter") == "none"


def test_duplicates_from_a_member_older_than_the_established_age_are_weak() -> None:
    cfg = SpamConfig(established_seconds=DAY)  # two days old is now established
    assert run([join("m", YOUNG), *posts("m", [FP] * 3, ["t1", "t2", "t3"])], cfg)[1] == []


# --- newcomer signals ------------------------------------------------------------------------


def dropped(member: str, start: float, links: list[int], gap: float = 600.0) -> list[EventRecord]:
    """Comments under other members' content carrying `links` links each."""
    return [
        ev(COMMENT, member, start + gap * i, target=f"t{i}", author=f"a{i}", links=n)
        for i, n in enumerate(links)
    ]


def test_link_dropping_newcomer_is_flagged_at_the_comment_reaching_four_links() -> None:
    events = [join("n", T0), *dropped("n", T0 + 120, [1, 1, 2])]
    _, flags = run(events)
    assert [f.reasons for f in flags] == [("link_heavy_newcomer",)]
    assert flags[0].event_id == events[-1].event_id


@pytest.mark.parametrize(
    "links",
    [
        [1, 1, 1],  # three links: link-heavy, but only weak
        [2, 2],  # four links in two comments
        [0, 1, 1, 2],  # one comment without a link: not every comment carries one
    ],
)
def test_link_heavy_below_the_strong_level_alone_is_not_flagged(links: list[int]) -> None:
    assert run([join("n", T0), *dropped("n", T0 + 120, links)])[1] == []


def test_links_in_ones_own_launch_post_are_not_link_dropping() -> None:
    launch = ev(COMMENT, "n", T0 + 60, links=3)  # a top-level post of their own
    events = [join("n", T0), launch, *dropped("n", T0 + 600, [1, 1])]
    assert run(events)[1] == []


def test_links_after_the_first_day_are_not_newcomer_evidence() -> None:
    assert run([join("n", T0), *dropped("n", T0 + DAY + 60, [2, 2, 2])])[1] == []


def test_velocity_is_weak_above_ten_and_strong_above_twenty_five_first_day_comments() -> None:
    times = spaced(T0 + 60, 26, 20 * 3600.0)  # 48 min apart: no burst
    _, flags = run([join("n", T0), *comments("n", times[:25])])
    assert flags == []  # 25 comments: velocity fired, but weak
    events = [join("n", T0), *comments("n", times)]
    _, flags = run(events)
    assert [f.reasons for f in flags] == [("first_day_velocity",)]
    assert flags[0].event_id == events[-1].event_id


def test_two_weak_signals_together_flag_with_both_reasons() -> None:
    # Eleven first-day comments (velocity, weak), six of them with a link (link-heavy, weak: share >= 0.5).
    links = [1, 0] * 5 + [1]
    events = [join("n", T0), *dropped("n", T0 + 60, links, gap=1800.0)]
    _, flags = run(events)
    assert len(flags) == 1
    assert flags[0].reasons == ("link_heavy_newcomer", "first_day_velocity")
    assert flags[0].score == 1.0 and flags[0].event_id == events[-1].event_id


def test_link_heavy_that_stopped_holding_does_not_combine_later() -> None:
    # Early links (weak link-heavy), then many plain comments: by the eleventh, links are a minority.
    links = [1, 1, 1] + [0] * 8
    assert run([join("n", T0), *dropped("n", T0 + 60, links, gap=1800.0)])[1] == []


def test_imported_members_are_not_newcomers() -> None:
    events = [join("n", T0, source=IMPORT), *comments("n", spaced(T0 + 60, 40, 20 * 3600.0))]
    assert run(events)[1] == []


def test_without_a_join_the_first_event_starts_the_newcomer_clock() -> None:
    events = comments("n", spaced(T0, 26, 20 * 3600.0))
    assert len(run(events)[1]) == 1


# --- who is never flagged, and flags once ---------------------------------------------------------


@pytest.mark.parametrize("role", [OWNER, MODERATOR, BOT])
def test_staff_are_never_flagged(role: int) -> None:
    events = [join("s", T0, role=role)]
    events += [ev(COMMENT, "s", T0 + i, role=role, links=3, fp=FP, target=f"t{i}") for i in range(40)]
    events += [ev(LIKE, "s", T0 + 100 + i * 0.1, role=role) for i in range(200)]
    det, flags = run(events)
    assert flags == [] and not det.is_excluded("s") and det.status("s") == "none"


def test_a_member_is_flagged_once_and_stays_excluded() -> None:
    events = [join("m", OLD), *comments("m", spaced(T0, 60, 60.0))]
    det, flags = run(events)
    assert len(flags) == 1 and det.is_excluded("m")
    assert det.observe(comments("m", spaced(T0 + 3600, 30, 30.0))) == []


def test_other_members_are_unaffected() -> None:
    events = [join("m", OLD), join("quiet", OLD), *comments("m", spaced(T0, 6, 10.0))]
    events.append(ev(COMMENT, "quiet", T0 + 5))
    det, _ = run(events)
    assert det.is_excluded("m") and not det.is_excluded("quiet") and det.status("nobody") == "none"


def test_a_flag_converts_to_the_published_schema() -> None:
    _, flags = run([join("m", OLD), *comments("m", spaced(T0, 6, 10.0))])
    flag = flags[0].to_spam_flag()
    assert flag.status is SpamStatus.FLAGGED and flag.reasons == ["burst_comments"]
    assert flag.flagged_at.timestamp() == flags[0].flagged_at and flag.event_id == flags[0].event_id
    assert FlagRecord.from_json(flags[0].to_json()) == flags[0]


def test_a_redelivered_event_counts_once() -> None:
    # Three comments, each delivered twice (same event, same time): three comments, not six in 30 s.
    once = comments("m", spaced(T0, 3, 10.0))
    det, flags = run([join("m", OLD), *once, *once])
    assert flags == []
    likes = [ev(LIKE, "m", t) for t in spaced(T0, 30, 50.0)]
    assert det.observe(likes + likes) == []
