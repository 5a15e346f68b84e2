"""What the worker publishes is its schemas/ model's JSON, and the model reads it back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.outputs import ModerationAction, ModerationDecision, SpamFlag, SpamStatus, Tier, TierChange
from streams.scoring import TierChangeRecord
from streams.spam.flags import FlagRecord
from streams.worker import moderation, published

T = 1_767_268_800.5  # 2026-01-01T12:00:00.5Z


def test_a_tier_change_is_the_model_with_an_aware_time() -> None:
    record = TierChangeRecord("c1", "m1", "lurker", "creator", T, 3.0, 1.0, 2.0)
    value = published.tier_change_value(record)
    change = TierChange.model_validate_json(value)
    assert (change.from_tier, change.to_tier) == (Tier.LURKER, Tier.CREATOR)
    assert change.at == datetime.fromtimestamp(T, UTC) and change.at.timestamp() == T
    assert orjson.loads(value)["at"] == "2026-01-01T12:00:00.500000Z"


def test_a_tier_the_model_does_not_know_is_refused_before_it_is_published() -> None:
    with pytest.raises(ValueError, match="legend"):
        published.tier_change_value(TierChangeRecord("c1", "m1", "lurker", "legend", T, 0.0, 0.0, 0.0))


def test_a_decided_flag_keeps_who_when_and_its_version_on_the_wire() -> None:
    flag = FlagRecord("c1", "m1", T, 0.93, ("burst_comments",), "confirmed", "e7", "mod-a", T + 60, 3)
    wire = SpamFlag.model_validate_json(published.spam_flag_value(flag))
    assert wire.status is SpamStatus.CONFIRMED and wire.version == 3 and wire.decided_by == "mod-a"
    assert wire.decided_at is not None and wire.decided_at.timestamp() == T + 60
    assert wire.flagged_at.timestamp() == T and wire.reasons == ["burst_comments"]


def test_a_new_flag_has_no_decision_yet() -> None:
    wire = SpamFlag.model_validate_json(
        published.spam_flag_value(FlagRecord("c1", "m1", T, 0.9, ("burst_likes",), "flagged", "e1"))
    )
    assert (wire.decided_by, wire.decided_at, wire.version) == ("", None, 1)


def test_the_moderation_copy_in_the_events_log_is_the_model_with_its_id() -> None:
    decision = ModerationDecision(
        community_id="c1", member_id="m1", action=ModerationAction.CONFIRM, moderator="mod-a",
        decided_at=datetime.fromtimestamp(T, UTC),
    )
    value = moderation.encode(decision)
    assert value.startswith(moderation.PREFIX)
    copied = ModerationDecision.model_validate_json(value[len(moderation.PREFIX):])
    assert copied.decision_id == decision.key() and copied.model_copy(update={"decision_id": None}) == decision
    assert decision.keyed().key() == decision.key()  # the id a producer gave is kept


def test_the_old_shapes_are_refused_by_the_models() -> None:
    """What the worker published before the models were its contract: a float `at`, a flag's snapshot form."""
    record = TierChangeRecord("c1", "m1", "lurker", "creator", T, 3.0, 1.0, 2.0)
    with pytest.raises(ValidationError, match="at"):
        TierChange.model_validate_json(orjson.dumps(record._asdict()))
    flag = FlagRecord("c1", "m1", T, 0.9, ("burst_likes",), "flagged", "e1")
    with pytest.raises(ValidationError):
        SpamFlag.model_validate_json(orjson.dumps(flag.to_json()))


class _Batch:
    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes, bytes]] = []

    def append(self, *, key: bytes, value: bytes, timestamp: float | None) -> object | None:
        if len(self.records) >= self.room:
            return None
        self.records.append((key, value))
        return object()


class _Producer:
    """aiokafka's batch API as the Publisher uses it: what was sent, where, in which order."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []
        self.acked = 0

    def create_batch(self) -> _Batch:
        return _Batch(self.room)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Awaitable[Any]:
        self.sent.append((topic, partition, batch.records))

        async def ack() -> None:
            self.acked += 1

        return asyncio.ensure_future(ack())


def test_records_go_to_their_key_partition_in_emission_order_and_wait_for_every_ack() -> None:
    from streams.envelopes import partition_for

    producer = _Producer(room=3)
    records = [(f"c{i % 5}", f"v{i}".encode()) for i in range(40)]
    asyncio.run(published.Publisher(lambda: producer, 8).publish("t", records))
    assert producer.acked == len(producer.sent) and all(len(r) <= 3 for _, _, r in producer.sent)
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for topic, p, batch in producer.sent:
        assert topic == "t"
        by_partition.setdefault(p, []).extend(batch)
    for p, got in by_partition.items():
        want = [(c.encode(), v) for c, v in records if partition_for(c, 8) == p]
        assert got == want  # every record, keyed by its community, in the order emitted
    assert sum(map(len, by_partition.values())) == len(records)


def test_a_record_larger_than_a_batch_is_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="larger than a producer batch"):
        asyncio.run(published.Publisher(lambda: _Producer(room=0), 8).publish("t", [("c1", b"x")]))


@settings(max_examples=300, deadline=None)
@given(
    at=st.floats(0, 4_102_444_800),
    scores=st.tuples(*[st.floats(0, 1e300) | st.sampled_from([0.0, 3.0, 1e-300, 2.7, 1e16]) for _ in range(3)]),
    member=st.text(max_size=20),
)
def test_the_fast_tier_change_json_is_the_models_byte_for_byte(
    at: float, scores: tuple[float, float, float], member: str
) -> None:
    record = TierChangeRecord("c1", member, "curator", "ambassador", at, *scores)
    assert published.tier_change_value(record) == published.tier_change(record).model_dump_json().encode()


# any float, and those around where msgspec's exponents stop looking like the model's (1e16)
_scores = st.floats() | st.sampled_from([1e16, -1e16, 9.999999999999998e15, 1e-7, 0.0])


@settings(max_examples=300, deadline=None)
@given(
    changes=st.lists(
        st.tuples(
            st.text(max_size=12),
            st.text(max_size=12),
            st.sampled_from([t.value for t in Tier]),
            st.sampled_from([t.value for t in Tier]),
            st.floats(0, 4_102_444_800),
            _scores,
            _scores,
            _scores,
        ),
        max_size=30,
    )
)
def test_many_tier_changes_written_at_once_are_each_ones_own_bytes(changes: list[tuple[Any, ...]]) -> None:
    records = [TierChangeRecord(*c) for c in changes]
    values = published.tier_change_values(records)
    assert values == [published.tier_change_value(r) for r in records]
    for record, value in zip(records, values, strict=True):
        if all(abs(s) < float("inf") for s in record[5:]):
            assert value == published.tier_change(record).model_dump_json().encode()


def test_a_tier_the_model_does_not_know_is_refused_among_many() -> None:
    good = TierChangeRecord("c1", "m1", "lurker", "curator", T, 1.0, 2.0, 0.0)
    with pytest.raises(ValueError, match="legend"):
        published.tier_change_values([good, good._replace(to_tier="legend"), good])
