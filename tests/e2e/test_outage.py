"""ClickHouse down during a replay: consumption pauses, nothing is lost, nothing is
stored twice, and the rollup views do not double count, even when the same events
are delivered again afterwards. Failures are injected at the client boundary of
the embedded engine (the worker's fault file)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from streams.config import Settings
from streams.embedded_sql import query
from streams.tools.commands import chunks, post_events
from streams.tools.simulate import simulate

from .helpers import api_token, scalar, wait_for, worker_metric

pytestmark = pytest.mark.usefixtures("stack")


def test_clickhouse_outage_pauses_then_stores_every_event_once(e2e_settings: Settings) -> None:
    events, _ = simulate(
        seed=31337,
        communities=1,
        members_per_community=80,
        days=3,
        start=datetime(2026, 8, 3, tzinfo=UTC),
        spam_profiles_per_community=1,
        history_days=5,
    )
    evs = list(events)
    community = evs[0]["community_id"]
    expected = Counter((e["occurred_at"][:10], e["type"]) for e in evs)
    fault = Path(e2e_settings.fault_clickhouse_file)
    retries_before = worker_metric(e2e_settings, "engage_sink_retries_total")

    fault.touch()
    try:
        for batch in chunks(evs, 500):
            # Kafka takes them: the gateway is unaffected
            post_events(e2e_settings.gateway_url, batch, api_token(e2e_settings))
        wait_for(lambda: worker_metric(e2e_settings, "engage_sink_paused") == 1, 30, "the sink to pause")
        wait_for(
            lambda: worker_metric(e2e_settings, "engage_sink_retries_total") >= retries_before + 3, 30, "a few retries"
        )
        where = f"community_id = '{community}'"
        assert scalar(e2e_settings, f"SELECT count() FROM engagement.events WHERE {where}") == 0
    finally:
        fault.unlink()

    wait_for(
        lambda: scalar(e2e_settings, f"SELECT count() FROM engagement.events WHERE {where}") == len(evs),
        60,
        "every event after ClickHouse came back",
    )
    # the gauge drops once the write returns, a moment after its rows are visible to a query
    wait_for(lambda: worker_metric(e2e_settings, "engage_sink_paused") == 0, 10, "the sink to resume")
    # stored once: not even a duplicate row waiting for a merge
    assert scalar(e2e_settings, f"SELECT count() FROM engagement.events WHERE {where}") == len(evs)

    # the same events delivered again (a replay, a producer retry): rows may double, counts must not
    for batch in chunks(evs, 500):
        post_events(e2e_settings.gateway_url, batch, api_token(e2e_settings))
    wait_for(
        lambda: scalar(e2e_settings, f"SELECT count() FROM engagement.events WHERE {where}") == 2 * len(evs),
        60,
        "the second delivery",
    )
    assert scalar(e2e_settings, f"SELECT count() FROM engagement.events FINAL WHERE {where}") == len(evs)
    daily = query(
        e2e_settings,
        f"SELECT toString(day) AS day, joins, likes, shares, comments FROM engagement.v_daily WHERE {where}",
        "JSONEachRow",
    )
    got: Counter[tuple[str, str]] = Counter()
    for line in daily.splitlines():
        row = orjson.loads(line)
        for kind, col in (("join", "joins"), ("like", "likes"), ("share", "shares"), ("comment", "comments")):
            if int(row[col]):
                got[(row["day"], kind)] = int(row[col])
    assert got == expected
    # the members' event counts did not double either: the worker dedups by event_id
    counted = scalar(e2e_settings, f"SELECT sum(events_counted) FROM engagement.member_state FINAL WHERE {where}")
    assert counted == len(evs)
