"""The scorer's per-event loop in C (streams/scoring/score_loop.c) is the Python loop.

`make test` builds it with the hot path, so in CI the same events go through both loops (the
C one, then `_c_loop` set to None) and must leave identical snapshots, tier changes and
community rows, cut into batches of any size; without a build the scorer runs the Python
loop, and the tests say so.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from c_helpers import c_helper

from streams import native
from streams.event_record import EventRecord
from streams.scoring import CommunityScorer, ScoringConfig
from streams.scoring import community as community_module
from streams.tools.bench.scoring import synthetic_events

DAY = 86_400.0


def _c_loop() -> Any:
    helper = c_helper("streams.scoring._score_loop", community_module._c_loop is None)
    return helper.loop if helper is not None else None


def test_the_scorer_uses_the_c_loop_exactly_when_the_hot_path_is_compiled() -> None:
    assert (community_module._c_loop is not None) == (native.mode == "compiled")


def _events(seed: int, n: int, members: int, staff_every: int = 0) -> list[EventRecord]:
    events = synthetic_events(n, members, seed=seed, span_days=90.0, jitter_seconds=2 * DAY, staff_every=staff_every)
    rng = random.Random(seed)
    out: list[EventRecord] = []
    for event in events:  # re-deliveries and late arrivals, as the property tests mix them in
        out.append(event)
        roll = rng.random()
        if roll < 0.03:
            out.append(rng.choice(out[-60:]))
        elif roll < 0.05:
            out.append(event._replace(event_id=event.event_id + "-late", ts=event.ts - 9 * DAY))
    return out


def _run(events: Sequence[EventRecord], batch: int, config: ScoringConfig) -> tuple[bytes, bytes]:
    scorer = CommunityScorer("c1", config)
    outputs = []
    for start in range(0, len(events), batch):
        out = scorer.apply(events[start : start + batch])
        outputs.append((out.tier_changes, out.community_rows, out.scored, out.duplicates, out.late))
    return orjson.dumps(scorer.snapshot()), repr(outputs).encode()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the C loop's runs (and those it left to Python)."""
    loop = community_module._c_loop
    calls = [0, 0]

    def counting(*args: Any) -> Any:
        done = loop(*args)
        calls[done is None] += 1
        return done

    if loop is not None:
        monkeypatch.setattr(community_module, "_c_loop", counting)
    yield calls


@pytest.mark.parametrize(
    ("seed", "members", "staff_every"), [(11, 30, 7), (12, 400, 0), (13, 3, 5), (14, 2_000, 11)]
)
def test_the_c_loop_leaves_the_state_and_outputs_of_the_python_loop(
    seed: int, members: int, staff_every: int, counted: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    if _c_loop() is None:
        return
    events = _events(seed, 4_000, members, staff_every)
    config = ScoringConfig()
    with_c = {batch: _run(events, batch, config) for batch in (1, 7, 1_000, 50_000)}
    assert counted[0] > 0 and counted[1] == 0  # the C loop ran every batch
    monkeypatch.setattr(community_module, "_c_loop", None)
    for batch, got in with_c.items():
        assert got == _run(events, batch, config), batch
    assert len({snapshot for snapshot, _ in with_c.values()}) == 1  # and batches change nothing


def test_heaps_compacted_all_the_time_the_same(counted: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    if _c_loop() is None:
        return
    monkeypatch.setattr(community_module, "HEAP_COMPACT_MIN", 4)
    events = _events(21, 3_000, 60, 9)
    with_c = _run(events, 13, ScoringConfig())
    assert counted[0] > 0
    monkeypatch.setattr(community_module, "_c_loop", None)
    assert _run(events, 13, ScoringConfig()) == with_c


def test_an_event_time_that_is_not_a_float_is_left_to_the_python_loop(counted: list[int]) -> None:
    if _c_loop() is None:
        return
    events = _events(5, 50, 10)
    as_int = [e._replace(ts=int(e.ts)) for e in events]
    scorer = CommunityScorer("c1", ScoringConfig())
    scorer.apply(as_int)
    assert counted == [0, 1]  # declined before it changed anything: the Python loop scored them
    assert scorer.members_count > 0


def test_arguments_of_the_wrong_shape_are_refused() -> None:
    loop = _c_loop()
    if loop is None:
        return
    with pytest.raises(TypeError, match="16 arguments"):
        loop()
    with pytest.raises(TypeError, match="wrong shape"):
        loop(None, [], [], [], 0, [], [], (), (), [], [], {}, [], (), (), None)
