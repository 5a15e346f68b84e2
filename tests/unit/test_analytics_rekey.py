"""Migration 0004 re-keys engagement.events by day on a store with data, keeps every event,
and makes a time-range question read fewer granules (tests/fixtures/analytics/rekey_probe.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@cache
def probe(store: str) -> dict[str, Any]:
    """A fresh process (chDB opens one store per process): 0001-0003, data, then 0004 and 0005."""
    done = subprocess.run([sys.executable, "-m", "tests.fixtures.analytics.rekey_probe", store],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_rekey_keeps_every_event_and_reads_fewer_granules(tmp_path: Path) -> None:
    out = probe(str(tmp_path / "store"))
    before, after, again = out["before"], out["after"], out["again"]
    assert out["first"] == ["0001_base_tables.sql", "0002_analytics_views.sql", "0003_member_decay.sql"]
    assert out["second"][:2] == ["0004_comments_and_events_by_day.sql", "0005_weekly_monthly_views.sql"]
    assert before["sorting_key"] == "community_id, type, event_id"
    assert after["sorting_key"] == again["sorting_key"] == "community_id, toDate(occurred_at), type, event_id"

    # Every event, before and after; the old table held unmerged duplicates, which may collapse.
    assert before["distinct"] > 240_000 and before["rows"] > before["distinct"]
    for state in (after, again):
        assert (state["distinct"], state["rows_final"]) == (before["distinct"], before["rows_final"])
        assert state["distinct"] <= state["rows"] <= before["rows"]
        assert state["daily"] == before["daily"]  # the rollups are untouched
        assert state["range_count"] == before["range_count"] == 12_000  # 3 days x 4,000 events

    # Three days of a 60-day community: every granule of its partition before, a few after.
    (sel_before, total_before), sel_after = before["range_granules"], after["range_granules"][0]
    assert sel_before >= total_before - 1  # the old key cannot skip by time
    assert sel_after * 4 <= sel_before, (before["range_granules"], after["range_granules"])

    # The staging table is gone, and the rollups still follow inserts into the new table.
    assert out["tables"] == ["events"]
    assert out["new_event_daily"] == [["2025-05-01", "1", "1"]]
    assert out["new_event_weekly"] == [["2025-04-28", "1", "1"]]
