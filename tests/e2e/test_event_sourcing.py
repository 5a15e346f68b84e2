"""Event sourcing end to end: state survives a worker restart, and replaying the log
into empty state (a second worker, its own group and ClickHouse store) gives the same
member_state: identical tiers, scores equal to 1e-9 relative."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.embedded_sql import query
from streams.tools.commands import chunks, post_events
from streams.tools.local_stack import LocalStack, http_ok
from streams.tools.simulate import simulate

from .helpers import api_token, rows, wait_for, worker_metric

pytestmark = pytest.mark.usefixtures("stack")

HALF_LIFE_S = 14 * 86400.0
LAMBDA = math.log(2) / HALF_LIFE_S


def stored(settings: Settings, communities: list[str]) -> int:
    ids = ",".join(f"'{c}'" for c in communities)
    return int(
        query(settings, f"SELECT uniqExact(event_id) FROM engagement.events WHERE community_id IN ({ids})", "TSV")
    )


def state(settings: Settings, communities: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    ids = ",".join(f"'{c}'" for c in communities)
    got = rows(
        settings,
        "SELECT community_id, member_id, tier, creation, curation, received, toUnixTimestamp64Milli(as_of) AS as_of_ms,"
        " events_counted, spam_status FROM engagement.member_state FINAL"
        f" WHERE community_id IN ({ids})",
    )
    return {(r["community_id"], r["member_id"]): r for r in got}


def decayed(value: float, as_of_ms: int, to_ms: int) -> float:
    return value * math.exp(-LAMBDA * (to_ms - as_of_ms) / 1000.0)


def test_restart_and_replay_into_empty_state_give_identical_member_state(
    e2e_settings: Settings, stack: LocalStack, tmp_path: Path
) -> None:
    events, _labels = simulate(
        seed=90210,
        communities=2,
        members_per_community=120,
        days=6,
        start=datetime(2026, 9, 1, tzinfo=UTC),
        spam_profiles_per_community=2,
        history_days=20,
    )
    evs = list(events)
    communities = sorted({e["community_id"] for e in evs})
    half = len(evs) // 2
    for batch in chunks(evs[:half], 500):
        post_events(e2e_settings.gateway_url, batch, api_token(e2e_settings))
    wait_for(lambda: stored(e2e_settings, communities) == half, 90, "the first half")
    time.sleep(4.0)  # let a snapshot round happen, so recovery uses snapshots and the log tail

    stack.restart_worker()
    # the new worker restores snapshots and replays the tail once it is handed the partitions
    for batch in chunks(evs[half:], 500):
        post_events(e2e_settings.gateway_url, batch, api_token(e2e_settings))
        break
    wait_for(lambda: worker_metric(e2e_settings, "engage_state_restored_communities_total") > 0, 60, "restored state")
    for batch in chunks(evs[half + 500 :], 500):
        post_events(e2e_settings.gateway_url, batch, api_token(e2e_settings))
    wait_for(lambda: stored(e2e_settings, communities) == len(evs), 90, "the second half")

    # A second worker replays the whole log into empty state: its own group, its own store.
    replay_settings = e2e_settings.with_(
        app_id="engage-replay-check",
        data_dir=str(tmp_path / "replay"),
        clickhouse_dsn="",
        worker_port=_free_port(),
        fault_clickhouse_file="",
    )
    replayer = LocalStack(replay_settings, log_dir=tmp_path / "replay-logs", quiet=True)
    try:
        replayer.spawn("worker", "worker")
        replayer.wait_until("the replay worker", lambda: http_ok(f"{replay_settings.worker_url}/readyz"), 120)
        wait_for(lambda: stored(replay_settings, communities) == len(evs), 120, "the replay")
        live = state(e2e_settings, communities)
        wait_for(lambda: len(state(replay_settings, communities)) == len(live), 60, "replayed member rows")
        time.sleep(1.0)
        replayed = state(replay_settings, communities)
    finally:
        replayer.stop()

    assert len(live) > 200
    assert set(live) == set(replayed)
    horizon = max(r["as_of_ms"] for r in [*live.values(), *replayed.values()])
    tiers = {"lurker": 0, "curator": 0, "creator": 0, "ambassador": 0}
    for key, a in live.items():
        b = replayed[key]
        assert a["tier"] == b["tier"], key
        assert a["events_counted"] == b["events_counted"], key
        assert a["spam_status"] == b["spam_status"], key
        for col in ("creation", "curation", "received"):
            x, y = decayed(a[col], a["as_of_ms"], horizon), decayed(b[col], b["as_of_ms"], horizon)
            assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (key, col, x, y)
        tiers[a["tier"]] += 1
    # the community is not all lurkers: the comparison covers every tier
    assert tiers["creator"] + tiers["ambassador"] > 0 and tiers["curator"] > 0, tiers


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
