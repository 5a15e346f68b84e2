"""Moderation (confirm, clear), replay determinism, snapshots and bounded memory of the spam detector."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson
import pytest
from spam_events import DAY, FP, OLD, T0, YOUNG, comments, ev, join, posts, spaced

from schemas.outputs import ModerationAction, ModerationDecision
from streams.event_record import LIKE
from streams.spam import FlagRecord, SpamDetector
from streams.tools.simulate import simulate
from streams.tools.spam_evaluation import record_from_json, run_detector_offline


def flagged_for_burst(member: str = "m") -> tuple[SpamDetector, FlagRecord]:
    det = SpamDetector("c1")
    flags = det.observe([join(member, OLD), *comments(member, spaced(T0, 6, 10.0))])
    assert len(flags) == 1
    return det, flags[0]


def test_confirm_keeps_the_member_excluded_for_good() -> None:
    det, flag = flagged_for_burst()
    confirmed = det.apply_moderation("m", "confirm", "mod-ann", "selling crypto", T0 + 3600)
    assert confirmed is not None
    assert confirmed.status == "confirmed" and det.status("m") == "confirmed" and det.is_excluded("m")
    assert confirmed.flagged_at == flag.flagged_at and confirmed.event_id == flag.event_id
    assert confirmed.reasons == flag.reasons
    assert confirmed.decided_by == "mod-ann" and confirmed.decided_at == T0 + 3600
    assert confirmed.version == flag.version + 1
    assert det.observe(comments("m", spaced(T0 + 2 * DAY, 3, 60.0))) == []
    assert det.is_excluded("m")
    assert det.apply_moderation("m", "confirm", "mod-bob", "", T0 + 7200) is None  # nothing changes


def test_clear_readmits_and_the_reviewed_behaviour_does_not_flag_again() -> None:
    # A young member pasting the same link post: flagged; a moderator knows it is a legit announcement.
    det = SpamDetector("c1")
    flags = det.observe([join("m", YOUNG), *posts("m", [FP, FP ^ 1, FP ^ 2], ["t1", "t2", "t3"])])
    assert [f.reasons for f in flags] == [("duplicate_content",)]
    cleared = det.apply_moderation("m", "clear", "mod-ann", "our announcement", T0 + 600)
    assert cleared is not None and cleared.status == "cleared"
    assert not det.is_excluded("m") and det.status("m") == "cleared"
    # The same announcement keeps being posted after the clear: reviewed, no new flag.
    again = posts("m", [FP ^ 4, FP ^ 8, FP ^ 16, FP ^ 32], ["t4", "t5", "t6", "t7"], start=T0 + 3600)
    assert det.observe(again) == []
    assert det.status("m") == "cleared"


def test_new_evidence_after_a_clear_flags_again() -> None:
    det, first = flagged_for_burst()
    det.apply_moderation("m", "clear", "mod-ann", "fast typist", T0 + 600)
    burst = comments("m", spaced(T0 + DAY, 6, 10.0))
    flags = det.observe(burst)
    assert len(flags) == 1
    again = flags[0]
    assert again.status == "flagged" and again.flagged_at == burst[-1].ts > first.flagged_at
    assert again.event_id == burst[-1].event_id and again.version == first.version + 2
    assert det.is_excluded("m")


def test_evidence_from_before_the_clear_is_forgiven() -> None:
    det, _ = flagged_for_burst()
    det.apply_moderation("m", "clear", "mod-ann", "", T0 + 600)
    # Late events from before the clear time arrive afterwards: they are part of what was reviewed.
    assert det.observe(comments("m", spaced(T0 + 100, 10, 10.0))) == []
    # Five new comments after the clear are no burst even with the forgiven ones close by.
    assert det.observe(comments("m", spaced(T0 + 605, 5, 10.0))) == []


def test_cleared_newcomer_signals_stay_reviewed() -> None:
    det = SpamDetector("c1")
    events = [join("n", T0), *comments("n", spaced(T0 + 60, 26, 10 * 3600.0))]
    assert len(det.observe(events)) == 1  # first-day velocity, strong
    det.apply_moderation("n", "clear", "mod-ann", "launch day enthusiast", T0 + 11 * 3600)
    assert det.observe(comments("n", spaced(T0 + 12 * 3600, 30, 10 * 3600.0))) == []


def test_a_clear_applied_before_the_flag_on_replay_gives_the_same_outcome() -> None:
    events = [join("m", OLD), *comments("m", spaced(T0, 6, 10.0))]
    det = SpamDetector("c1")
    assert det.apply_moderation("m", "clear", "mod-ann", "", T0 + 600) is None  # no flag yet
    assert det.observe(events) == []
    assert det.status("m") == "none" and not det.is_excluded("m")


def test_confirm_without_a_flag_excludes_the_member() -> None:
    det = SpamDetector("c1")
    rec = det.apply_moderation("x", "confirm", "mod-ann", "reported by members", T0)
    assert rec is not None and rec.status == "confirmed" and rec.reasons == () and rec.event_id == ""
    assert det.is_excluded("x")
    assert det.observe([join("x", T0 + 1), *comments("x", spaced(T0 + 10, 6, 5.0))]) == []


def test_clear_without_a_flag_returns_nothing_and_unknown_actions_are_refused() -> None:
    det = SpamDetector("c1")
    assert det.apply_moderation("x", "clear", "mod-ann", "", T0) is None
    with pytest.raises(ValueError, match="neither 'confirm' nor 'clear'"):
        det.apply_moderation("x", "ban", "mod-ann", "", T0)


def test_a_decision_from_the_gateway_applies_like_the_plain_call() -> None:
    det, _ = flagged_for_burst()
    decision = ModerationDecision(
        community_id="c1", member_id="m", action=ModerationAction.CLEAR, moderator="mod-ann",
        decided_at=datetime.fromtimestamp(T0 + 600, UTC),
    )
    rec = det.apply_decision(decision)
    assert rec is not None and rec.status == "cleared" and rec.decided_at == T0 + 600


# --- determinism --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_log() -> list[dict[str, object]]:
    events, _ = simulate(seed=11, communities=2, members_per_community=600, days=4, spam_profiles_per_community=8)
    return list(events)


def test_the_same_events_give_the_same_flags_whatever_the_batches(small_log: list[dict[str, object]]) -> None:
    whole = run_detector_offline(small_log, batch_size=len(small_log))
    assert len(whole) >= 8  # the simulation's spam is there to be found
    assert run_detector_offline(small_log, batch_size=1) == whole
    assert run_detector_offline(small_log, batch_size=97) == whole


def test_the_same_events_and_decisions_in_the_same_order_replay_identically(
    small_log: list[dict[str, object]],
) -> None:
    records = [record_from_json(e) for e in small_log if e["community_id"] == small_log[-1]["community_id"]]

    def replay(rnd: random.Random) -> list[FlagRecord]:
        """Random batch boundaries; a moderator answers each flag 400 events later (past any batch end)."""
        det = SpamDetector(records[0].community_id)
        out: list[FlagRecord] = []
        due: dict[int, list[str]] = {}  # event index -> members decided right after it
        i = 0
        while i < len(records):
            j = min(len(records), i + rnd.randint(1, 300), min((k for k in due if k >= i), default=len(records)) + 1)
            for flag in det.observe(records[i:j]):
                out.append(flag)
                at = next(k for k in range(i, j) if records[k].event_id == flag.event_id)
                due.setdefault(at + 400, []).append(flag.member_id)
            for member in due.pop(j - 1, []):
                action = "clear" if sum(f.decided_by == "mod" for f in out) % 2 else "confirm"
                decided = det.apply_moderation(member, action, "mod", "", records[j - 1].ts)
                assert decided is not None
                out.append(decided)
            i = j
        return out

    first = replay(random.Random(1))
    assert any(f.status == "cleared" for f in first) and any(f.status == "confirmed" for f in first)
    assert replay(random.Random(2)) == first
    assert replay(random.Random(3)) == first


def test_snapshot_and_restore_continue_exactly(small_log: list[dict[str, object]]) -> None:
    records = [record_from_json(e) for e in small_log if e["community_id"] == small_log[0]["community_id"]]
    half = len(records) // 2
    straight = SpamDetector(records[0].community_id)
    expected = straight.observe(records)

    first = SpamDetector(records[0].community_id)
    flags = first.observe(records[:half])
    data = orjson.loads(orjson.dumps(first.snapshot()))  # through JSON, as the Faust table stores it
    second = SpamDetector.restore(data)
    flags += second.observe(records[half:])
    assert flags == expected
    assert orjson.dumps(second.snapshot()) == orjson.dumps(straight.snapshot())


def test_a_snapshot_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="replaying the event log"):
        SpamDetector.restore({"v": 99, "community_id": "c1", "watermark": None, "next_sweep": None, "members": {}})


def test_a_snapshot_keeps_moderation_state() -> None:
    det, _ = flagged_for_burst()
    det.apply_moderation("m", "clear", "mod-ann", "", T0 + 600)
    det.apply_moderation("x", "confirm", "mod-ann", "", T0 + 700)
    back = SpamDetector.restore(orjson.loads(orjson.dumps(det.snapshot())))
    assert back.status("m") == "cleared" and back.is_excluded("x") and back.flag("m") == det.flag("m")
    assert back.observe(comments("m", spaced(T0 + 100, 10, 5.0))) == []  # still forgiven


# --- memory ---------------------------------------------------------------------------------


def test_window_state_is_dropped_for_members_idle_a_day() -> None:
    det = SpamDetector("c1")
    det.observe([join(f"m{i}", T0) for i in range(50)])
    det.observe([ev(LIKE, f"m{i}", T0 + i) for i in range(50)])
    det.observe([ev(LIKE, "m1", T0 + 30)])  # m1's second like: a window of two, held apart from the columns
    det.observe(comments("m0", [T0 + 100, T0 + 200]))
    assert det.tracked_members() == (50, 2)  # one like each in the columns; m0's comments, m1's two likes
    det.observe([ev(LIKE, "late", T0 + 2 * DAY)])
    assert det.tracked_members() == (51, 0)  # everyone else idle for more than a day
    # and the one like in m2's column counts for nothing now: 50 more make no storm of 51
    assert det.observe([ev(LIKE, "m2", T0 + 2 * DAY + i * 0.5) for i in range(50)]) == []


def test_window_lists_stay_bounded_for_a_very_busy_member() -> None:
    det = SpamDetector("c1")
    det.observe([join("busy", OLD)])
    det.observe([ev(LIKE, "busy", T0 + 2.0 * i) for i in range(5000)])  # 30 a minute: never a burst
    likes = det.snapshot()["likes"]["busy"]
    assert 1 < len(likes) <= 51  # likes kept: at most one window's worth
    assert not det.is_excluded("busy")
