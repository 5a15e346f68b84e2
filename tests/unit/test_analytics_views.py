"""The analytics views (sinks/migrations/0002, 0003) on the embedded engine, with exact values.

The simulated communities and the hand-worked numbers asserted here are in
tests/fixtures/analytics/simulated_communities.py; every event row is loaded twice.
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for tests.fixtures

from sinks.migrate import available
from tests.fixtures.analytics.embedded_store import analytics_store, insert
from tests.fixtures.analytics.simulated_communities import BANDS, RATE, TABLES, Rows

VIEWS = (
    "v_community_clock", "v_member_current", "v_tier_mix", "v_critical_mass", "v_retention_by_source",
    "v_lifecycle", "v_owner_cadence", "v_concentration", "v_daily",
    "v_weekly", "v_monthly", "v_tier_mix_weekly", "v_retention_weekly",
)


@pytest.fixture(scope="module")
def ch() -> Client:
    return analytics_store()[0]


@pytest.fixture(scope="module")
def rows() -> Rows:
    return analytics_store()[1]


def naive_utc(value: Any) -> Any:
    """Datetimes as naive UTC, whichever way the client returned them."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def query(ch: Client, sql: str) -> list[dict[str, Any]]:
    result = ch.query(sql)
    return [{k: naive_utc(v) for k, v in zip(result.column_names, row, strict=True)}
            for row in result.result_rows]


def one(ch: Client, sql: str) -> dict[str, Any]:
    found = query(ch, sql)
    assert len(found) == 1, found
    return found[0]


def test_member_current_keeps_one_latest_row_per_member(ch: Client) -> None:
    counts = one(ch, "SELECT count() AS n, uniqExact(member_id) AS members "
                     "FROM engagement.v_member_current WHERE community_id = 'ana-micro'")
    assert counts == {"n": 14, "members": 14}
    got = {r["member_id"]: r for r in query(ch, "SELECT * FROM engagement.v_member_current "
                                                "WHERE community_id = 'ana-micro'")}
    assert (got["mc01"]["tier"], got["mc01"]["creation"], got["mc01"]["creation_rank"]) == (
        "ambassador", 50, 1)
    assert (got["mc12"]["creation"], got["mc12"]["creation_rank"], got["mc12"]["creation_top_fraction"]) == (
        0, 12, 1.0)
    assert got["mco"]["is_staff"] == 1 and got["mco"]["creation_rank"] is None
    assert got["mcs"]["is_eligible"] == 0 and got["mcs"]["creation_rank"] is None
    assert {r["eligible_members"] for r in got.values()} == {12}
    ret = {r["member_id"]: r["is_eligible"] for r in query(
        ch, "SELECT member_id, is_eligible FROM engagement.v_member_current WHERE community_id = 'ana-ret'")}
    assert (ret["p5"], ret["s1"], ret["f1"], ret["o1"], ret["m1"]) == (1, 0, 0, 0, 0)


def test_ambassadors_are_the_latest_eligible_ambassadors(ch: Client) -> None:
    found = query(ch, "SELECT community_id, member_id FROM engagement.v_member_current "
                      "WHERE tier = 'ambassador' AND is_eligible AND community_id LIKE 'ana-%' "
                      "ORDER BY community_id, creation_rank")
    # big-0012 was an ambassador in an older version; big-spam1 is flagged; mcs is confirmed spam.
    assert [(r["community_id"], r["member_id"]) for r in found] == [
        *[("ana-big", f"big-{k:04d}") for k in range(1, 12)], ("ana-decay", "dd-fresh"), ("ana-micro", "mc01")]


def test_critical_mass_kernel_and_history(ch: Client) -> None:
    big = one(ch, "SELECT * FROM engagement.v_critical_mass WHERE community_id = 'ana-big'")
    assert big == {
        "community_id": "ana-big", "as_of": datetime(2025, 4, 30, 23, 59), "clock": datetime(2025, 4, 30, 20),
        "members": 1040, "active_creators": 12, "peak_active_creators": 12, "has_kernel": 1,
        "had_kernel": 1, "kernel_lost_at": None, "size_band": "1000_plus", "is_micro": 0,
        "progress_to_1000": 1.0, "members_to_1000": 0, "critical_mass": 1,
        # below critical mass from 03-25 to 04-09 (8 active creators), so the run starts 04-10
        "critical_mass_since": datetime(2025, 4, 10, 23, 59),
        # 0005's `_at` names for as_of, clock and critical_mass_since
        "snapshot_at": datetime(2025, 4, 30, 23, 59), "clock_at": datetime(2025, 4, 30, 20),
        "critical_mass_since_at": datetime(2025, 4, 10, 23, 59),
    }
    kernel = one(ch, "SELECT * FROM engagement.v_critical_mass WHERE community_id = 'ana-kernel'")
    assert (kernel["has_kernel"], kernel["had_kernel"], kernel["kernel_lost_at"]) == (
        0, 1, datetime(2025, 4, 10, 12))
    assert (kernel["peak_active_creators"], kernel["size_band"], kernel["critical_mass"]) == (
        11, "hard_middle", 0)
    assert (kernel["progress_to_1000"], kernel["members_to_1000"], kernel["critical_mass_since"]) == (
        0.205, 795, None)
    short = one(ch, "SELECT critical_mass, has_kernel FROM engagement.v_critical_mass "
                    "WHERE community_id = 'ana-cm-1000-9'")
    assert short == {"critical_mass": 0, "has_kernel": 0}


@pytest.mark.parametrize(("members", "band", "micro"), [(m, b, i) for m, (b, i) in BANDS.items()])
def test_size_band_boundaries(ch: Client, members: int, band: str, micro: bool) -> None:
    got = one(ch, f"SELECT size_band, is_micro, critical_mass FROM engagement.v_critical_mass "
                  f"WHERE community_id = 'ana-band-{members:05d}'")
    assert got == {"size_band": band, "is_micro": int(micro), "critical_mass": int(members >= 1000)}


def test_tier_mix_uses_the_days_last_snapshot_and_latest_version(ch: Client) -> None:
    got = one(ch, "SELECT * FROM engagement.v_tier_mix WHERE community_id = 'ana-big' AND day = '2025-04-30'")
    assert (got["as_of"], got["members"], got["lurkers"], got["tiered_members"]) == (
        datetime(2025, 4, 30, 23, 59), 1040, 920, 1040)
    assert got["lurker_share"] == pytest.approx(920 / 1040)
    assert got["curator_share"] == pytest.approx(95 / 1040)
    assert got["creating_share"] == pytest.approx(25 / 1040)
    assert got["creating_gap"] == pytest.approx(25 / 1040 - 0.01)
    days = one(ch, "SELECT count() AS n FROM engagement.v_tier_mix WHERE community_id = 'ana-big'")
    assert days == {"n": 61}


def test_retention_by_source_counts_eligible_windows_only(ch: Client) -> None:
    found = query(ch, "SELECT * FROM engagement.v_retention_by_source WHERE community_id = 'ana-ret' "
                      "ORDER BY cohort_week, join_source")
    keys = ("cohort_week", "join_source", "cohort_members", "eligible_w1", "retained_w1", "retention_w1",
            "eligible_w4", "retained_w4", "retention_w4", "eligible_w12", "retained_w12", "retention_w12")
    assert [tuple(r[k] for k in keys) for r in found] == [
        (date(2025, 1, 6), "invite", 5, 5, 4, 0.8, 5, 4, 0.8, 5, 2, 0.4),
        (date(2025, 1, 6), "promotion", 10, 10, 4, 0.4, 10, 2, 0.2, 10, 2, 0.2),
        (date(2025, 1, 20), "import", 2, 2, 0, 0.0, 2, 0, 0.0, 2, 2, 1.0),
        (date(2025, 1, 27), "organic", 2, 2, 0, 0.0, 2, 0, 0.0, 0, 0, None),
        (date(2025, 4, 7), "organic", 2, 2, 1, 0.5, 0, 0, None, 0, 0, None),
        (date(2025, 4, 14), "organic", 1, 0, 0, None, 0, 0, None, 0, 0, None),
        (date(2025, 4, 21), "organic", 3, 0, 0, None, 0, 0, None, 0, 0, None),
    ]


def test_concentration_of_creation(ch: Client) -> None:
    keys = ("eligible_members", "total_creation", "top1_members", "top20_members", "top1_creation",
            "top20_creation", "top1_share", "top20_share", "members_for_half_creation")
    micro = one(ch, "SELECT * FROM engagement.v_concentration WHERE community_id = 'ana-micro'")
    assert tuple(micro[k] for k in keys) == (12, 100.0, 1, 3, 50.0, 85.0, 0.5, 0.85, 1)
    assert (micro["worker_top1_share"], micro["worker_top20_share"]) == (0.5, 0.85)
    big = one(ch, "SELECT * FROM engagement.v_concentration WHERE community_id = 'ana-big'")
    # 11 ambassadors hold 99+...+89 = 1034 of 1034 + (40+...+27 = 469) + 95 x 2 = 1693;
    # the 9 largest (855) are the fewest reaching half. Every row was written at 04-30 00:00
    # and the clock is 20:00: each creation is decayed by the same 20 hours, shares unchanged.
    f = math.exp(-RATE * 20 * 3600)
    assert tuple(big[k] for k in keys) == pytest.approx(
        (1040, 1693.0 * f, 11, 208, 1034.0 * f, 1693.0 * f, 1034 / 1693, 1.0, 9), rel=1e-12)
    assert (big["clock"], big["worker_top1_share"]) == (datetime(2025, 4, 30, 20), 0.09)


DAILY = [
    (date(2025, 3, 3), 4, 3, 1, 3, 3, 2, 2),
    (date(2025, 3, 4), 0, 1, 0, 1, 2, 0, 0),
]
DAILY_SQL = ("SELECT day, joins, likes, shares, comments, active_members, new_creators, spam_flags "
             "FROM engagement.v_daily WHERE community_id = 'ana-daily' ORDER BY day")


def daily(ch: Client) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in query(ch, DAILY_SQL)]


def test_daily_counts_each_event_once_however_often_inserted(ch: Client, rows: Rows) -> None:
    assert daily(ch) == DAILY  # already loaded twice
    again = Rows(events=[r for r in rows.events if r[2] == "ana-daily"],
                 tier_changes=[r for r in rows.tier_changes if r[0] == "ana-daily"],
                 spam_flags=[r for r in rows.spam_flags if r[0] == "ana-daily"])
    for table in ("events", "tier_changes", "spam_flags"):
        insert(ch, again, table)
    assert daily(ch) == DAILY


def test_backfill_overlapping_the_materialized_views_changes_nothing(ch: Client) -> None:
    before = daily(ch), query(ch, "SELECT * FROM engagement.v_retention_by_source "
                                  "WHERE community_id = 'ana-ret' ORDER BY cohort_week, join_source")
    migration = next(m for m in available() if m.number == 2)
    backfills = [s for s in migration.statements() if s.startswith("INSERT INTO")]
    assert len(backfills) == 3
    for statement in backfills:
        ch.command(statement)
    after = daily(ch), query(ch, "SELECT * FROM engagement.v_retention_by_source "
                                 "WHERE community_id = 'ana-ret' ORDER BY cohort_week, join_source")
    assert after == before


def test_lifecycle_states(ch: Client) -> None:
    found = query(ch, "SELECT member_id, state, idle_days, silent_days_before_return "
                      "FROM engagement.v_lifecycle WHERE community_id = 'ana-ret'")
    states = {r["member_id"]: r["state"] for r in found}
    expected = {
        **dict.fromkeys(("n1", "n2", "n3", "n4"), "new"),
        **dict.fromkeys(("i1", "r2", "a1"), "active"),
        **dict.fromkeys(("p5", "i3", "r1"), "returning"),
        **dict.fromkeys(("p1", "i2", "i5", "j1", "j2", "a2"), "at_risk"),
        **dict.fromkeys(("p2", "p3", "p4", "p6", "p7", "p8", "p9", "p10", "i4"), "lapsed"),
    }
    assert states == expected  # s1 (confirmed spam), f1 (flagged) and staff are absent
    by_member = {r["member_id"]: r for r in found}
    assert {m: by_member[m]["silent_days_before_return"] for m in ("p5", "i3", "r1", "r2")} == {
        "p5": 99, "i3": 82, "r1": 30, "r2": None}
    assert {m: by_member[m]["idle_days"] for m in ("a1", "a2", "p1", "p6")} == {
        "a1": 13, "a2": 14, "p1": 29, "p6": 30}


def test_owner_cadence(ch: Client) -> None:
    ret = one(ch, "SELECT * FROM engagement.v_owner_cadence WHERE community_id = 'ana-ret'")
    assert ret == {
        "community_id": "ana-ret", "clock": datetime(2025, 4, 30, 18),
        "owner_last_post_at": datetime(2025, 4, 25, 12), "days_since_owner_post": 5,
        "owner_posts_28d": 3, "owner_posts_per_week_4w": 0.75, "owner_posts_84d": 4,
        "owner_posts_per_week_12w": 4 / 12, "owner_weeks_with_post_12w": 4, "owner_posts_total": 5,
        # ana-ret's first event is on 01-06: 115 days, older than both windows, so / 4 and / 12
        "clock_at": datetime(2025, 4, 30, 18), "community_age_days": 115, "owner_weeks_observed_12w": 12,
    }
    silent = one(ch, "SELECT owner_last_post_at, days_since_owner_post, owner_posts_total "
                     "FROM engagement.v_owner_cadence WHERE community_id = 'ana-kernel'")
    assert silent == {"owner_last_post_at": None, "days_since_owner_post": None, "owner_posts_total": 0}


def test_community_clock_is_the_latest_event(ch: Client) -> None:
    got = {r["community_id"]: r["clock"] for r in query(
        ch, "SELECT community_id, clock FROM engagement.v_community_clock WHERE community_id LIKE 'ana-%'")}
    assert got == {
        "ana-ret": datetime(2025, 4, 30, 18), "ana-daily": datetime(2025, 3, 4, 10, 1),
        "ana-micro": datetime(2025, 4, 29, 20), "ana-kernel": datetime(2025, 4, 28, 12),
        "ana-big": datetime(2025, 4, 30, 20), "ana-decay": datetime(2025, 4, 14),
    }


def test_reinserting_every_base_row_changes_no_view(ch: Client, rows: Rows) -> None:
    def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        return {v: [tuple(r) for r in ch.query(f"SELECT * FROM engagement.{v} "
                                               "WHERE community_id LIKE 'ana-%' ORDER BY ALL").result_rows]
                for v in VIEWS}

    before = snapshot()
    assert all(before.values())
    for table in TABLES:
        insert(ch, rows, table)
    assert snapshot() == before
