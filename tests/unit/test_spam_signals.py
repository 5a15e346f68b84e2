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


def test_hamming_four_is_near_five_is_not() -> None:
    # Copies of a spinner each 2 bits from an original never posted are 4 from each other.
    near = [FP, FP ^ 0b1111, FP ^ 0b1111_0000]  # each 4 bits from the first
    assert len(run([join("m", YOUNG), *posts("m", near, ["t1", "t2", "t3"])])[1]) == 1
    far = [FP, FP ^ 0b11111, FP ^ 0b11111_00000]  # 5 bits from the first, 10 from each other
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
    # A regular: five texts of its own in the weeks before.
    history = comments("greeter", spaced(OLD + DAY, 5, 30 * DAY))
    targets = [f"join-{i}" for i in range(12)]
    events = [join("greeter", OLD), *history, *posts("greeter", [FP ^ (1 << i) for i in range(12)], targets)]
    det, flags = run(events)
    # weak evidence: one review for a moderator (who clears it once, docs/spam.md), never a flag
    assert [(f.status, f.reasons) for f in flags] == [("review", ("duplicate_content",))]
    assert det.status("greeter") == "review" and not det.is_excluded("greeter")
    det.apply_moderation("greeter", "clear", "mod-ann", "", T0 + DAY)
    more = posts("greeter", [FP ^ (1 << i) for i in range(12, 20)], [f"join-{i}" for i in range(12, 20)],
                 start=T0 + 2 * DAY)
    assert det.observe(more) == [] and det.status("greeter") == "dismissed"  # the welcome stays reviewed


def test_an_old_but_silent_account_pasting_a_link_three_times_is_flagged() -> None:
    # The sleeper: joined weeks ago, a like and three comments of its own, then the same text with a link.
    history = comments("sleeper", spaced(OLD + DAY, 3, 30 * DAY))
    copies = posts("sleeper", [FP, FP ^ 1, FP ^ 2], ["t1", "t2", "t3"])
    _, flags = run([join("sleeper", OLD), ev(LIKE, "sleeper", OLD + 60), *history, *copies])
    assert [(f.reasons, f.status, f.event_id) for f in flags] == [
        (("duplicate_content",), "flagged", copies[-1].event_id)
    ]


def test_duplicates_from_an_established_member_are_weak_and_go_to_review() -> None:
    cfg = SpamConfig(established_seconds=DAY)  # two days old is now established, with five texts of its own
    history = comments("m", spaced(YOUNG + 3600, 5, 3600.0))
    det, flags = run([join("m", YOUNG), *history, *posts("m", [FP] * 3, ["t1", "t2", "t3"])], cfg)
    assert [(f.status, f.score, f.reasons) for f in flags] == [("review", 0.5, ("duplicate_content",))]
    assert det.status("m") == "review" and not det.is_excluded("m")
    # without a record of its own (four texts and the first copy do not make five), they are strong
    _, flags = run([join("m", YOUNG), *history[:3], *posts("m", [FP] * 3, ["t1", "t2", "t3"])], cfg)
    assert [f.status for f in flags] == ["flagged"]


# --- newcomer signals ------------------------------------------------------------------------


def dropped(member: str, start: float, links: list[int], gap: float = 600.0) -> list[EventRecord]:
    """Comments under other members' content carrying `links` links each."""
    return [
        ev(COMMENT, member, start + gap * i, target=f"t{i}", author=f"a{i}", links=n)
        for i, n in enumerate(links)
    ]


def flagged(flags: list[FlagRecord]) -> list[FlagRecord]:
    return [f for f in flags if f.status == "flagged"]


def reviewed(flags: list[FlagRecord]) -> list[FlagRecord]:
    return [f for f in flags if f.status == "review"]


@pytest.mark.parametrize("links", [[2, 2], [2, 3], [3, 3], [3, 2, 2]])
def test_the_link_dropper_is_flagged_at_its_second_drop(links: list[int]) -> None:
    # Joins, a few ordinary likes, and within hours two or three comments under other members' content, each
    # with two or three links (issue 14): flagged at the second comment.
    events = [join("n", T0, source=3), ev(LIKE, "n", T0 + 300), ev(LIKE, "n", T0 + 900),
              *dropped("n", T0 + 3 * 3600, links, gap=1800.0)]
    det, flags = run(events)
    assert [(f.status, f.reasons, f.event_id) for f in flagged(flags)] == [
        ("flagged", ("link_heavy_newcomer",), events[4].event_id)
    ]
    # a first drop with three links is over a new user's allowance already: a review before the flag
    assert [f.event_id for f in reviewed(flags)] == ([events[3].event_id] if links[0] >= 3 else [])
    assert det.is_excluded("n")


def test_the_link_dropper_with_one_ordinary_comment_first_is_flagged_too() -> None:
    events = [join("n", T0), ev(COMMENT, "n", T0 + 600, target="t", author="a"), *dropped("n", T0 + 3600, [2, 2])]
    assert [f.status for f in run(events)[1]] == ["flagged"]


def test_three_comments_each_a_drop_are_link_dropping() -> None:
    # Nothing but drops, three of them (Discourse: a new user's third link to one host is spam).
    events = [join("n", T0), *dropped("n", T0 + 120, [1, 1, 1])]
    assert [(f.status, f.event_id) for f in run(events)[1]] == [("flagged", events[-1].event_id)]


def test_the_enthusiastic_newcomer_sharing_one_or_two_useful_links_is_not_flagged() -> None:
    # Talks first, then shares a link (or one comment with two), among ordinary comments.
    for links in ([0, 0, 1, 0, 1, 0], [0, 2, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 2, 0, 0, 0, 0]):
        det, flags = run([join("n", T0), *dropped("n", T0 + 600, links, gap=1500.0)])
        assert flags == [] and det.status("n") == "none", links


def test_the_launch_day_poster_is_not_flagged() -> None:
    # Their launch post (three links: the project, its site, its repository), replies, an answer with two links.
    launch = ev(COMMENT, "n", T0 + 60, links=3)  # a top-level post of their own
    replies = dropped("n", T0 + 600, [0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], gap=900.0)
    det, flags = run([join("n", T0), launch, *replies])
    assert flags == [] and det.status("n") == "none"
    # even answering twice with links right after the launch post: a review at most, never a flag
    det, flags = run([join("n", T0), launch, *dropped("n", T0 + 600, [2, 1, 0, 0, 0], gap=900.0)])
    assert flagged(flags) == [] and not det.is_excluded("n")


@pytest.mark.parametrize(
    "links",
    [
        [1, 1, 0],  # two links dropped: nothing
        [2, 0, 0],  # one drop with two links: nothing
        [1, 2, 0, 0],  # three dropped links, half the comments: weak
        [0, 0, 2, 2],  # four in two drops, but two plain comments: weak
    ],
)
def test_link_heavy_below_the_strong_level_is_at_most_a_review(links: list[int]) -> None:
    det, flags = run([join("n", T0), *dropped("n", T0 + 120, links)])
    assert flagged(flags) == [] and not det.is_excluded("n")
    weak = [("review", 0.5, ("link_heavy_newcomer",))] if sum(links) >= 3 else []
    assert [(f.status, f.score, f.reasons) for f in flags] == weak


def test_links_in_ones_own_launch_post_are_not_link_dropping() -> None:
    launch = ev(COMMENT, "n", T0 + 60, links=3)  # a top-level post of their own
    events = [join("n", T0), launch, *dropped("n", T0 + 600, [1, 1])]
    assert run(events)[1] == []
    # the same links dropped under other members' content: strong (three drops and nothing else)
    assert [f.status for f in flagged(run([join("n", T0), *dropped("n", T0 + 60, [3, 1, 1])])[1])] == ["flagged"]


def test_links_after_the_first_day_are_not_newcomer_evidence() -> None:
    assert run([join("n", T0), *dropped("n", T0 + DAY + 60, [2, 2, 2])])[1] == []


def test_velocity_is_strong_at_twenty_five_first_day_replies() -> None:
    times = spaced(T0 + 60, 25, 20 * 3600.0)  # 50 min apart: no burst
    _, flags = run([join("n", T0), *comments("n", times[:24])])
    assert flags == []  # 24 comments: velocity fired, but only as a hint (below review)
    events = [join("n", T0), *comments("n", times)]
    _, flags = run(events)
    assert [(f.status, f.reasons) for f in flags] == [("flagged", ("first_day_velocity",))]
    assert flags[0].event_id == events[-1].event_id


def test_a_busy_newcomer_with_posts_of_its_own_is_no_velocity_spam() -> None:
    # A fifth of its comments are top-level posts (its own conversations): not a flood of replies, however many.
    times = spaced(T0 + 60, 80, 20 * 3600.0)
    mixed = [ev(COMMENT, "n", t) if i % 5 == 0 else ev(COMMENT, "n", t, target=f"t{i}", author=f"a{i}")
             for i, t in enumerate(times)]
    det, flags = run([join("n", T0), *mixed])
    assert flags == [] and det.status("n") == "none"


def test_weak_link_heavy_goes_to_review_and_a_strong_signal_later_flags() -> None:
    # Three dropped links in half the comments (weak): review at the fourth comment; then a burst flags.
    links = [1, 0, 2, 0, 0, 0]
    events = [join("n", T0), *dropped("n", T0 + 60, links, gap=1800.0)]
    det, flags = run(events)
    assert [(f.status, f.score, f.reasons, f.event_id, f.version) for f in flags] == [
        ("review", 0.5, ("link_heavy_newcomer",), events[3].event_id, 1)
    ]
    assert det.status("n") == "review" and not det.is_excluded("n")
    assert det.flag("n") == flags[0] and flags[0].to_spam_flag().status is SpamStatus.REVIEW
    burst = comments("n", spaced(T0 + 6 * 3600, 6, 10.0))
    again = det.observe(burst)
    assert [(f.status, f.event_id, f.version) for f in again] == [("flagged", burst[-1].event_id, 2)]
    assert det.is_excluded("n")


def test_velocity_with_weak_link_heavy_goes_to_review() -> None:
    # Eleven first-day comments (velocity: a hint, 0.25), six with a link (link-heavy, weak 0.5): 0.75.
    links = [1, 0] * 5 + [1]
    events = [join("n", T0), *dropped("n", T0 + 60, links, gap=1800.0)]
    _, flags = run(events)
    assert [(f.status, f.reasons) for f in flags][-1:] == [("review", ("link_heavy_newcomer",))]


def test_link_heavy_that_stopped_holding_does_not_combine_later() -> None:
    # Early links (weak link-heavy), then many plain comments: by the eleventh, links are a minority.
    links = [1, 0, 1, 1] + [0] * 8
    flags = run([join("n", T0), *dropped("n", T0 + 60, links, gap=1800.0)])[1]
    assert [(f.status, f.reasons) for f in flags] == [("review", ("link_heavy_newcomer",))]  # at the 4th only


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
