"""Forgetting a member end to end, on the real broker and engine (docs/privacy.md).

A simulated community flows through the gateway; an ambassador who received likes is
forgotten through `POST /v1/erasures`. Afterwards no row of any `engagement` table or view
names them, the other members' scores and the community's counts equal a replay of the log
without their events (computed here by the pipeline's own steps), repeating the request
(the same body, and `engage forget` later) changes nothing, and a second worker that replays
the whole log into empty state (its own group and ClickHouse) keeps them forgotten.
"""

from __future__ import annotations

import math
import re
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinks.batch_writer import BatchWriter
from sinks.columns import COMMUNITY_STATE_COLUMNS
from streams import metrics
from streams.config import Settings
from streams.envelopes import envelope, split_lines
from streams.state_registry import StateRegistry
from streams.tools.commands import chunks, post_events
from streams.tools.erasure_commands import compact_log_command, forget_command, read_topic
from streams.tools.local_stack import LocalStack, http_ok
from streams.tools.simulate import simulate
from streams.topics import admin_client
from streams.worker import moderation
from streams.worker.pipeline import Incoming, Pipeline

from .helpers import api_token, auth, rows, scalar, wait_for, worker_metric

PRIVACY = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"


def documented_request() -> dict[str, Any]:
    """The body of docs/privacy.md's `POST /v1/erasures` example."""
    body = re.search(r"/v1/erasures.*?-d '(.*?)'", PRIVACY.read_text(), flags=re.S)
    assert body is not None, "docs/privacy.md has no curl example of POST /v1/erasures"
    parsed: dict[str, Any] = orjson.loads(body.group(1))
    return parsed

pytestmark = pytest.mark.usefixtures("stack")

LAMBDA = math.log(2) / (14 * 86400.0)
# community_state's figures: its columns but the key and the version
COMMUNITY_COLUMNS = tuple(c for c in COMMUNITY_STATE_COLUMNS if c not in ("community_id", "as_of", "version"))


def community_events() -> list[dict[str, Any]]:
    events, _ = simulate(
        seed=4242,
        communities=1,
        members_per_community=150,
        days=5,
        start=datetime(2026, 9, 1, tzinfo=UTC),
        spam_profiles_per_community=1,
        history_days=10,
    )
    out = []
    for e in events:
        e["community_id"] = "forget-" + e["community_id"]
        e["event_id"] = "fg-" + e["event_id"]
        out.append(e)
    return out


def reference(events: list[dict[str, Any]], cid: str) -> Any:
    """State from a log that never had the member's events (the pipeline's own decode and state steps)."""
    registry = StateRegistry(Settings().scoring(), Settings().spam())
    writer = BatchWriter(lambda: None, metrics.SINK)  # type: ignore[arg-type,return-value]
    pipeline = Pipeline(registry, writer, clock_skew_s=300, time_floor=Settings().event_time_floor_ts)
    for i in range(0, len(events), 200):
        chunk = events[i : i + 200]
        kafka_time = datetime.fromisoformat(chunk[-1]["occurred_at"]).timestamp() + 1
        pipeline.replay([Incoming(envelope(orjson.dumps(e) for e in chunk), 0, i, kafka_time)])
    return registry.communities[cid]


def member_rows(settings: Settings, cid: str) -> dict[str, dict[str, Any]]:
    got = rows(
        settings,
        "SELECT member_id, tier, creation, curation, received, toUnixTimestamp64Milli(as_of) AS as_of_ms,"
        f" events_counted, spam_status FROM engagement.member_state FINAL WHERE community_id = '{cid}'",
    )
    return {r["member_id"]: r for r in got}


def community_row(settings: Settings, cid: str) -> dict[str, Any]:
    cols = ", ".join(f"argMax({c}, as_of) AS {c}" for c in COMMUNITY_COLUMNS)
    return rows(settings, f"SELECT {cols} FROM engagement.community_state FINAL WHERE community_id = '{cid}'")[0]


def mentions(settings: Settings, member: str) -> dict[str, int]:
    """Rows of every engagement table and view holding `member` in any text column."""
    columns = rows(
        settings,
        "SELECT table, name FROM system.columns WHERE database = 'engagement'"
        " AND (type LIKE '%String%') AND type NOT LIKE 'AggregateFunction%' AND type NOT LIKE 'Array%'",
    )
    by_table: dict[str, list[str]] = {}
    for c in columns:
        by_table.setdefault(c["table"], []).append(c["name"])
    found = {}
    for table, names in by_table.items():
        where = " OR ".join(f"toString(`{n}`) = '{member}'" for n in names)
        n = scalar(settings, f"SELECT count() FROM engagement.`{table}` WHERE {where}")
        if n:
            found[table] = n
    return found


def post_erasure(settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{settings.gateway_url}/v1/erasures",
        data=orjson.dumps(body),
        method="POST",
        headers={"Content-Type": "application/json", **auth(settings)},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 202
        answer: dict[str, Any] = orjson.loads(resp.read())
        return answer


def applied(settings: Settings, erasure_id: str) -> int:
    return scalar(
        settings, f"SELECT uniqExact(kafka_partition) FROM engagement.erasures WHERE erasure_id = '{erasure_id}'"
    )


def snapshot(settings: Settings, cid: str) -> tuple[Any, ...]:
    """Everything an analyst reads of the community, to compare before and after a repeat."""
    return (
        member_rows(settings, cid),
        community_row(settings, cid),
        scalar(settings, f"SELECT count() FROM engagement.events WHERE community_id = '{cid}'"),
        scalar(settings, f"SELECT count() FROM engagement.tier_changes FINAL WHERE community_id = '{cid}'"),
        rows(
            settings,
            "SELECT day, type, uniqExactMerge(events) AS n FROM engagement.daily_events"
            f" WHERE community_id = '{cid}' GROUP BY day, type ORDER BY day, type",
        ),
    )


def assert_equal_state(got: dict[str, dict[str, Any]], want: Any) -> None:
    horizon = max(r["as_of_ms"] for r in got.values())
    assert set(got) == set(want.scorer.member_ids())
    for mid, row in got.items():
        ref = want.scorer.member_row(mid)
        assert row["tier"] == ref.tier, mid
        assert row["events_counted"] == ref.events_counted, mid
        for col in ("creation", "curation", "received"):
            x = row[col] * math.exp(-LAMBDA * (horizon - row["as_of_ms"]) / 1000)
            y = getattr(ref, col) * math.exp(-LAMBDA * (horizon - ref.as_of * 1000) / 1000)
            assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (mid, col, x, y)


def test_forget_an_ambassador_everywhere_and_for_good(
    e2e_settings: Settings, stack: LocalStack, tmp_path: Path
) -> None:
    s = e2e_settings
    evs = community_events()
    cid = evs[0]["community_id"]
    for batch in chunks(evs, 500):
        post_events(s.gateway_url, batch, api_token(s))
    wait_for(
        lambda: (
            scalar(s, f"SELECT uniqExact(event_id) FROM engagement.events WHERE community_id = '{cid}'") == len(evs)
        ),
        120,
        "the community's events",
    )
    wait_for(lambda: len(member_rows(s, cid)) == len(reference(evs, cid).scorer.member_ids()), 60, "member rows")

    # The one to forget: an ambassador whose posts others liked.
    top = rows(
        s,
        "SELECT member_id, received FROM engagement.member_state FINAL"
        f" WHERE community_id = '{cid}' AND tier = 'ambassador' AND actor_role = 'member'"
        " ORDER BY received DESC LIMIT 1",
    )
    assert top and top[0]["received"] > 0
    gone = top[0]["member_id"]
    likes = scalar(
        s,
        f"SELECT count() FROM engagement.events WHERE community_id = '{cid}'"
        f" AND type = 'like' AND target_author_id = '{gone}'",
    )
    assert likes > 0
    before = member_rows(s, cid)
    assert mentions(s, gone).keys() >= {"events", "member_state", "member_days", "tier_changes"}

    body = {**documented_request(), "community_id": cid, "member_id": gone}
    answer = post_erasure(s, body)
    assert gone not in orjson.dumps(answer).decode()
    wait_for(lambda: applied(s, answer["erasure_id"]) == s.partitions, 120, "the erasure on every partition")
    took = rows(
        s,
        "SELECT max(toUnixTimestamp64Milli(applied_at)) - toUnixTimestamp64Milli(any(erased_at)) AS ms"
        f" FROM engagement.erasures WHERE erasure_id = '{answer['erasure_id']}'",
    )[0]["ms"]
    print(f"erasure applied on {s.partitions} partitions {took} ms after it was received")
    assert worker_metric(s, "engage_erasures_applied_total") >= s.partitions

    # 1. no row of any engagement table (or view) names them
    assert mentions(s, gone) == {}
    audit = rows(s, f"SELECT * FROM engagement.erasures WHERE erasure_id = '{answer['erasure_id']}'")
    assert {r["requested_by"] for r in audit} == {"local-stack"} and sum(r["rebuilt"] for r in audit) == 1
    # 2. the others' scores and the community's counts are a replay of the log without them
    without = [
        {k: v for k, v in e.items() if not (k == "target_author_id" and v == gone)}
        for e in evs
        if e["member_id"] != gone
    ]
    want = reference(without, cid)
    after = member_rows(s, cid)
    assert_equal_state(after, want)
    full = reference(evs, cid)  # the same log with them: the comparison above could fail
    assert any(
        want.scorer.member_row(m).received < full.scorer.member_row(m).received for m in want.scorer.member_ids()
    )
    assert gone in set(before) - set(after)
    got_row, want_row = community_row(s, cid), want.scorer.community_row()
    for col in COMMUNITY_COLUMNS:
        assert math.isclose(got_row[col], getattr(want_row, col), rel_tol=1e-9, abs_tol=1e-12), col
    assert got_row["ambassadors"] == want_row.ambassadors

    # 3. repeating the request changes nothing: the same body, then `engage forget` later
    kept = snapshot(s, cid)
    again = post_erasure(s, {**body, "erased_at": answer["erased_at"]})
    assert again["erasure_id"] == answer["erasure_id"]  # the same request is the same erasure
    assert forget_command(s, cid, gone, "again", "dpo", None, 120.0) == 0
    assert snapshot(s, cid) == kept
    assert mentions(s, gone) == {}

    # 4. a full replay into empty state (a second worker, its own group and store) keeps them forgotten
    replay = s.with_(
        app_id="engage-forget-replay",
        data_dir=str(tmp_path / "replay"),
        clickhouse_dsn="",
        worker_port=_free_port(),
        fault_clickhouse_file="",
    )
    replayer = LocalStack(replay, log_dir=tmp_path / "replay-logs", quiet=True)
    try:
        replayer.spawn("worker", "worker")
        replayer.wait_until("the replay worker", lambda: http_ok(f"{replay.worker_url}/readyz"), 120)
        wait_for(
            lambda: (
                scalar(replay, f"SELECT uniqExact(event_id) FROM engagement.events WHERE community_id = '{cid}'")
                == len(without)
            ),
            180,
            "the replay",
        )
        wait_for(lambda: len(member_rows(replay, cid)) == len(after), 60, "replayed member rows")
        wait_for(lambda: worker_metric(replay, "engage_events_forgotten_total") > 0, 30, "forgotten events")
        assert mentions(replay, gone) == {}
        assert_equal_state(member_rows(replay, cid), want)
    finally:
        replayer.stop()

    # 5. `engage compact-log` copies the log without them
    copy = f"engagement.events.compacted-{int(time.time())}"
    assert compact_log_command(s, copy) == 0
    try:
        messages = [m for m in read_topic(s, copy) if not moderation.is_decision(m.value)]  # decisions: whole
        raw = [line for msg in messages for line in split_lines(msg.value)]
        # other tests write unreadable bytes to the topic on purpose: compact-log keeps them as they are
        assert all(gone.encode() not in line for line in raw)
        lines = [orjson.loads(line) for line in raw if line.startswith(b"{") and b'"community_id"' in line]
        ours = [e for e in lines if e["community_id"] == cid]
        assert len(ours) == len(without)
        assert all(e["member_id"] != gone and e.get("target_author_id") != gone for e in lines)
        assert compact_log_command(s, copy) == 2  # never into a topic that holds data
    finally:
        admin = admin_client(s)
        admin.delete_topics([copy])
        admin.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
