"""ClickHouse side of an erasure: delete a forgotten member's rows, recompute the rollups they were in.

`PLAN` names every `engagement` table that can hold a member id and what an erasure
does to it (tests/unit/test_erasure_sql.py fails when a migration adds a table with a
member column that is not in the plan). The worker calls `erase` for the communities
of one partition that an erasure covers, then writes the rebuilt state's rows.

Which ClickHouse tool, and its cost on a big table:
- lightweight `DELETE FROM` (GA since 23.3; chDB 4.x embeds 26.x) for rows that go:
  it marks rows in a hidden `_row_exists` mask, so only the mask of the parts holding
  matches is written (the primary key prefix `community_id` prunes the rest) and the
  rows vanish from every query at once; the bytes leave the disk at the next merge of
  each part (`OPTIMIZE ... FINAL` forces it). Reads pay a little for the mask until then.
- a mutation `ALTER TABLE events UPDATE target_author_id = NULL` for other members'
  events that named the forgotten one (lightweight `UPDATE` needs a table created with
  `enable_block_number_column`, which ours are not): it rewrites that one column of
  every part holding a match, so its cost grows with the parts of the community's
  history the member was named in; `mutations_sync = 2` waits for it.
- rollups (`daily_events`, `member_days`, `member_joins`) are recomputed from the raw
  events that remain, for the affected (community, day)s and the member, never subtracted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from schemas.erasures import member_key_sql

# table -> what an erasure does to it
PLAN: dict[str, str] = {
    "events": "delete the member's events at or before erased_at; blank target_author_id naming them",
    "member_state": "delete the member's rows; the worker rewrites every member of a rebuilt community",
    "tier_changes": "delete the member's rows; a rebuilt community's are replaced by the rebuild's",
    "spam_flags": "delete the member's flags",
    "moderation": "delete decisions about the member",
    "community_state": "delete rows from the member's first event on; the worker writes the rebuilt row",
    "daily_events": "recompute the affected (community, day)s from events",
    "member_days": "delete the member's days; recompute those after erased_at from events",
    "member_joins": "delete the member's join; recompute it from events after erased_at",
    "weekly_members": "recompute the affected (community, week)s from events",
    "monthly_members": "recompute the affected (community, month)s from events",
    "erasures": "the audit record itself: holds the member key, never the member id",
}

MEMBER_MATCH = (
    f"community_id IN {{cs:Array(String)}} AND {member_key_sql('{base:String}', 'member_id')} = {{key:String}}"
)
TARGET_MATCH = (
    "community_id IN {cs:Array(String)} AND target_author_id IS NOT NULL AND "
    f"{member_key_sql('{base:String}', 'assumeNotNull(target_author_id)')} = {{key:String}}"
)
CUT = "{cut:DateTime64(3, 'UTC')}"

ERASURES_COLUMNS = (
    "erasure_id",
    "community_id",
    "member_key",
    "erased_at",
    "requested_by",
    "reason",
    "source",
    "kafka_partition",
    "communities",
    "rebuilt",
    "rows_deleted",
    "applied_at",
)

# The rollups' SELECTs, as in sinks/migrations/0002_analytics_views.sql (their views and backfill).
_DAILY_EVENTS = """
INSERT INTO engagement.daily_events
SELECT community_id, toDate(occurred_at) AS day, type, actor_role,
       uniqExactState(event_id) AS events, min(occurred_at) AS first_at, max(occurred_at) AS last_at
FROM engagement.events
WHERE community_id = {c:String} AND toDate(occurred_at) IN {days:Array(Date)}
GROUP BY community_id, day, type, actor_role
"""
_MEMBER_DAYS = f"""
INSERT INTO engagement.member_days
SELECT community_id, member_id, toDate(occurred_at) AS day, uniqExactState(toString(type), event_id) AS events
FROM engagement.events
WHERE actor_role = 'member' AND {MEMBER_MATCH}
GROUP BY community_id, member_id, day
"""
_MEMBER_JOINS = f"""
INSERT INTO engagement.member_joins
SELECT community_id, member_id, min(occurred_at) AS joined_at,
       argMinState(toString(join_source), (occurred_at, event_id)) AS join_source
FROM engagement.events
WHERE type = 'join' AND actor_role = 'member' AND {MEMBER_MATCH}
GROUP BY community_id, member_id
"""

# The weekly and monthly rollups' SELECTs, as in sinks/migrations/0005_weekly_monthly_views.sql.
_PERIOD_MEMBERS = """
INSERT INTO engagement.{table}
SELECT community_id, {start}(occurred_at) AS {period}, uniqExactState(member_id) AS members
FROM engagement.events
WHERE actor_role = 'member' AND community_id = {{c:String}} AND {start}(occurred_at) IN {{starts:Array(Date)}}
GROUP BY community_id, {period}
"""
def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _first_of_month(d: date) -> date:
    return d.replace(day=1)


_PERIODS: tuple[tuple[str, str, str, Callable[[date], date]], ...] = (
    ("weekly_members", "week", "toMonday", _monday),
    ("monthly_members", "month", "toStartOfMonth", _first_of_month),
)


class Client(Protocol):
    def command(self, cmd: str, parameters: Any = None, settings: Any = None) -> Any: ...
    def query(self, query: str, parameters: Any = None, settings: Any = None) -> Any: ...


@dataclass(frozen=True)
class Target:
    """One erasure, restricted to the communities of one partition it covers."""

    erased_community: str
    member_key: str
    erased_at: float  # Unix seconds
    communities: Sequence[str]


def _count(client: Client, table: str, where: str, params: dict[str, Any]) -> int:
    return int(
        client.query(f"SELECT count() FROM engagement.{table} WHERE {where}", parameters=params).result_rows[0][0]
    )


def _delete(client: Client, table: str, where: str, params: dict[str, Any], counts: dict[str, int]) -> None:
    n = _count(client, table, where, params)
    if n:
        client.command(f"DELETE FROM engagement.{table} WHERE {where}", parameters=params)
    counts[table] = counts.get(table, 0) + n


def erase(client: Client, target: Target) -> dict[str, int]:
    """Delete the member's rows in `target.communities`; returns rows deleted or rewritten per table.

    Idempotent: a second run finds nothing and changes nothing.
    """
    counts: dict[str, int] = {}
    if not target.communities:
        return counts
    params: dict[str, Any] = {
        "cs": list(target.communities),
        "base": target.erased_community,
        "key": target.member_key,
        "cut": datetime.fromtimestamp(target.erased_at, tz=UTC),
    }
    own = f"{MEMBER_MATCH} AND occurred_at <= {CUT}"
    # 1. What the rollups must recompute, read before the events go.
    days: dict[str, list[Any]] = {}
    first: Any = None
    for community, day, first_at in client.query(
        f"SELECT community_id, toDate(occurred_at) AS day, min(occurred_at) FROM engagement.events WHERE {own}"
        " GROUP BY community_id, day",
        parameters=params,
    ).result_rows:
        days.setdefault(community, []).append(day)
        first = first_at if first is None else min(first, first_at)
    # 2. Their events, then the references to them in others' events.
    _delete(client, "events", own, params, counts)
    naming = f"{TARGET_MATCH} AND occurred_at <= {CUT}"
    named = _count(client, "events", naming, params)
    if named:
        client.command(
            f"ALTER TABLE engagement.events UPDATE target_author_id = NULL WHERE {naming}",
            parameters=params,
            settings={"mutations_sync": 2},
        )
    counts["events"] += named
    # 3. Derived rows that name them.
    _delete(client, "member_state", MEMBER_MATCH, params, counts)
    _delete(client, "tier_changes", MEMBER_MATCH, params, counts)
    _delete(client, "spam_flags", f"{MEMBER_MATCH} AND flagged_at <= {CUT}", params, counts)
    _delete(client, "moderation", f"{MEMBER_MATCH} AND decided_at <= {CUT}", params, counts)
    if first is not None:
        community_rows = "community_id IN {cs:Array(String)} AND as_of >= {first:DateTime64(3, 'UTC')}"
        _delete(client, "community_state", community_rows, {**params, "first": first}, counts)
    # 4. Rollups: recomputed from the events that remain (a new member after erased_at keeps theirs).
    # (also when a first attempt deleted the events but stopped before this step)
    stale = (
        bool(days)
        or (
            _count(client, "member_days", f"{MEMBER_MATCH} AND day < toDate({CUT})", params)
            + _count(client, "member_joins", f"{MEMBER_MATCH} AND joined_at <= {CUT}", params)
        )
        > 0
    )
    if stale:
        _delete(client, "member_days", MEMBER_MATCH, params, counts)
        _delete(client, "member_joins", MEMBER_MATCH, params, counts)
        client.command(_MEMBER_DAYS, parameters=params)
        client.command(_MEMBER_JOINS, parameters=params)
    for community, community_days in days.items():
        day_params = {"c": community, "days": community_days}
        _delete(client, "daily_events", "community_id = {c:String} AND day IN {days:Array(Date)}", day_params, counts)
        client.command(_DAILY_EVENTS, parameters=day_params)
        for table, period, start, start_of in _PERIODS:
            starts = sorted({start_of(d) for d in community_days})
            period_params = {"c": community, "starts": starts}
            _delete(
                client,
                table,
                f"community_id = {{c:String}} AND {period} IN {{starts:Array(Date)}}",
                period_params,
                counts,
            )
            client.command(_PERIOD_MEMBERS.format(table=table, period=period, start=start), parameters=period_params)
    return counts


def drop_rebuilt(client: Client, community_id: str, members_gone: Sequence[str]) -> dict[str, int]:
    """Before a rebuilt community's rows are written: its tier history goes (the rebuild writes its
    own), and members the rebuild no longer knows (known only through the forgotten one) go."""
    counts: dict[str, int] = {}
    params: dict[str, Any] = {"c": community_id, "gone": list(members_gone)}
    _delete(client, "tier_changes", "community_id = {c:String}", params, counts)
    if members_gone:
        _delete(
            client, "member_state", "community_id = {c:String} AND member_id IN {gone:Array(String)}", params, counts
        )
    return counts
