"""The worker's batch steps without Kafka or ClickHouse: envelopes in, rows and dead letters out."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pyarrow as pa

from sinks.batch_writer import BatchWriter
from streams import metrics
from streams.config import Settings
from streams.envelopes import envelope
from streams.state_registry import StateRegistry
from streams.worker.pipeline import Incoming, Pipeline

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def event(i: int, kind: str = "like", at: str = "2026-01-01T00:00:00Z", **extra: object) -> bytes:
    body: dict[str, object] = {
        "event_id": f"e{i}",
        "type": kind,
        "community_id": "c",
        "member_id": f"m{i % 3}",
        "occurred_at": at,
        "source": "api",
        **extra,
    }
    if kind == "join":
        body["join_source"] = "invite"
    return orjson.dumps(body)


class RecordingClient:
    def __init__(self) -> None:
        self.tables: dict[str, list[pa.Table | bytes]] = {}

    def raw_insert(self, table: str, column_names: Sequence[str], insert_block: bytes, fmt: str) -> None:
        name = table.split(".", 1)[1]
        if fmt == "ArrowStream":
            self.tables.setdefault(name, []).append(pa.ipc.open_stream(insert_block).read_all())
        else:
            self.tables.setdefault(name, []).append(insert_block)


def make_pipeline() -> tuple[Pipeline, RecordingClient]:
    client = RecordingClient()
    settings = Settings()
    registry = StateRegistry(settings.scoring(), settings.spam())
    return Pipeline(
        registry,
        BatchWriter(lambda: client, metrics.SINK),
        clock_skew_s=300,
        time_floor=settings.event_time_floor_ts,
        wall_clock=lambda: NOW,
    ), client


def test_a_bad_line_is_a_dead_letter_with_its_line_and_the_rest_is_kept() -> None:
    pipeline, client = make_pipeline()
    value = envelope([event(1, "join"), b"{not json", event(2)])
    result = pipeline.process([Incoming(value, 3, 41, NOW)])
    assert result.events == 2 and result.messages == 1
    [dead] = result.dead_letters
    assert (dead.partition, dead.offset, dead.line, dead.reason, dead.value) == (3, 41, 1, "not_json", b"{not json")
    [events] = client.tables["events"]
    assert events.column("kafka_line").to_pylist() == [0, 2]
    assert events.column("kafka_offset").to_pylist() == [41, 41]
    assert events.column("type").to_pylist() == ["join", "like"]
    assert events.column("join_source").to_pylist() == ["invite", ""]
    assert "member_state" in client.tables


def test_one_event_message_is_a_one_line_envelope() -> None:
    pipeline, client = make_pipeline()
    result = pipeline.process([Incoming(event(7), 0, 5, NOW), Incoming(event(8) + b"\n", 0, 6, NOW)])
    assert result.events == 2 and not result.dead_letters
    [events] = client.tables["events"]
    assert events.column("event_id").to_pylist() == ["e7", "e8"]
    assert events.column("kafka_line").to_pylist() == [0, 0]


def test_an_event_from_the_future_never_reaches_state() -> None:
    pipeline, _client = make_pipeline()
    result = pipeline.process(
        [
            Incoming(
                envelope([event(1), event(2, at="2099-01-01T00:00:00Z"), event(3, at="1999-12-31T23:59:59Z")]),
                0,
                0,
                NOW,
            )
        ]
    )
    assert [d.reason for d in result.dead_letters] == ["event_time_future", "event_time_before_floor"]
    assert pipeline.registry.communities["c"].scorer.clock == NOW


def test_future_is_judged_against_the_message_time_so_a_replay_agrees() -> None:
    # 10 minutes ahead of the message's Kafka time: refused live, and refused again a year later
    ahead = "2026-01-01T00:10:00Z"
    live, _ = make_pipeline()
    later, _ = make_pipeline()
    later.wall_clock = lambda: NOW + 365 * 86400
    for p in (live, later):
        result = p.process([Incoming(event(1, at=ahead), 0, 0, NOW)])
        assert [d.reason for d in result.dead_letters] == ["event_time_future"]


def test_replay_changes_state_and_writes_nothing() -> None:
    pipeline, client = make_pipeline()
    assert pipeline.replay([Incoming(envelope([event(1, "join"), event(2)]), 0, 0, NOW)]) == 2
    assert client.tables == {}
    assert pipeline.registry.tracked_members() == 2


def test_a_stored_batch_counts_its_events_by_type_and_its_tier_changes_by_transition() -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def counts() -> list[float]:
        return [
            sample("engage_events_processed_total", type="like"),
            sample("engage_events_processed_total", type="comment"),
            sample("engage_tier_transitions_total", from_tier="lurker", to_tier="curator"),
            sample("engage_tier_transitions_total", from_tier="curator", to_tier="creator"),
        ]

    pipeline, _ = make_pipeline()
    lines = [event(i) for i in range(7)] + [event(10 + i, "comment", content_fingerprint=1000 + i) for i in range(3)]
    before = counts()
    result = pipeline.process([Incoming(envelope(lines), 0, 0, NOW)])
    after = counts()
    changes = result.outputs.tier_changes
    assert changes  # three members liking and commenting move up
    want = [
        7.0,
        3.0,
        float(sum((t.from_tier, t.to_tier) == ("lurker", "curator") for t in changes)),
        float(sum((t.from_tier, t.to_tier) == ("curator", "creator") for t in changes)),
    ]
    assert [a - b for a, b in zip(after, before, strict=True)] == want
