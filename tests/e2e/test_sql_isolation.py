"""Analyst SQL cannot stall ingestion: a heavy query is stopped by its limit, and events sent
while it runs reach ClickHouse before it ends, with no stall."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from streams.config import Settings
from streams.embedded_sql import QueryError, query
from streams.tools.commands import post_events
from streams.tools.local_stack import LocalStack

from .helpers import api_token, scalar, wait_for, worker_metric

pytestmark = pytest.mark.usefixtures("stack")

# A cross join with the events on the (materialized) right side and ten billion rows streamed on
# the left: CPU-bound, so its time limit stops it.
HEAVY = (
    "SELECT count() FROM numbers(10000000000) AS b CROSS JOIN engagement.events AS a"
    " WHERE sipHash64(a.event_id, b.number) % 7 = 3"
)


def test_a_heavy_query_is_stopped_while_events_keep_flowing(e2e_settings: Settings, stack: LocalStack) -> None:
    community = f"sql-{uuid.uuid4().hex[:6]}"
    post_events(e2e_settings.gateway_url, [_like(community, 0)], api_token(e2e_settings))
    wait_for(lambda: _stored(e2e_settings, community) == 1, 60, "the first event")
    outcome: dict[str, object] = {}

    def heavy() -> None:
        started = time.monotonic()
        try:
            query(e2e_settings, HEAVY, "TSV", timeout_s=60)
            outcome["error"] = None
        except QueryError as exc:
            outcome["error"] = str(exc)
        outcome["ended"] = time.monotonic()
        outcome["took"] = outcome["ended"] - started  # type: ignore[operator]

    limits_before = worker_metric(e2e_settings, 'engage_sql_queries_total{outcome="limit"}')
    runner = threading.Thread(target=heavy)
    runner.start()
    time.sleep(0.5)  # the query is running
    stored_before = worker_metric(e2e_settings, 'engage_sink_rows_total{table="events"}')
    post_events(e2e_settings.gateway_url, [_like(community, i) for i in range(1, 200)], api_token(e2e_settings))
    wait_for(
        lambda: worker_metric(e2e_settings, 'engage_sink_rows_total{table="events"}') >= stored_before + 199,
        30,
        "events sent during the heavy query",
    )
    stored_at = time.monotonic()
    runner.join(60)
    assert not runner.is_alive()
    assert outcome["error"] is not None and "TIMEOUT_EXCEEDED" in str(outcome["error"]), outcome
    assert 2.5 < float(outcome["took"]) < 20, outcome  # the 3 s limit, not the 60 s client timeout
    assert stored_at < float(outcome["ended"]), "ingestion waited for the analyst query"  # type: ignore[arg-type]
    assert worker_metric(e2e_settings, 'engage_sql_queries_total{outcome="limit"}') == limits_before + 1
    assert worker_metric(e2e_settings, "engage_worker_stalled") == 0
    assert _stored(e2e_settings, community) == 200


def test_sql_stays_read_only(e2e_settings: Settings, stack: LocalStack) -> None:
    with pytest.raises(QueryError, match=r"readonly|READONLY"):
        query(e2e_settings, "INSERT INTO engagement.moderation (decision_id) VALUES ('x')", "TSV")


def _stored(settings: Settings, community: str) -> int:
    return scalar(settings, f"SELECT uniqExact(event_id) FROM engagement.events WHERE community_id = '{community}'")


def _like(community: str, i: int) -> dict[str, object]:
    return {
        "event_id": f"{community}-{i}",
        "type": "like",
        "community_id": community,
        "member_id": f"m{i % 5}",
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": "api",
    }
