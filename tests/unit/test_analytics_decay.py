"""Scores compared across members are decayed to the community clock (sinks/migrations/0003).

The worker rewrites a member's row only when the member changes, so stored scores are
decayed to different moments. The hand-worked numbers of ana-decay are in
tests/fixtures/analytics/simulated_communities.py (`_decay`).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the repo root, for tests.fixtures

from sinks.batch_writer import BatchWriter  # noqa: E402
from sinks.columns import MEMBER_STATE_COLUMNS  # noqa: E402
from streams import metrics  # noqa: E402
from streams.scoring import MemberRow  # noqa: E402
from streams.scoring.config import DAY_SECONDS, ScoringConfig  # noqa: E402
from streams.worker.rows import member_state_row  # noqa: E402
from tests.fixtures.analytics.embedded_store import analytics_store  # noqa: E402

RATE = ScoringConfig().decay_rate
SCORES = ("member_id", "creation", "creation_now", "curation_now", "received_now", "creation_rank",
          "creation_top_fraction")


@pytest.fixture(scope="module")
def ch() -> Client:
    return analytics_store()[0]


def naive_utc(value: Any) -> Any:
    """Datetimes as naive UTC, whichever way the client returned them."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def query(ch: Client, sql: str) -> list[dict[str, Any]]:
    result = ch.query(sql)
    return [{k: naive_utc(v) for k, v in zip(result.column_names, row, strict=True)}
            for row in result.result_rows]


def test_member_state_row_ends_with_the_decay_rate() -> None:
    row = MemberRow("c", "m", "creator", 3.0, 1.0, 2.0, 100.0, 10.0, 90.0, 4, "invite", "member", False)
    built = dict(zip(MEMBER_STATE_COLUMNS, member_state_row(row, "none", 7, RATE), strict=True))
    assert (built["creation"], built["as_of"], built["version"], built["decay_rate"]) == (3.0, 100.0, 7, RATE)


def test_member_current_ranks_by_creation_decayed_to_the_clock(ch: Client) -> None:
    found = query(ch, "SELECT * FROM engagement.v_member_current WHERE community_id = 'ana-decay' "
                      "ORDER BY creation_rank")
    got = [tuple(r[k] for k in SCORES) for r in found]
    # Stored creation says old (24), mid (7), fresh (4); at the clock it is fresh, mid, old.
    assert got == [
        ("dd-fresh", 4.0, pytest.approx(4.0, rel=1e-12), pytest.approx(0.5, rel=1e-12), 0.0, 1, 0.25),
        ("dd-mid", 7.0, pytest.approx(3.5, rel=1e-12), 0.0, pytest.approx(0.5, rel=1e-12), 2, 0.5),
        ("dd-old", 24.0, pytest.approx(3.0, rel=1e-12), pytest.approx(1.0, rel=1e-12), 0.0, 3, 0.75),
        ("dd-legacy", 2.0, pytest.approx(0.25, rel=1e-12), 0.0, 0.0, 4, 1.0),
    ]
    assert {(r["clock"], r["decay_rate"], r["eligible_members"]) for r in found} == {
        (datetime(2025, 4, 14), RATE, 4)}  # dd-legacy's stored 0 reads as the newest row's rate
    stored = query(ch, "SELECT member_id, decay_rate FROM engagement.member_state FINAL "
                       "WHERE community_id = 'ana-decay' AND decay_rate = 0")
    assert stored == [{"member_id": "dd-legacy", "decay_rate": 0.0}]


def test_concentration_sums_creation_decayed_to_the_clock(ch: Client) -> None:
    got = query(ch, "SELECT * FROM engagement.v_concentration WHERE community_id = 'ana-decay'")
    assert got == [{
        "community_id": "ana-decay", "eligible_members": 4,
        "total_creation": pytest.approx(10.75, rel=1e-12),  # stored: 37
        "top1_members": 1, "top20_members": 1,
        "top1_creation": pytest.approx(4.0, rel=1e-12), "top20_creation": pytest.approx(4.0, rel=1e-12),
        "top1_share": pytest.approx(4 / 10.75, rel=1e-12),  # stored: dd-old, 24 / 37
        "top20_share": pytest.approx(4 / 10.75, rel=1e-12),
        "members_for_half_creation": 2,  # stored: 1 (dd-old alone)
        "worker_as_of": None, "worker_top1_share": None, "worker_top20_share": None,  # no snapshot
        "clock": datetime(2025, 4, 14),
        "worker_snapshot_at": None, "clock_at": datetime(2025, 4, 14),  # 0005's names for the two
    }]


def test_rows_ahead_of_the_stored_events_are_never_decayed_backwards(ch: Client) -> None:
    # ana-micro's rows are as of 04-30 00:00, its latest stored event 04-29 20:00.
    clock = query(ch, "SELECT clock FROM engagement.v_community_clock WHERE community_id = 'ana-micro'")
    assert clock == [{"clock": datetime(2025, 4, 29, 20)}]
    rows = query(ch, "SELECT clock, creation = creation_now AS same FROM engagement.v_member_current "
                     "WHERE community_id = 'ana-micro'")
    assert {(r["clock"], r["same"]) for r in rows} == {(datetime(2025, 4, 30), 1)}


def test_rows_from_the_row_builder_rank_by_decayed_creation(ch: Client) -> None:
    """Written the worker's way (member_state_row, JSONCompactEachRow); no events, so the clock
    is the community's newest as_of. Not an `ana-` community: other tests list those."""
    t0 = datetime(2025, 2, 1, tzinfo=UTC).timestamp()
    later = t0 + 14 * DAY_SECONDS
    quiet = MemberRow("decay-rows", "quiet", "creator", 6.0, 0.0, 0.0, t0, t0, t0, 2, "", "member", False)
    busy = MemberRow("decay-rows", "busy", "creator", 4.0, 0.0, 0.0, later, later, later, 2, "", "member", False)
    rows = [member_state_row(r, "none", 1, RATE) for r in (quiet, busy)]
    BatchWriter(lambda: ch, metrics.SINK).write("member_state", MEMBER_STATE_COLUMNS, rows)
    got = query(ch, "SELECT member_id, creation_now, creation_rank FROM engagement.v_member_current "
                    "WHERE community_id = 'decay-rows' ORDER BY creation_rank")
    assert got == [
        {"member_id": "busy", "creation_now": pytest.approx(4.0, rel=1e-12), "creation_rank": 1},
        {"member_id": "quiet", "creation_now": pytest.approx(3.0, rel=1e-12), "creation_rank": 2},
    ]


UPGRADE = """
import json, shutil, sys, tempfile
from pathlib import Path
from sinks import clickhouse
from sinks.migrate import available, migrate
from streams import metrics

before = Path(tempfile.mkdtemp())
for mig in available():
    if mig.number <= 2:
        (before / mig.name).write_text(mig.sql)
client = clickhouse.connect("chdb://" + sys.argv[1])
out = {"first": migrate(client, before)}
client.command(
    "INSERT INTO engagement.member_state (community_id, member_id, tier, creation, curation, received,"
    " as_of, first_seen, last_active, events_counted, join_source, actor_role, spam_status, version)"
    " VALUES ('c', 'quiet', 'creator', 8, 0, 0, '2025-01-01 00:00:00', '2025-01-01 00:00:00',"
    " '2025-01-01 00:00:00', 1, '', 'member', 'none', 1)"
)
client.command(
    "INSERT INTO engagement.events (event_id, type, community_id, member_id, occurred_at, source,"
    " actor_role, join_source, link_count, ingested_at, kafka_partition, kafka_offset)"
    " VALUES ('e1', 'comment', 'c', 'fresh', '2025-01-29 00:00:00', 'test', 'member', '', 0,"
    " '2025-01-29 00:00:00', 0, 0)"
)
out["second"] = migrate(client)
out["third"] = migrate(client)
for statement in next(m for m in available() if m.number == 3).statements():
    client.command(statement)  # again, as after a run stopped before its ledger entry

def scores():
    return client.query(
        "SELECT member_id, decay_rate, creation_now, creation_rank FROM engagement.v_member_current"
        " ORDER BY member_id"
    ).result_rows

out["only_old_rows"] = scores()
client.command(
    "INSERT INTO engagement.member_state (community_id, member_id, tier, creation, curation, received,"
    " as_of, first_seen, last_active, events_counted, join_source, actor_role, spam_status, version,"
    " decay_rate) VALUES ('c', 'fresh', 'creator', 3, 0, 0, '2025-01-29 00:00:00',"
    " '2025-01-29 00:00:00', '2025-01-29 00:00:00', 1, '', 'member', 'none', 2, " + sys.argv[2] + ")"
)
out["with_a_new_row"] = scores()
out["columns"] = [r[0] for r in client.query("DESCRIBE TABLE engagement.member_state").result_rows]
print(json.dumps(out))
"""


def test_migration_0003_upgrades_a_0002_store_and_runs_again(tmp_path: Path) -> None:
    """A fresh process (chDB opens one store per process): 0001+0002, a pre-0003 row, then 0003."""
    done = subprocess.run([sys.executable, "-c", UPGRADE, str(tmp_path / "store"), repr(RATE)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["first"] == ["0001_base_tables.sql", "0002_analytics_views.sql"]
    assert out["second"][0] == "0003_member_decay.sql" and out["third"] == []  # later migrations may follow
    assert out["columns"][-1] == "decay_rate"
    # No row knows its rate yet: the old row is left as stored (as before 0003).
    assert out["only_old_rows"] == [["quiet", 0.0, 8.0, 1]]
    # The worker's first new row brings the rate; the old row is decayed with it: 8 x 2^-2 = 2 < 3.
    fresh, quiet = out["with_a_new_row"]
    assert fresh == ["fresh", RATE, pytest.approx(3.0, rel=1e-12), 1]
    assert quiet == ["quiet", RATE, pytest.approx(2.0, rel=1e-12), 2]
    assert math.isclose(RATE, math.log(2) / (14 * DAY_SECONDS))
