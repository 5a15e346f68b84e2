"""Forgetting plain members: bounded memory, and not a flag changed by it (veterans, staff, moderation, snapshots)."""

from __future__ import annotations

import random
from dataclasses import replace

import orjson
import pytest
from spam_events import DAY, FP, T0, comments, ev, join, posts, spaced

from streams.event_record import COMMENT, JOIN, LIKE, MODERATOR, EventRecord
from streams.spam import FlagRecord, SpamConfig, SpamDetector
from streams.tools.simulate import simulate
from streams.tools.spam_evaluation import record_from_json

NEVER_FORGET = replace(SpamConfig(), forget_seconds=float("inf"))


def time_passes(det: SpamDetector, start: float, days: float, every: float = 6 * 3600.0) -> list[FlagRecord]:
    """Event time moves on in the community: a passer-by, new each time, likes something every 6 hours."""
    n = int(days * DAY / every)
    return det.observe([ev(LIKE, f"passer-{start + i * every:.0f}", start + i * every) for i in range(1, n + 1)])


def held(det: SpamDetector, member: str) -> bool:
    return det.holds(member)


def forgotten_veteran(member: str = "v", texts: int = 0) -> SpamDetector:
    """A lurker who joined at T0 and liked once (and wrote `texts` comments of its own on its third day),
    forgotten three weeks later."""
    det = SpamDetector("c1")
    det.observe([join(member, T0), ev(LIKE, member, T0 + 60), *comments(member, spaced(T0 + 2 * DAY, texts, 3600.0))]
                if texts > 1 else [join(member, T0), ev(LIKE, member, T0 + 60)])
    time_passes(det, T0, 21)
    assert not held(det, member) and det.forgotten_members() >= 1
    return det


BACK = T0 + 22 * DAY


def first_day_of_a_newcomer(member: str, kind: str) -> list[EventRecord]:
    """What flags a newcomer on its own: 30 comments on day one, or a link under every comment."""
    if kind == "velocity":
        return comments(member, spaced(BACK, 30, 20 * 3600.0))
    return comments(member, spaced(BACK, 4, 3 * 3600.0), links=1)


@pytest.mark.parametrize(("kind", "reason"), [("velocity", "first_day_velocity"), ("links", "link_heavy_newcomer")])
def test_a_forgotten_veteran_back_is_no_newcomer(kind: str, reason: str) -> None:
    det = forgotten_veteran("v")
    det.observe([join("n", BACK - 60)])  # a real newcomer does the same at the same time: flagged
    flags = det.observe(first_day_of_a_newcomer("v", kind) + first_day_of_a_newcomer("n", kind))
    assert [(f.member_id, f.reasons) for f in flags] == [("n", (reason,))]
    assert det.status("v") == "none"


def test_a_forgotten_veteran_rejoining_is_still_no_newcomer() -> None:
    det = forgotten_veteran("v")
    assert det.observe([join("v", BACK - 60), *first_day_of_a_newcomer("v", "velocity")]) == []


def test_a_forgotten_veterans_burst_is_still_flagged() -> None:
    det = forgotten_veteran("v")
    burst = comments("v", spaced(BACK, 6, 10.0))
    flags = det.observe(burst)
    assert [(f.member_id, f.reasons, f.event_id) for f in flags] == [("v", ("burst_comments",), burst[-1].event_id)]
    det = forgotten_veteran("w")
    storm = [ev(LIKE, "w", BACK + i) for i in range(51)]
    assert [f.reasons for f in det.observe(storm)] == [("burst_likes",)]


def test_a_forgotten_talkative_veterans_duplicates_stay_weak_like_any_established_members() -> None:
    det = forgotten_veteran("v", texts=5)
    copies = posts("v", [FP, FP ^ 1, FP ^ 2, FP ^ 4], ["t1", "t2", "t3", "t4"], start=BACK)
    # an established member's duplicates: weak, alone; a moderator gets to look (review), nobody is excluded
    assert [(f.status, f.reasons) for f in det.observe(copies)] == [("review", ("duplicate_content",))]
    assert not det.is_excluded("v")
    det.observe([join("n", BACK - 60)])
    flags = det.observe(posts("n", [FP, FP ^ 1, FP ^ 2], ["t1", "t2", "t3"], start=BACK))
    assert [f.member_id for f in flags] == ["n"] and "duplicate_content" in flags[0].reasons


@pytest.mark.parametrize("texts", [0, 3])  # the first copy is a text of its own too: 4 at the third copy
def test_a_forgotten_quiet_veterans_duplicates_are_strong_like_a_sleepers(texts: int) -> None:
    # Forgotten with fewer than `established_comments` texts of its own: old, but not established.
    det = forgotten_veteran("v", texts=texts)
    copies = posts("v", [FP, FP ^ 1, FP ^ 2], ["t1", "t2", "t3"], start=BACK)
    flags = det.observe(copies)
    assert [(f.status, f.reasons, f.event_id) for f in flags] == [
        ("flagged", ("duplicate_content",), copies[-1].event_id)
    ]
    # ...and the same as if it had never been forgotten
    again = SpamDetector("c1", NEVER_FORGET)
    history = [join("v", T0), ev(LIKE, "v", T0 + 60)]
    history += comments("v", spaced(T0 + 2 * DAY, texts, 3600.0)) if texts > 1 else []
    again.observe(history)
    time_passes(again, T0, 21)
    assert [(f.status, f.reasons) for f in again.observe(copies)] == [("flagged", ("duplicate_content",))]


def test_a_moderation_decision_for_a_forgotten_member_knows_it_is_a_veteran() -> None:
    det = forgotten_veteran("v", texts=5)
    assert det.apply_moderation("v", "clear", "mod-ann", "", BACK) is None  # never flagged: nothing to clear
    copies = posts("v", [FP, FP ^ 1, FP ^ 2], ["t1", "t2", "t3"], start=BACK + 60)
    # its duplicates still weak: not taken for a new member (and a review, since it was never reviewed)
    assert [f.status for f in det.observe(copies)] == ["review"]
    assert det.observe(first_day_of_a_newcomer("v", "velocity")) == []  # no newcomer either


def test_staff_are_never_forgotten() -> None:
    det = SpamDetector("c1")
    det.observe([join("mod", T0, role=MODERATOR), ev(LIKE, "mod", T0 + 60, role=MODERATOR)])
    time_passes(det, T0, 30)
    assert held(det, "mod")
    # Staff once, staff for good: a burst posted without the role still flags nothing.
    assert det.observe(comments("mod", spaced(T0 + 31 * DAY, 6, 10.0))) == []


def test_moderated_and_flagged_members_are_never_forgotten() -> None:
    det = SpamDetector("c1")
    det.observe([join("a", T0), join("b", T0), join("c", T0), join("d", T0)])
    flagged = [f for f in det.observe([
        *comments("a", spaced(T0 + 3600, 6, 10.0)),
        *comments("b", spaced(T0 + 7200, 6, 10.0)),
        *comments("c", spaced(T0 + 9000, 6, 10.0)),
    ])]
    assert [f.member_id for f in flagged] == ["a", "b", "c"]
    det.apply_moderation("a", "clear", "mod-ann", "", T0 + 4000)
    det.apply_moderation("b", "confirm", "mod-ann", "", T0 + 8000)
    det.apply_moderation("d", "clear", "mod-ann", "", T0 + 9999)  # forgiven without a flag
    before = {m: (det.status(m), det.flag(m)) for m in "abcd"}
    time_passes(det, T0, 30)
    assert all(held(det, m) for m in "abcd")
    assert {m: (det.status(m), det.flag(m)) for m in "abcd"} == before
    assert det.is_excluded("b") and det.is_excluded("c") and not det.is_excluded("a")


def test_a_late_event_from_a_members_first_week_finds_it_still_held() -> None:
    # Joined at T0 and idle; 8 days later 600 members arrive (the community grows by far more than a quarter,
    # which makes the next sweep look for members to forget). The member is idle for more than `forget_seconds`,
    # yet its first week is still within the scorer's lateness: its late link copies from day 2 are strong.
    det = SpamDetector("c1")
    det.observe([join("y", T0)])
    time_passes(det, T0, 8)
    det.observe([join(f"new-{i}", T0 + 8 * DAY + 3600 + i) for i in range(600)])
    det.observe([ev(LIKE, "passer", T0 + 8.3 * DAY)])
    assert held(det, "y")
    late = posts("y", [FP, FP ^ 1, FP ^ 2], ["t1", "t2", "t3"], start=T0 + 1.5 * DAY)
    assert [f.reasons for f in det.observe(late)] == [("duplicate_content",)]


def test_snapshot_and_restore_keep_the_veterans() -> None:
    det = forgotten_veteran("v")
    back = SpamDetector.restore(orjson.loads(orjson.dumps(det.snapshot())))
    assert back.forgotten_members() == det.forgotten_members() and not held(back, "v")
    assert back.observe(first_day_of_a_newcomer("v", "velocity")) == []
    again = SpamDetector.restore(orjson.loads(orjson.dumps(det.snapshot())))
    assert orjson.dumps(again.snapshot()) == orjson.dumps(det.snapshot())  # a round trip changes nothing


def test_snapshots_of_versions_1_and_2_restore_into_the_columns() -> None:
    # Rows as versions 1 and 2 wrote them: start, last, staff, exempt, status, forgiven, comments, likes[, detail].
    n1 = T0 + 3600
    members = {
        "lurker": [T0, T0 + 60, False, False, "none", None, None, [T0 + 60]],
        "mod": [T0, T0 + 60, True, False, "none", None, None, None],
        "newcomer": [T0, n1 + 600, False, False, "none", None, [n1, n1 + 600], None,
                     False, None, None, [2, 2, 2, 2], None, None, None, 0],
        "spammer": [T0, T0 + 9, False, False, "flagged", None, None, None,
                    False, None, None, [0, 0, 0, 0], None, None,
                    FlagRecord("c1", "spammer", T0 + 9, 1.0, ("burst_comments",), "flagged", "e9").to_json(), 1],
    }
    v1 = {"v": 1, "community_id": "c1", "watermark": n1 + 600, "next_sweep": T0 + 6 * 3600, "members": members}
    back = SpamDetector.restore(orjson.loads(orjson.dumps(v1)))
    assert back.forgotten_members() == 0 and all(held(back, m) for m in members)
    assert back.is_excluded("spammer") and back.flag("spammer") is not None and back.status("lurker") == "none"
    assert back.observe(comments("mod", spaced(n1 + 700, 6, 10.0))) == []  # still staff
    # the newcomer's two link comments of its first hour carry over: two more drops make it a link dropper
    flags = back.observe(comments("newcomer", [n1 + 1200, n1 + 1800], links=2))
    assert [(f.member_id, f.status, f.reasons) for f in flags] == [("newcomer", "flagged", ("link_heavy_newcomer",))]
    v2 = SpamDetector.restore(orjson.loads(orjson.dumps(v1 | {"v": 2, "veterans": ""})))
    assert v2.snapshot()["ids"] == list(members)


def test_members_held_stay_bounded_when_they_go_idle() -> None:
    det = SpamDetector("c1")
    det.observe([join(f"m{i}", T0 + i / 3) for i in range(10_000)])
    det.observe([ev(LIKE, f"m{i}", T0 + 3600 + i / 3) for i in range(10_000)])
    assert det.tracked_members()[0] == 10_000
    time_passes(det, T0, 30)
    held_now, windowed = det.tracked_members()
    assert held_now < 100 and windowed <= 5  # passers-by of the last two to three weeks; of the last day
    assert det.forgotten_members() >= 10_000
    snap = det.snapshot()
    assert len(orjson.dumps(snap)) < 200_000  # 8 bytes a veteran (base64): not a row each


# --- forgetting changes no flag ----------------------------------------------------------------


def run(events: list[EventRecord], config: SpamConfig) -> tuple[list[FlagRecord], SpamDetector]:
    det = SpamDetector("c1", config)
    return det.observe(events), det


def test_a_simulated_community_gets_the_same_flags_with_and_without_forgetting() -> None:
    raw, _ = simulate(seed=5, communities=1, members_per_community=1500, days=10, spam_profiles_per_community=12)
    events = [record_from_json(e) for e in raw]
    flags, det = run(events, SpamConfig())
    assert len(flags) >= 10 and det.forgotten_members() > 500  # forgetting is exercised
    assert run(events, NEVER_FORGET)[0] == flags


def random_log(rnd: random.Random) -> list[EventRecord | tuple[str, str, float]]:
    """Members coming and going over two months, events up to the scorer's 7 days late, some decisions."""
    out: list[EventRecord | tuple[str, str, float]] = []
    n = rnd.choice([5, 20, 200])
    texts = [rnd.getrandbits(64) for _ in range(3)]
    t = watermark = T0
    for _ in range(rnd.randint(200, 800)):
        t += rnd.choice([1.0, 5.0, 60.0, 3600.0, DAY, 4 * DAY]) * rnd.random()
        ts = t - rnd.random() * 7 * DAY if rnd.random() < 0.1 else t
        if ts < watermark - 7 * DAY:
            continue  # the scorer drops it as late
        watermark = max(watermark, ts)
        mid, r = f"m{rnd.randrange(n)}", rnd.random()
        if r < 0.005:
            out.append((mid, rnd.choice(["clear", "confirm"]), t))
            continue
        typ = JOIN if r < 0.1 else LIKE if r < 0.5 else COMMENT
        fp = (rnd.choice(texts) ^ (1 << rnd.randrange(64))) if typ == COMMENT and rnd.random() < 0.5 else None
        out.append(ev(typ, mid, ts, role=int(rnd.random() < 0.01), fp=fp, links=rnd.choice([0, 1]) * (typ == COMMENT),
                      target=f"t{rnd.randrange(20)}", author=f"m{rnd.randrange(n)}", source=rnd.choice([2, 2, 4])))
    return out


def replay(log: list[EventRecord | tuple[str, str, float]], config: SpamConfig, snapshot_every: int) -> list[object]:
    det = SpamDetector("c1", config)
    got: list[object] = []
    batch: list[EventRecord] = []
    for i, item in enumerate(log):
        if isinstance(item, EventRecord):
            batch.append(item)
            continue
        got += det.observe(batch)
        batch = []
        got.append(det.apply_moderation(item[0], item[1], "mod", "", item[2]))
        if i % snapshot_every == 0:
            det = SpamDetector.restore(orjson.loads(orjson.dumps(det.snapshot())), config)
    got += det.observe(batch)
    members = sorted({e.member_id if isinstance(e, EventRecord) else e[0] for e in log})
    return got + [(m, det.status(m), det.flag(m)) for m in members]


@pytest.mark.parametrize("seed", range(12))
def test_random_logs_with_late_events_and_decisions_give_the_same_flags(seed: int) -> None:
    log = random_log(random.Random(seed))
    assert replay(log, SpamConfig(), snapshot_every=3) == replay(log, NEVER_FORGET, snapshot_every=10**9)


# --- the footprint: columns, not objects ------------------------------------------------------------


def test_a_newcomer_who_joined_and_liked_costs_the_spam_core_about_a_hundred_bytes() -> None:
    # Issue 11's shape (a million members who all joined within hours), scaled down; allocations traced, not RSS.
    import tracemalloc

    n = 50_000
    ids = [f"member-{i:07d}" for i in range(n)]  # the worker holds these strings anyway (the scorer has them)
    events = [rec for i, mid in enumerate(ids) for rec in (join(mid, T0 + i / 6), ev(LIKE, mid, T0 + i / 6 + 0.5))]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    det = SpamDetector("c1")
    det.observe(events)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert det.tracked_members() == (n, 0)  # one like each: in the columns, no sparse window
    assert grown / n <= 120, grown / n
    assert grown / n >= 40, grown / n  # the test measures something: index, ids, four columns
