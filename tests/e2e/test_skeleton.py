"""The walking skeleton, end to end: HTTP -> gateway -> Kafka -> Faust worker -> ClickHouse."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.config import TOPIC_DLQ, TOPIC_EVENTS, Settings
from streams.embedded_sql import query

from .helpers import auth

pytestmark = pytest.mark.usefixtures("stack")


def event(community: str, **overrides: Any) -> dict[str, Any]:
    e = {
        "event_id": f"e-{uuid.uuid4().hex}",
        "type": "like",
        "community_id": community,
        "member_id": "m-1",
        "occurred_at": "2026-11-01T12:00:00+00:00",
        "source": "test",
        "target_id": "post-1",
        "target_author_id": "m-2",
    }
    e.update(overrides)
    return e


def post(settings: Settings, body: Any) -> httpx.Response:
    """POST canonical events with the stack's own token."""
    return httpx.post(f"{settings.gateway_url}/v1/events", json=body, headers=auth(settings), timeout=10)


def scalar(settings: Settings, sql: str) -> int:
    return int(query(settings, sql, "TSV").strip())


def eventually(check: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def end_offsets(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        offsets = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(offsets.values())
    finally:
        consumer.close()


def test_posted_events_appear_in_clickhouse(e2e_settings: Settings) -> None:
    community = f"c-{uuid.uuid4().hex[:8]}"
    batch = [event(community, member_id=f"m-{i}") for i in range(25)]
    batch.append(event(community, type="join", join_source="invite", target_id=None, target_author_id=None))
    r = httpx.post(f"{e2e_settings.gateway_url}/v1/events", json=batch, headers=auth(e2e_settings), timeout=10)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 26}
    sql = f"SELECT count() FROM engagement.events FINAL WHERE community_id = '{community}'"
    eventually(lambda: scalar(e2e_settings, sql) == 26, what="26 rows")
    row = query(
        e2e_settings,
        f"SELECT type, join_source, kafka_offset >= 0 FROM engagement.events FINAL "
        f"WHERE community_id = '{community}' AND type = 'join'",
        "TSV",
    )
    assert row.decode().strip() == "join\tinvite\t1"


def test_reposted_event_adds_no_row(e2e_settings: Settings) -> None:
    community = f"c-{uuid.uuid4().hex[:8]}"
    ev = event(community)
    for _ in range(3):
        assert post(e2e_settings, ev).status_code == 202
    marker = event(community, member_id="m-marker")
    assert post(e2e_settings, marker).status_code == 202
    # The marker comes after the three copies in the same partition: once it is stored, they all are.
    eventually(
        lambda: (
            scalar(
                e2e_settings, f"SELECT count() FROM engagement.events WHERE event_id = '{marker['event_id']}'"
            )
            == 1
        ),
        what="the marker",
    )
    assert (
        scalar(
            e2e_settings, f"SELECT count() FROM engagement.events FINAL WHERE event_id = '{ev['event_id']}'"
        )
        == 1
    )
    assert (
        scalar(
            e2e_settings, f"SELECT count() FROM engagement.events FINAL WHERE community_id = '{community}'"
        )
        == 2
    )


def test_invalid_event_gets_422_with_paths_and_produces_nothing(e2e_settings: Settings) -> None:
    community = f"c-{uuid.uuid4().hex[:8]}"
    before = end_offsets(e2e_settings, TOPIC_EVENTS)
    good = event(community)
    bad = event(community, occurred_at="2026-11-01T12:00:00", unexpected="x")
    r = httpx.post(f"{e2e_settings.gateway_url}/v1/events", json=[good, bad], headers=auth(e2e_settings), timeout=10)
    assert r.status_code == 422
    paths = {e["path"] for e in r.json()["errors"]}
    assert paths == {"[1].occurred_at", "[1].unexpected"}
    assert end_offsets(e2e_settings, TOPIC_EVENTS) == before
    r = httpx.post(
        f"{e2e_settings.gateway_url}/v1/events",
        content=b"not json",
        headers={"Content-Type": "application/json", **auth(e2e_settings)},
    )
    assert r.status_code == 415
    r = httpx.post(
        f"{e2e_settings.gateway_url}/v1/events", content=b"[" + b" " * (1 << 20) + b"]", headers=auth(e2e_settings)
    )
    assert r.status_code == 413
    assert end_offsets(e2e_settings, TOPIC_EVENTS) == before


def test_garbage_bytes_go_to_dlq_and_worker_keeps_going(e2e_settings: Settings) -> None:
    community = f"c-{uuid.uuid4().hex[:8]}"
    dlq_before = end_offsets(e2e_settings, TOPIC_DLQ)
    producer = KafkaProducer(bootstrap_servers=e2e_settings.bootstrap, acks="all")
    garbage = b"\x00\xff garbage " + uuid.uuid4().hex.encode()
    not_event = orjson.dumps({"event_id": "x", "type": "poke"})
    producer.send(TOPIC_EVENTS, garbage, key=community.encode())
    producer.send(TOPIC_EVENTS, not_event, key=community.encode())
    producer.flush()
    producer.close()
    after = event(community, member_id="m-after")
    assert post(e2e_settings, after).status_code == 202
    eventually(
        lambda: (
            scalar(
                e2e_settings, f"SELECT count() FROM engagement.events WHERE event_id = '{after['event_id']}'"
            )
            == 1
        ),
        what="the event after the garbage",
    )
    consumer = KafkaConsumer(
        bootstrap_servers=e2e_settings.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    tp = TopicPartition(TOPIC_DLQ, 0)
    consumer.assign([tp])
    consumer.seek(tp, dlq_before)
    letters = {m.value: dict(m.headers) for m in consumer}
    consumer.close()
    assert letters[garbage]["reason"] == b"not_utf8"
    assert letters[not_event]["reason"] == b"invalid"
    assert b"type" in letters[not_event]["error"]
    assert r_ok(e2e_settings)


def r_ok(settings: Settings) -> bool:
    return httpx.get(f"{settings.worker_url}/healthz", timeout=5).status_code == 200
