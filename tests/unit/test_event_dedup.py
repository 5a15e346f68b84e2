"""The dedup memory's two paths: a few events go one by one in Python, more at once in numpy; same answers."""

from __future__ import annotations

import random

import pytest

import streams.scoring.event_dedup as event_dedup
from streams.event_record import LIKE, EventRecord
from streams.scoring.config import DAY_SECONDS
from streams.scoring.event_dedup import EventIdMemory

T0 = 1_700_000_000.0
WINDOW = 7 * DAY_SECONDS
LATENESS = 3 * DAY_SECONDS


def _batches(seed: int) -> list[list[EventRecord]]:
    """Small random batches: repeats inside a batch and across batches, days apart, late events,
    and now and then an id reused with a newer time (the slow path of the numpy side)."""
    rng = random.Random(seed)
    seen: list[tuple[str, float]] = []
    clock = T0
    out = []
    for _ in range(60):
        batch = []
        for _ in range(rng.randint(1, 40)):
            roll = rng.random()
            if seen and roll < 0.25:
                event_id, ts = rng.choice(seen)  # a re-delivery: same id, same time
            elif seen and roll < 0.28:
                event_id, ts = rng.choice(seen)[0], clock + rng.uniform(0, DAY_SECONDS)  # id reused later
            else:
                event_id = f"e{seed}-{len(seen)}"
                ts = clock + rng.uniform(-5 * DAY_SECONDS, 0.6 * DAY_SECONDS)  # some late, some new days
                seen.append((event_id, ts))
            clock = max(clock, ts)
            batch.append(EventRecord(event_id, LIKE, "c", f"m{rng.randint(0, 9)}", ts, 0, "p", None, 0, None, 0))
        if rng.random() < 0.2 and batch:
            batch.append(batch[rng.randrange(len(batch))])  # a repeat inside the batch
        out.append(batch)
    return out


def _replay(
    batches: list[list[EventRecord]], small_below: int | list[int], monkeypatch: pytest.MonkeyPatch
) -> list[object]:
    """Answers batch by batch; `small_below` may change from batch to batch (both paths on one memory)."""
    memory = EventIdMemory(WINDOW)
    clock = float("-inf")
    answers: list[object] = []
    for k, batch in enumerate(batches):
        below = small_below if isinstance(small_below, int) else small_below[k % len(small_below)]
        monkeypatch.setattr(event_dedup, "SMALL_BATCH", below)
        kept, late, duplicates, clock = memory.fresh(batch, clock, LATENESS)
        if clock >= memory.next_housekeeping:
            memory.housekeep(clock)
        answers.append(([e.event_id for e in kept], late, duplicates, clock, memory.snapshot(), len(memory)))
    return answers


@pytest.mark.parametrize("seed", range(12))
def test_the_python_path_answers_as_the_numpy_path(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = _batches(seed)
    python = _replay(batches, 10**9, monkeypatch)
    numpy = _replay(batches, 0, monkeypatch)
    assert python == numpy
    assert sum(a[2] for a in python) > 0 and sum(a[1] for a in python) > 0  # both rules were exercised


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tail_max", [1, 4, 50])
def test_a_day_answers_the_same_whatever_its_tail_holds(
    seed: int, tail_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches keep a day's newest ids in a set until TAIL_MAX, then as a run: the answers,
    the snapshot and the count never depend on where an id is held, nor on which path added it."""
    batches = _batches(seed)
    numpy = _replay(batches, 0, monkeypatch)
    monkeypatch.setattr(event_dedup, "TAIL_MAX", tail_max)
    assert _replay(batches, 10**9, monkeypatch) == numpy
    assert _replay(batches, [10**9, 0, 10**9], monkeypatch) == numpy  # the paths take turns on one memory


def test_the_python_path_counts_repeats_late_events_and_remembers_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_dedup, "SMALL_BATCH", 10**9)
    memory = EventIdMemory(WINDOW)

    def event(event_id: str, ts: float) -> EventRecord:
        return EventRecord(event_id, LIKE, "c", "m", ts, 0, "p", None, 0, None, 0)

    a, b = event("a", T0), event("b", T0 + DAY_SECONDS)
    kept, late, duplicates, clock = memory.fresh([a, b, a, event("old", T0 - 4 * DAY_SECONDS)], T0, LATENESS)
    assert ([e.event_id for e in kept], late, duplicates, clock) == (["a", "b"], 1, 1, T0 + DAY_SECONDS)
    assert len(memory) == 2 and len(memory.snapshot()["days"]) == 2
    kept, late, duplicates, clock = memory.fresh([b, a, event("c", T0)], clock, LATENESS)
    assert ([e.event_id for e in kept], late, duplicates) == (["c"], 0, 2)
