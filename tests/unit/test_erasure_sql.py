"""sinks/erasure.py on the embedded engine: the member's rows go, others' stay, rollups are recomputed,
a second run changes nothing, and every table that can hold a member id is in the plan."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for tests.fixtures

from schemas.erasures import member_key, member_key_sql
from sinks.columns import EVENTS_COLUMNS, MEMBER_STATE_COLUMNS
from sinks.erasure import PLAN, Target, drop_rebuilt, erase
from tests.fixtures.analytics.embedded_store import analytics_store

C = "era-forum"
SUB = "era-forum/7"
DAY = 86400.0
T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def ch() -> Client:
    return analytics_store()[0]


def event(eid: str, kind: str, community: str, member: str, ts: float, target_author: str | None = None) -> list[Any]:
    row = dict.fromkeys(EVENTS_COLUMNS)
    row.update(
        event_id=eid,
        type=kind,
        community_id=community,
        member_id=member,
        occurred_at=datetime.fromtimestamp(ts, UTC),
        source="discourse",
        actor_role="member",
        target_id="post:1" if target_author else None,
        target_author_id=target_author,
        join_source="organic" if kind == "join" else "",
        content_fingerprint=None,
        link_count=0,
        ingested_at=datetime.fromtimestamp(ts, UTC),
        kafka_partition=0,
        kafka_offset=1,
        kafka_line=0,
    )
    return [row[c] for c in EVENTS_COLUMNS]


def member_row(community: str, member: str) -> list[Any]:
    row: dict[str, Any] = dict.fromkeys(MEMBER_STATE_COLUMNS)
    at = datetime.fromtimestamp(T0, UTC)
    row.update(
        community_id=community,
        member_id=member,
        tier="creator",
        creation=3.0,
        curation=1.0,
        received=1.0,
        as_of=at,
        first_seen=at,
        last_active=at,
        events_counted=3,
        join_source="organic",
        actor_role="member",
        spam_status="none",
        version=1,
        decay_rate=1e-6,
    )
    return [row[c] for c in MEMBER_STATE_COLUMNS]


def count(ch: Client, sql: str) -> int:
    return int(ch.query(sql).result_rows[0][0])


@pytest.fixture(scope="module")
def loaded(ch: Client) -> Client:
    events = [
        event("e1", "join", C, "alice", T0),
        event("e2", "comment", C, "alice", T0 + 10),
        event("e3", "like", C, "bob", T0 + 20, target_author="alice"),
        event("e4", "comment", SUB, "alice", T0 + DAY),
        event("e5", "comment", C, "bob", T0 + DAY, target_author="alice"),
        event("e6", "like", C, "alice", T0 + 30, target_author="bob"),
        event("e7", "join", C, "carol", T0 + 40),
        event("e8", "comment", "era-other", "alice", T0),  # another community: not covered
        event("e9", "join", C, "alice", T0 + 10 * DAY),  # after the erasure: a new member
    ]
    ch.insert("engagement.events", events, column_names=list(EVENTS_COLUMNS))
    ch.insert(
        "engagement.member_state",
        [member_row(C, "alice"), member_row(C, "bob"), member_row("era-other", "alice")],
        column_names=list(MEMBER_STATE_COLUMNS),
    )
    return ch


def test_the_sql_key_is_the_python_key(ch: Client) -> None:
    got = ch.query(f"SELECT {member_key_sql('{c:String}', '{m:String}')}", parameters={"c": C, "m": "p_0a9"})
    assert got.result_rows[0][0] == member_key(C, "p_0a9")


def test_erase_removes_the_member_and_recomputes_rollups(loaded: Client) -> None:
    ch = loaded
    days_before = count(ch, f"SELECT uniqExactMerge(events) FROM engagement.daily_events WHERE community_id = '{C}'")
    target = Target(C, member_key(C, "alice"), T0 + 5 * DAY, [C, SUB])
    counts = erase(ch, target)
    assert counts["events"] == 4 + 2  # e1 e2 e6 (C) and e4 (SUB) deleted; e3 e5 no longer name alice
    where = f"community_id IN ('{C}', '{SUB}')"
    assert count(ch, f"SELECT count() FROM engagement.events WHERE {where} AND member_id = 'alice'") == 1  # e9 only
    assert count(ch, f"SELECT count() FROM engagement.events WHERE {where} AND target_author_id = 'alice'") == 0
    # others' events stay, without the reference
    assert count(ch, f"SELECT count() FROM engagement.events WHERE {where} AND member_id = 'bob'") == 2
    assert count(ch, "SELECT count() FROM engagement.events WHERE community_id = 'era-other'") == 1
    assert count(ch, f"SELECT count() FROM engagement.member_state WHERE {where} AND member_id = 'alice'") == 0
    assert count(ch, "SELECT count() FROM engagement.member_state WHERE community_id = 'era-other'") == 1
    # rollups recomputed from the events that remain
    days_after = count(ch, f"SELECT uniqExactMerge(events) FROM engagement.daily_events WHERE community_id = '{C}'")
    assert days_after == days_before - 3
    assert count(ch, f"SELECT count() FROM engagement.member_days WHERE {where} AND member_id = 'alice'") == 1
    joined = ch.query(
        "SELECT toUnixTimestamp(min(joined_at)) FROM engagement.member_joins"
        f" WHERE community_id = '{C}' AND member_id = 'alice'"
    ).result_rows[0][0]
    assert joined == int(T0 + 10 * DAY)  # the new member's own join
    # idempotent: the same erasure again finds nothing
    assert sum(erase(ch, target).values()) == 0
    assert (
        count(ch, f"SELECT uniqExactMerge(events) FROM engagement.daily_events WHERE community_id = '{C}'")
        == days_after
    )


def test_drop_rebuilt_keeps_who_the_rebuild_knows(loaded: Client) -> None:
    ch = loaded
    ch.insert("engagement.member_state", [member_row(C, "dave")], column_names=list(MEMBER_STATE_COLUMNS))
    drop_rebuilt(ch, C, ["dave"])
    assert (
        count(ch, f"SELECT count() FROM engagement.member_state WHERE community_id = '{C}' AND member_id = 'dave'") == 0
    )
    assert (
        count(ch, f"SELECT count() FROM engagement.member_state WHERE community_id = '{C}' AND member_id = 'bob'") == 1
    )


def test_every_table_with_a_member_column_is_in_the_plan(ch: Client) -> None:
    tables = {
        row[0]
        for row in ch.query(
            "SELECT DISTINCT table FROM system.columns WHERE database = 'engagement'"
            " AND (name ILIKE '%member%' OR name ILIKE '%author%' OR name = 'moderator')"
        ).result_rows
    }
    views = {
        row[0]
        for row in ch.query(
            "SELECT name FROM system.tables WHERE database = 'engagement' AND engine IN ('View', 'MaterializedView')"
        ).result_rows
    }
    missing = tables - views - set(PLAN)
    assert missing == set(), f"add these tables to sinks.erasure.PLAN and erase(): {sorted(missing)}"
