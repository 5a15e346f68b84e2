"""Member rows as columns (what a batch stores) are the member rows, value for value."""

from __future__ import annotations

from array import array

import pyarrow as pa
import pytest

from sinks.columns import COMMUNITY_STATE_COLUMNS, MEMBER_STATE_COLUMNS, TIER_CHANGES_COLUMNS
from streams.config import Settings
from streams.event_record import COMMENT, JOIN, LIKE, MEMBER, MODERATOR
from streams.event_record import EventRecord as E
from streams.scoring import CommunityRow, TierChangeRecord
from streams.scoring.community import SMALL_BLOCK
from streams.spam.flags import STATUSES
from streams.state_registry import StateRegistry, member_block, member_rows_of
from streams.worker.rows import (
    community_state_arrow,
    community_state_row,
    member_state_arrow,
    member_state_row,
    tier_change_row,
    tier_changes_arrow,
)

T0 = 1_767_225_600.0


def _events() -> list[E]:
    out = [E("j1", JOIN, "c", "lurker", T0, MEMBER, None, None, 2, None, 0)]
    for i in range(40):  # "star" comments a lot: the ambassador; others like and are liked
        out.append(E(f"c{i}", COMMENT, "c", "star", T0 + 3600 * i, MEMBER, "p", "fan", 0, 1000 + i, 0))
        out.append(E(f"l{i}", LIKE, "c", f"fan{i % 3}", T0 + 3600 * i + 1, MEMBER, "p", "star", 0, None, 0))
    out.append(E("m1", LIKE, "c", "mod", T0 + 5000, MODERATOR, "p", "star", 0, None, 0))
    out.sort(key=lambda e: e.ts)
    return out


def test_columns_equal_rows_for_every_kind_of_member() -> None:
    settings = Settings()
    registry = StateRegistry(settings.scoring(), settings.spam())
    registry.apply([(e, 0, i) for i, e in enumerate(_events())])
    c = registry.communities["c"]
    names = c.scorer.member_ids()
    block = member_block(c, names + names[:2])  # repeats are dropped, first order kept
    assert block.member_ids == names
    rows = member_rows_of(block)
    assert rows == c.scorer.member_rows(names)
    tiers = {r.member_id: r.tier for r in rows}
    assert tiers["star"] == "ambassador" and tiers["lurker"] == "lurker"
    fan = next(r for r in rows if r.member_id == "fan")  # only ever a target: last_active is first_seen
    assert fan.last_active == fan.first_seen and fan.events_counted == 0


def test_unknown_member_is_refused_by_name() -> None:
    settings = Settings()
    registry = StateRegistry(settings.scoring(), settings.spam())
    registry.apply([(e, 0, i) for i, e in enumerate(_events())])
    with pytest.raises(KeyError, match="nobody"):
        member_block(registry.communities["c"], ["star", "nobody"])


def test_the_arrow_table_holds_the_row_values_and_later_rows_win_by_version() -> None:
    settings = Settings()
    registry = StateRegistry(settings.scoring(), settings.spam())
    registry.apply([(e, 0, i) for i, e in enumerate(_events())])
    c = registry.communities["c"]
    first = member_block(c, ["star", "fan"])
    second = member_block(c, ["fan", "lurker"])
    table = member_state_arrow([first, second], 1000, 0.5)
    assert table.column_names == list(MEMBER_STATE_COLUMNS) and table.num_rows == 4
    got = table.to_pylist()
    assert [r["version"] for r in got] == [1000, 1001, 1002, 1003]  # "fan" of the second block wins
    statuses = [s for b in (first, second) for s in b.spam_status.tolist()]
    want = [
        member_state_row(r, STATUSES[s], 0, 0.5)
        for r, s in zip(member_rows_of(first) + member_rows_of(second), statuses, strict=True)
    ]
    for row, expected in zip(got, want, strict=True):
        values = dict(zip(MEMBER_STATE_COLUMNS, expected, strict=True))
        assert {k: v for k, v in row.items() if k != "version"} == {k: v for k, v in values.items() if k != "version"}
    assert pa.types.is_dictionary(table.schema.field("tier").type)


def test_tier_changes_as_arrow_are_the_row_form_value_for_value() -> None:
    changes = [
        TierChangeRecord("c", "a", "lurker", "curator", T0, 0.0, 2.0, 0.5),
        TierChangeRecord("c", "b", "creator", "ambassador", T0 + 1.5, 3.25, 0.0, 1.0),
        TierChangeRecord("d", "a", "ambassador", "lurker", T0 + 2, 0.1, 0.2, 0.3),
    ]
    got = tier_changes_arrow(changes).to_pylist()
    want = [dict(zip(TIER_CHANGES_COLUMNS, tier_change_row(t), strict=True)) for t in changes]
    assert got == want and len({r["seq"] for r in got}) == 3


def test_community_rows_as_arrow_are_the_row_form_value_for_value() -> None:
    settings = Settings()
    registry = StateRegistry(settings.scoring(), settings.spam())
    out = registry.apply([(e, 0, i) for i, e in enumerate(_events())])
    rows = [*out.community_rows, CommunityRow("d", T0, 3, 1, 1, 0, 1, 1, 0.25, 1.0, 2)]
    assert len(rows) > 10  # a row per event-time minute the events touched
    got = community_state_arrow(rows, 500).to_pylist()
    want = [
        dict(zip(COMMUNITY_STATE_COLUMNS, community_state_row(r, 500 + i), strict=True)) for i, r in enumerate(rows)
    ]
    assert got == want
    assert [r["version"] for r in got] == list(range(500, 500 + len(rows)))  # later rows of a minute win


def test_rows_the_scorer_resolved_give_the_same_block_as_looking_members_up() -> None:
    from streams.scoring import CommunityScorer

    settings = Settings()
    scorer = CommunityScorer("c", settings.scoring())
    outcome = scorer.apply(_events())
    assert outcome.touched_rows and set(outcome.touched_rows) <= outcome.touched
    names = sorted(outcome.touched)
    by_rows = scorer.member_columns(names, outcome.touched_rows)
    looked_up = scorer.member_columns(names)
    assert by_rows.member_ids == looked_up.member_ids == names
    for field in ("tier", "creation", "curation", "received", "first_seen", "last_active", "events_counted"):
        assert getattr(by_rows, field).tolist() == getattr(looked_up, field).tolist(), field
    with pytest.raises(KeyError, match="nobody"):
        scorer.member_columns(["nobody"], outcome.touched_rows)


def test_a_block_of_a_few_members_is_the_numpy_block_value_for_value() -> None:
    """Blocks of up to SMALL_BLOCK members are read without numpy: the same rows, the same table."""
    settings = Settings()
    registry = StateRegistry(settings.scoring(), settings.spam())
    events = _events() + [
        E(f"x{i}", LIKE if i % 3 else COMMENT, "c", f"m{i}", T0 + 200_000 + i, MODERATOR if i == 7 else MEMBER,
          "p", "star" if i % 2 else f"m{i - 1}", 0, 7 if i % 3 == 0 else None, 0)
        for i in range(SMALL_BLOCK * 3)
    ]
    registry.apply([(e, 0, i) for i, e in enumerate(events)])
    c = registry.communities["c"]
    names = c.scorer.member_ids()
    assert len(names) > 2 * SMALL_BLOCK
    whole = member_block(c, names)
    pieces = [member_block(c, names[k : k + SMALL_BLOCK]) for k in range(0, len(names), SMALL_BLOCK)]
    assert not isinstance(whole.creation, array) and all(isinstance(p.creation, array) for p in pieces)
    assert member_rows_of(whole) == [row for p in pieces for row in member_rows_of(p)]
    assert member_state_arrow([whole], 5, 0.1).equals(member_state_arrow(pieces, 5, 0.1))
