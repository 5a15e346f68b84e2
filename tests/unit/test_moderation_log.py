"""Moderation decisions at their place in the events log: applied there live, met there by every
replay, copies ignored (streams/worker/moderation.py). No Kafka, no ClickHouse."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from test_pipeline import NOW, RecordingClient

from schemas.outputs import ModerationAction, ModerationDecision
from sinks.batch_writer import BatchWriter
from streams import metrics
from streams.config import Settings
from streams.envelopes import envelope
from streams.state_registry import StateRegistry
from streams.worker import moderation
from streams.worker.pipeline import Incoming, Pipeline

DAY = 86_400.0


def at(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def line(eid: str, kind: str, ts: float, member: str = "spammer", **extra: object) -> bytes:
    body: dict[str, object] = {
        "event_id": eid, "type": kind, "community_id": "c", "member_id": member, "occurred_at": at(ts),
        "source": "api", **extra,
    }
    return orjson.dumps(body)


def burst(prefix: str, start: float) -> bytes:
    """Six comments on six threads in 25 s: a burst, which flags the member."""
    return envelope(
        line(f"{prefix}{i}", "comment", start + 5 * i, target_id=f"t{prefix}{i}", target_author_id="author",
             content_fingerprint=(i + 1) * 0x9E3779B97F4A7C15 % (1 << 63))
        for i in range(6)
    )


def clear(decided: float, decision_id: str = "d1") -> ModerationDecision:
    return ModerationDecision(
        community_id="c", member_id="spammer", action=ModerationAction.CLEAR, moderator="mod",
        decided_at=datetime.fromtimestamp(decided, UTC), decision_id=decision_id,
    )


T = NOW - 3 * DAY
JOIN = envelope([line("j", "join", T - 90 * DAY, join_source="organic")])


def log_with_decision() -> list[Incoming]:
    """Join, a burst (flagged), a moderator's clear, a second burst later (flagged again)."""
    return [
        Incoming(JOIN, 0, 0, NOW),
        Incoming(burst("a", T), 0, 1, NOW),
        Incoming(moderation.encode(clear(T + 3600)), 0, 2, NOW),
        Incoming(burst("b", T + 7200), 0, 3, NOW),
    ]


def pipeline() -> tuple[Pipeline, RecordingClient]:
    client = RecordingClient()
    settings = Settings()
    registry = StateRegistry(settings.scoring(), settings.spam())
    writer = BatchWriter(lambda: client, metrics.SINK)
    return Pipeline(registry, writer, clock_skew_s=300, wall_clock=lambda: NOW), client


def status(p: Pipeline) -> str:
    return p.registry.communities["c"].spam.status("spammer")


def test_a_decision_in_a_batch_is_applied_at_its_place_not_after_the_events() -> None:
    live, client = pipeline()
    result = live.process(log_with_decision())
    assert status(live) == "flagged"  # the second burst came after the clear: flagged again
    assert [f.status for f in result.outputs.flags] == ["flagged", "cleared", "flagged"]
    assert result.messages == 4 and result.events == 13
    assert len(client.tables["moderation"]) == 1

    # Applied after all the events (as a reader of the moderation topic at its own pace might), the
    # outcome differs: the place in the log is what makes it reproducible.
    late, _ = pipeline()
    late.process([m for m in log_with_decision() if not moderation.is_decision(m.value)])
    late.registry.moderate(clear(T + 3600), 0, "d1")
    assert status(late) == "cleared"


def test_replay_into_empty_state_meets_the_decision_where_the_live_worker_did() -> None:
    live, _ = pipeline()
    for msg in log_with_decision():  # one message a batch, live
        live.process([msg])
    rebuilt, _ = pipeline()
    assert rebuilt.replay(log_with_decision()) == 13
    assert status(rebuilt) == status(live) == "flagged"
    assert rebuilt.registry.snapshot("c") == live.registry.snapshot("c")


def test_a_copy_of_a_decision_met_again_changes_nothing() -> None:
    once, _ = pipeline()
    once.process(log_with_decision())
    twice, client = pipeline()
    # the moderation message redelivered after a crash, or copied again by a rebuild: a second copy later on
    result = twice.process([*log_with_decision(), Incoming(moderation.encode(clear(T + 3600)), 0, 4, NOW)])
    assert result.outputs.skipped == 1
    assert status(twice) == "flagged"
    assert len(client.tables["moderation"]) == 1
    assert twice.registry.communities["c"].spam.snapshot() == once.registry.communities["c"].spam.snapshot()


def test_applied_decisions_survive_a_snapshot() -> None:
    live, _ = pipeline()
    live.process(log_with_decision())
    restored, _ = pipeline()
    restored.registry.restore("c", live.registry.snapshot("c"))
    assert restored.registry.communities["c"].decisions == {"d1"}
    assert restored.registry.moderate(clear(T + 3600), 0, "d1").skipped == 1


def test_a_decision_that_does_not_parse_is_a_dead_letter() -> None:
    live, _ = pipeline()
    result = live.process([Incoming(moderation.PREFIX + b'{"member_id": 1}', 2, 9, NOW)])
    [dead] = result.dead_letters
    assert (dead.partition, dead.offset, dead.reason) == (2, 9, "invalid")
    assert dead.value.startswith(moderation.PREFIX)


def test_an_envelope_of_events_is_never_taken_for_a_decision() -> None:
    assert not moderation.is_decision(burst("x", T))
    assert not moderation.is_decision(None)
    assert moderation.is_decision(moderation.encode(clear(T)))
