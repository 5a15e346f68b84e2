"""Weak-evidence flags (status `review`) in ClickHouse: rows of spam_flags, not counted as spam flags by
v_daily (sinks/migrations/0006), first in the dashboard's review queue."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from spam_events import T0, ev, join

from sinks.batch_writer import BatchWriter
from sinks.columns import SPAM_FLAGS_COLUMNS
from streams import metrics
from streams.event_record import COMMENT, EventRecord
from streams.spam import SpamDetector
from streams.worker.rows import spam_flag_row

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the repo root, for tests.fixtures

from tests.fixtures.analytics.embedded_store import analytics_store  # noqa: E402

COMMUNITY = "spam-review"


def dropped_comments(member: str, start: float, links: list[int]) -> list[EventRecord]:
    """Comments under other members' content, ten minutes apart, carrying `links` links each."""
    return [ev(COMMENT, member, start + 600 * i, target=f"t{i}", author=f"a{i}", links=n) for i, n in enumerate(links)]


def dashboards() -> ModuleType:
    spec = importlib.util.spec_from_file_location("engage_dashboards_review", ROOT / "deploy/grafana/dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reviews_are_stored_but_not_counted_as_spam_flags_and_lead_the_review_queue() -> None:
    det = SpamDetector(COMMUNITY)
    det.observe([join(m, T0) for m in ("weak", "escalated", "cleared")])
    records = []
    # three dropped links in half the comments: weak, a review each
    for m in ("weak", "escalated", "cleared"):
        records += det.observe(dropped_comments(m, T0 + 600, [1, 0, 2, 0]))
    assert [(r.member_id, r.status) for r in records] == [("weak", "review"), ("escalated", "review"),
                                                           ("cleared", "review")]
    # the escalated one bursts later that day: six comments in half a minute, flagged
    records += det.observe([ev(COMMENT, "escalated", T0 + 4 * 3600 + 5 * i) for i in range(6)])
    cleared = det.apply_moderation("cleared", "clear", "mod-ann", "looked fine", T0 + 5 * 3600)
    assert cleared is not None and cleared.status == "dismissed" and not det.is_excluded("cleared")
    records.append(cleared)
    assert det.status("escalated") == "flagged" and det.status("weak") == "review"

    client, _ = analytics_store()
    writer = BatchWriter(lambda: client, metrics.SINK)
    writer.write("spam_flags", SPAM_FLAGS_COLUMNS, [spam_flag_row(r) for r in records])
    stored = client.query(
        "SELECT member_id, status FROM engagement.spam_flags FINAL "
        f"WHERE community_id = '{COMMUNITY}' ORDER BY member_id, flagged_at"
    ).result_rows
    assert stored == [("cleared", "dismissed"), ("escalated", "review"), ("escalated", "flagged"), ("weak", "review")]
    daily = client.query(
        f"SELECT sum(spam_flags) FROM engagement.v_daily WHERE community_id = '{COMMUNITY}'"
    ).result_rows
    assert daily == [(1,)]  # the escalated member's flag; reviews and a dismissed review are no spam flags

    gen = dashboards()
    # this community only (the dashboard's "All" reads the communities of v_critical_mass)
    raw = gen.CLICKHOUSE_SQL["spam_review_queue"].replace(gen._COMMUNITY, f"community_id = '{COMMUNITY}'")
    queue = [row[:3] for row in client.query(gen.render_clickhouse_sql(raw)).result_rows]
    assert queue == [(COMMUNITY, "weak", "review"), (COMMUNITY, "escalated", "flagged")]
