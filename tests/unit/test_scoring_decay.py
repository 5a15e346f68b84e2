"""Forward decay: half-life exactness, arrival-order independence, decades without overflow."""

from __future__ import annotations

import math
import random

import pytest

from streams.event_record import COMMENT, JOIN, LIKE, MEMBER, SHARE, EventRecord
from streams.scoring import CommunityScorer, ScoringConfig
from streams.scoring.forward_decay import ForwardDecay
from streams.tools.bench.scoring import synthetic_events

DAY = 86_400.0
T0 = 1_700_000_000.0
_ids = iter(range(10**9))


def ev(kind: int, member: str, day: float, author: str | None = None) -> EventRecord:
    return EventRecord(
        f"d{next(_ids)}",
        kind,
        "c",
        member,
        T0 + day * DAY,
        MEMBER,
        "x" if author else None,
        author,
        0,
        None,
        0,
    )


def decayed_sum(contributions: list[tuple[float, float]], at: float, half_life_days: float = 14.0) -> float:
    """The definition: sum of w * 2^-((T - t) / half-life), computed directly."""
    return math.fsum(w * 2.0 ** (-(at - t) / (half_life_days * DAY)) for w, t in contributions)


def test_forward_decay_weight_halves_after_one_half_life() -> None:
    decay = ForwardDecay(ScoringConfig().decay_rate, landmark=T0)
    stored = 3.0 * decay.weight(T0 + 2 * DAY)
    assert stored * decay.factor(T0 + 16 * DAY) == pytest.approx(1.5, rel=1e-12)
    assert stored * decay.factor(T0 + 30 * DAY) == pytest.approx(0.75, rel=1e-12)


def test_forward_decay_rebase_keeps_decayed_values() -> None:
    decay = ForwardDecay(ScoringConfig().decay_rate, landmark=T0)
    stored = 2.0 * decay.weight(T0 + 100 * DAY)
    stored *= decay.rebase(T0 + 90 * DAY)
    assert decay.landmark == T0 + 90 * DAY
    assert stored * decay.factor(T0 + 114 * DAY) == pytest.approx(1.0, rel=1e-12)


def test_scored_comment_is_worth_half_after_fourteen_days() -> None:
    scorer = CommunityScorer("c", ScoringConfig())
    scorer.apply([ev(COMMENT, "a", 0), ev(JOIN, "b", 14)])
    assert scorer.member_row("a").creation == pytest.approx(1.5, rel=1e-12)
    scorer.apply([ev(JOIN, "b", 28)])
    assert scorer.member_row("a").creation == pytest.approx(0.75, rel=1e-12)


def test_other_half_life_is_respected() -> None:
    scorer = CommunityScorer("c", ScoringConfig(half_life_days=7.0))
    scorer.apply([ev(LIKE, "a", 0), ev(SHARE, "a", 0), ev(JOIN, "b", 7)])
    assert scorer.member_row("a").curation == pytest.approx(1.5, rel=1e-12)


def _scores(scorer: CommunityScorer) -> dict[str, tuple[float, float, float]]:
    out = {}
    for member in scorer.member_ids():
        row = scorer.member_row(member)
        out[member] = (row.creation, row.curation, row.received)
    return out


def _assert_scores_close(
    a: dict[str, tuple[float, float, float]], b: dict[str, tuple[float, float, float]]
) -> None:
    assert a.keys() == b.keys()
    for member, values in a.items():
        for x, y in zip(values, b[member], strict=True):
            assert x == pytest.approx(y, rel=1e-9, abs=1e-300), member


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scores_do_not_depend_on_arrival_order_within_lateness(seed: int) -> None:
    events = synthetic_events(1500, 60, seed=seed, span_days=40)
    in_order = CommunityScorer("c1", ScoringConfig())
    in_order.apply(events)
    # Shuffle within 3-day windows: no event arrives more than 6 days behind the clock.
    rng = random.Random(seed)
    shuffled: list[EventRecord] = []
    window: list[EventRecord] = []
    for event in events:
        if window and event.ts - window[0].ts > 3 * DAY:
            rng.shuffle(window)
            shuffled.extend(window)
            window = []
        window.append(event)
    rng.shuffle(window)
    shuffled.extend(window)
    assert shuffled != events
    other = CommunityScorer("c1", ScoringConfig())
    outcome = other.apply(shuffled)
    assert outcome.late == 0
    assert other.clock == in_order.clock
    _assert_scores_close(_scores(in_order), _scores(other))


def _fifty_years() -> tuple[list[EventRecord], list[tuple[float, float]]]:
    events = []
    contributions = []
    for i in range(0, 50 * 365, 5):
        events.append(ev(COMMENT, "a", i))
        events.append(ev(LIKE, "b", i + 0.5, author="a"))
        contributions.append((3.0, T0 + i * DAY))
    return events, contributions


def test_fifty_years_stay_finite_and_rebase_the_landmark() -> None:
    config = ScoringConfig()
    events, contributions = _fifty_years()
    scorer = CommunityScorer("c", config)
    landmarks = set()
    for start in range(0, len(events), 50):
        scorer.apply(events[start : start + 50])
        landmarks.add(scorer.snapshot()["landmark"])
    assert len(landmarks) >= 2  # 50 years at lambda = ln2/14d pass exp(500) once
    row = scorer.member_row("a")
    assert row.tier == "ambassador"  # the only commenter: top 1 of 2
    assert row.creation == pytest.approx(decayed_sum(contributions, scorer.clock), rel=1e-9)
    assert all(math.isfinite(v) and v > 0 for v in (row.creation, row.received))
    assert math.isfinite(scorer.member_row("b").curation)
    snapshot = scorer.snapshot()
    assert config.decay_rate * (scorer.clock - snapshot["landmark"]) <= config.rebase_exponent


def test_frequent_rebases_give_the_same_scores() -> None:
    events, _ = _fifty_years()
    events = events[:800]
    rare = CommunityScorer("c", ScoringConfig())
    often = CommunityScorer("c", ScoringConfig(rebase_exponent=3.0))
    rare.apply(events)
    often.apply(events)
    assert often.snapshot()["landmark"] != rare.snapshot()["landmark"]
    _assert_scores_close(_scores(rare), _scores(often))


def test_member_idle_for_decades_decays_to_zero_without_nan() -> None:
    scorer = CommunityScorer("c", ScoringConfig())
    scorer.apply([ev(COMMENT, "old", 0)])
    for year in range(1, 41):
        scorer.apply([ev(JOIN, "other", year * 365)])
    row = scorer.member_row("old")
    assert row.creation == pytest.approx(0.0, abs=1e-200)
    assert not math.isnan(row.creation)
    assert row.tier == "lurker"
