"""Migration 0005's views with exact values: weekly and monthly active members, stickiness, the
weekly tier mix and retention curve, and the three answers it fixes (eligible new creators,
owner cadence over a young community's real age, Q3 per community).

Two small communities of this module's own (`wk-*`) are added to the shared store, every event
row twice; the hand-worked numbers are in their docstrings.
"""

from __future__ import annotations

import re
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for tests.fixtures

from sinks.clickhouse import read_only_sql
from tests.fixtures.analytics.embedded_store import analytics_store, insert
from tests.fixtures.analytics.simulated_communities import TABLES, Rows, at
from tests.unit.test_analytics_docs import BLOCKS

NEW_VIEWS = ("v_weekly", "v_monthly", "v_tier_mix_weekly", "v_retention_weekly")


def spam_and_staff(rows: Rows) -> None:
    """wk-spam, 2025-04-07 .. 04-10 (clock 04-10 11:00). Members a, b, c are eligible; s1 is
    flagged and s2 confirmed spam; `own` is the owner. All six move lurker -> creator on 04-10.

      a: like 04-07, join 04-08 (invite), like 04-09, like 04-10      b, c, s2: like 04-10
      s1: join 04-08 (promotion), like 04-10                            own: comment 04-10
    v_daily 04-10: likes 5, comments 1, active 3 (not 5), new creators 3 (not 6).
    v_weekly 04-07: joins 2, likes 7, comments 1, WAU 3 (a counts once over 4 days), new
      members 1 (a; s1 is spam), new creators 3, not complete (the clock is inside the week).
    v_monthly April: MAU 3; observed days 04-07 .. 04-10 = 4; eligible member-days a 4 + b 1
      + c 1 = 6, so DAU 1.5 and stickiness 0.5.
    """
    c = "wk-spam"
    rows.event(c, "a", "like", at("2025-04-07 10:00"))
    rows.event(c, "a", "join", at("2025-04-08 09:00"), join_source="invite")
    rows.event(c, "s1", "join", at("2025-04-08 09:00"), join_source="promotion")
    rows.event(c, "a", "like", at("2025-04-09 10:00"))
    for member in ("a", "b", "c", "s1", "s2"):
        rows.event(c, member, "like", at("2025-04-10 10:00"))
    rows.event(c, "own", "comment", at("2025-04-10 11:00"), role="owner")
    for member, spam, role in (("a", "none", "member"), ("b", "none", "member"), ("c", "cleared", "member"),
                               ("s1", "flagged", "member"), ("s2", "confirmed", "member"),
                               ("own", "none", "owner")):
        rows.member(c, member, tier="creator", creation=1.0, spam=spam, role=role, as_of=at("2025-04-10 11:00"))
        rows.tier_change(c, member, "lurker", "creator", at("2025-04-10 10:00"), 1)


def young_owner(rows: Rows) -> None:
    """wk-young: first event 2025-03-01, clock 04-29 12:00: 60 days old (8.6 weeks).
    The owner comments every other day from 03-01 to 04-28: 30 posts, 14 of them in the 28 days
    04-02 .. 04-29. Per week: 30 / (60 / 7) = 3.5 over 12 weeks (not 30 / 12 = 2.5), 14 / 4 = 3.5
    over 4; posts in 9 of the 9 weeks observed (ceil(60 / 7)).
    """
    c = "wk-young"
    rows.event(c, "m1", "join", at("2025-03-01 08:00"), join_source="organic")
    for k in range(30):
        rows.event(c, "boss", "comment", at("2025-03-01 18:00") + timedelta(days=2 * k), role="owner")
    rows.event(c, "m1", "like", at("2025-04-29 12:00"))


@pytest.fixture(scope="module")
def ch() -> Client:
    client = analytics_store()[0]
    rows = Rows()
    spam_and_staff(rows)
    young_owner(rows)
    for table in TABLES:
        insert(client, rows, table)
    insert(client, rows, "events")  # a second delivery
    return client


def query(ch: Client, sql: str) -> list[dict[str, Any]]:
    result = ch.query(sql)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def one(ch: Client, sql: str) -> dict[str, Any]:
    found = query(ch, sql)
    assert len(found) == 1, found
    return found[0]


def test_daily_counts_eligible_members_only(ch: Client) -> None:
    got = one(ch, "SELECT likes, comments, active_members, new_creators FROM engagement.v_daily "
                  "WHERE community_id = 'wk-spam' AND day = '2025-04-10'")
    assert got == {"likes": 5, "comments": 1, "active_members": 3, "new_creators": 3}


def test_weekly_active_members_count_each_member_once(ch: Client) -> None:
    got = one(ch, "SELECT * FROM engagement.v_weekly WHERE community_id = 'wk-spam'")
    assert got == {"community_id": "wk-spam", "week": date(2025, 4, 7), "complete": 0, "joins": 2, "likes": 7,
                   "shares": 0, "comments": 1, "active_members": 3, "new_members": 1, "new_creators": 3}
    days = one(ch, "SELECT sum(active_members) AS summed FROM engagement.v_daily WHERE community_id = 'wk-spam'")
    assert days == {"summed": 6}  # why WAU needs its own rollup: daily counts do not add up


def test_monthly_active_members_and_stickiness(ch: Client) -> None:
    got = one(ch, "SELECT * FROM engagement.v_monthly WHERE community_id = 'wk-spam'")
    assert got == {"community_id": "wk-spam", "month": date(2025, 4, 1), "complete": 0, "observed_days": 4,
                   "joins": 2, "likes": 7, "shares": 0, "comments": 1, "active_members": 3,
                   "daily_active_avg": 1.5, "stickiness": 0.5, "new_members": 1}


def test_weekly_and_monthly_agree_with_member_days_on_every_community(ch: Client) -> None:
    """WAU and MAU from the rollups' sets equal a direct count over member_days, eligible only."""
    for view, unit in (("v_weekly", "week"), ("v_monthly", "month")):
        period = "toMonday(day)" if unit == "week" else "toStartOfMonth(day)"
        direct = query(ch, f"""
            SELECT community_id, {period} AS {unit}, uniqExact(member_id) AS n FROM engagement.member_days
            WHERE (community_id, member_id) NOT IN
                (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
            GROUP BY ALL HAVING n > 0 ORDER BY ALL""")
        viewed = query(ch, f"SELECT community_id, {unit}, active_members AS n FROM engagement.{view} "
                           "WHERE active_members > 0 ORDER BY ALL")
        assert viewed == direct, view
        assert len(viewed) > 10


def test_owner_cadence_over_a_young_community_s_real_age(ch: Client) -> None:
    got = one(ch, "SELECT community_age_days, owner_posts_84d, owner_posts_per_week_12w, owner_posts_28d, "
                  "owner_posts_per_week_4w, owner_weeks_with_post_12w, owner_weeks_observed_12w "
                  "FROM engagement.v_owner_cadence WHERE community_id = 'wk-young'")
    assert got == {"community_age_days": 60, "owner_posts_84d": 30, "owner_posts_per_week_12w": pytest.approx(3.5),
                   "owner_posts_28d": 14, "owner_posts_per_week_4w": 3.5, "owner_weeks_with_post_12w": 9,
                   "owner_weeks_observed_12w": 9}
    clock = one(ch, "SELECT first_day, clock_day, age_days FROM engagement.v_community_clock "
                    "WHERE community_id = 'wk-young'")
    assert clock == {"first_day": date(2025, 3, 1), "clock_day": date(2025, 4, 29), "age_days": 60}


def test_retention_curve_repeats_weeks_1_4_and_12_of_retention_by_source(ch: Client) -> None:
    curve = {(r["community_id"], r["cohort_week"], r["join_source"], r["weeks_after"]):
             (r["cohort_members"], r["eligible_members"], r["retained_members"], r["retention"])
             for r in query(ch, "SELECT * FROM engagement.v_retention_weekly")}
    by_source = query(ch, "SELECT * FROM engagement.v_retention_by_source")
    assert len(by_source) > 10
    for r in by_source:
        key = (r["community_id"], r["cohort_week"], r["join_source"])
        for n in (1, 4, 12):
            got = curve[(*key, n)]
            assert got == (r["cohort_members"], r[f"eligible_w{n}"], r[f"retained_w{n}"], r[f"retention_w{n}"]), key
    weeks = {k[3] for k in curve}
    assert weeks == set(range(1, 13))
    promotion = [curve[("ana-ret", date(2025, 1, 6), "promotion", n)][2] for n in range(1, 13)]
    assert promotion[0] == 4 and promotion[3] == 2 and promotion[11] == 2


def test_weekly_tier_mix_is_the_week_s_last_daily_snapshot(ch: Client) -> None:
    weekly = query(ch, "SELECT week, snapshot_at, members, lurkers, creating_share FROM engagement.v_tier_mix_weekly "
                       "WHERE community_id = 'ana-big' ORDER BY week")
    daily = query(ch, "SELECT toMonday(day) AS week, argMax(as_of, day) AS snapshot_at, "
                      "argMax(members, day) AS members, argMax(lurkers, day) AS lurkers, "
                      "argMax(creating_share, day) AS creating_share "
                      "FROM engagement.v_tier_mix WHERE community_id = 'ana-big' GROUP BY week ORDER BY week")
    assert weekly == daily and len(weekly) == 10
    # The stale version (1 member) written for 04-30 23:59 never wins.
    assert weekly[-1]["members"] == 1040


def test_reinserting_rows_changes_no_new_view(ch: Client) -> None:
    def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        return {v: [tuple(r) for r in ch.query(f"SELECT * FROM engagement.{v} ORDER BY ALL").result_rows]
                for v in NEW_VIEWS}

    before = snapshot()
    assert all(before.values())
    rows = analytics_store()[1]
    for table in TABLES:
        insert(ch, rows, table)
    assert snapshot() == before


def doc_answer(ch: Client, prefix: str) -> list[dict[str, Any]]:
    (sql,) = [s for h, s in BLOCKS if h.startswith(prefix)]
    return query(ch, read_only_sql(sql))


def test_q3_answers_per_community(ch: Client) -> None:
    rows = [r for r in doc_answer(ch, "Q3.") if r["community_id"] == "ana-ret"]
    assert {r["join_source"]: (r["joined"], r["week_4_pct"]) for r in rows} == {
        "invite": (5, 80.0), "promotion": (10, 20.0), "import": (2, 0.0), "organic": (8, 0.0)}
    assert [r["join_source"] for r in rows][:2] == ["invite", "promotion"]  # best week 4 first


def test_documented_shares_print_rounded(ch: Client) -> None:
    """No answer of the page prints a share with 16 digits: every float has at most 2 decimals."""
    long_floats = {}
    for heading, sql in BLOCKS:
        for row in query(ch, read_only_sql(sql)):
            for key, value in row.items():
                if isinstance(value, float) and re.search(r"\.\d{3,}", repr(value)):
                    long_floats[f"{heading.split(' ')[0]} {key}"] = value
    assert long_floats == {}


def test_new_weekly_and_monthly_questions_answer(ch: Client) -> None:
    wau = [r for r in doc_answer(ch, "Q17.") if r["community_id"] == "ana-ret"]
    assert [r["week"] for r in wau] == [date(2025, 3, 17), date(2025, 3, 31), date(2025, 4, 7), date(2025, 4, 14),
                                        date(2025, 4, 21)]
    sticky = {(r["community_id"], r["month"]): r["stickiness_pct"] for r in doc_answer(ch, "Q18.")}
    assert sticky[("wk-spam", date(2025, 4, 1))] == 50.0
    assert [r for r in doc_answer(ch, "Q19.") if r["community_id"] == "ana-big"]
    # p1 p2 p3 p5 in week 1, p3 in week 2, nobody in week 3, p1 p2 in week 4 (of 10 promotion joiners)
    curve = [r for r in doc_answer(ch, "Q20.") if r["community_id"] == "ana-ret" and r["join_source"] == "promotion"]
    assert [(r["weeks_after"], r["retained_pct"]) for r in curve][:4] == [(1, 40.0), (2, 10.0), (3, 0.0), (4, 20.0)]
