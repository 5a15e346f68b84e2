"""What the worker publishes downstream, each record built from and validated against its model.

`engagement.tier-changes` carries `schemas.outputs.TierChange`, `engagement.spam-flags`
carries `schemas.outputs.SpamFlag` (docs/topics.md is generated from those models). The
cores hand back plain records (floats of Unix seconds); this is where they become the wire's
records, so a record the model would refuse fails here rather than downstream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
import orjson

from schemas.outputs import Tier, TierChange
from streams.envelopes import partition_for
from streams.scoring import TierChangeRecord
from streams.spam.flags import FlagRecord
from streams.state_registry import Outputs


def tier_change(t: TierChangeRecord) -> TierChange:
    return TierChange(
        community_id=t.community_id,
        member_id=t.member_id,
        from_tier=Tier(t.from_tier),
        to_tier=Tier(t.to_tier),
        at=datetime.fromtimestamp(t.at, UTC),
        creation=t.creation,
        curation=t.curation,
        received=t.received,
    )


_TIERS = frozenset(tier.value for tier in Tier)


def tier_change_value(t: TierChangeRecord) -> bytes:
    """The message value on `engagement.tier-changes` (its key is the community id).

    The model's JSON, written without building the model (a batch may change thousands of
    tiers): tests/unit/test_published.py holds it byte for byte to `tier_change(t)`'s."""
    for tier in (t.from_tier, t.to_tier):
        if tier not in _TIERS:
            raise ValueError(f"tier {tier!r} is not one of {sorted(_TIERS)} (schemas.outputs.Tier)")
    return orjson.dumps(
        {
            "community_id": t.community_id,
            "member_id": t.member_id,
            "from_tier": t.from_tier,
            "to_tier": t.to_tier,
            "at": datetime.fromtimestamp(t.at, UTC),
            "creation": t.creation,
            "curation": t.curation,
            "received": t.received,
        },
        option=orjson.OPT_UTC_Z,
    )


class _TierChangeJSON(msgspec.Struct):
    """TierChange's fields in its order: what msgspec encodes as the model's JSON object."""

    community_id: str
    member_id: str
    from_tier: str
    to_tier: str
    at: datetime
    creation: float
    curation: float
    received: float


_LINES = msgspec.json.Encoder()
# From 1e16 on msgspec writes a float's exponent as "1e16", the model (and orjson) as "1e+16":
# a change with a score that large (or not finite) is written by `tier_change_value`.
_PLAIN = 1e16


def tier_change_values(changes: Sequence[TierChangeRecord]) -> list[bytes]:
    """`tier_change_value` of each change, the same bytes, written in one msgspec call.

    A batch may change thousands of tiers, and the per-record dict and call of
    `tier_change_value` were a fifth of a catching-up worker's event loop; here a change costs a
    struct (tests/unit/test_published.py holds the two byte for byte)."""
    fromtimestamp = datetime.fromtimestamp
    structs = []
    odd = []
    for i, (community, member, from_tier, to_tier, at, creation, curation, received) in enumerate(changes):
        if (
            from_tier not in _TIERS
            or to_tier not in _TIERS
            or not (-_PLAIN < creation < _PLAIN and -_PLAIN < curation < _PLAIN and -_PLAIN < received < _PLAIN)
        ):
            odd.append(i)
        structs.append(
            _TierChangeJSON(
                community, member, from_tier, to_tier, fromtimestamp(at, UTC), creation, curation, received
            )
        )
    values = _LINES.encode_lines(structs).split(b"\n")
    values.pop()  # what follows the last line's newline (a JSON string never holds a raw one)
    for i in odd:
        values[i] = tier_change_value(changes[i])  # or ValueError, for a tier the model does not know
    return values


def spam_flag_value(f: FlagRecord) -> bytes:
    """The message value on `engagement.spam-flags` (its key is the community id)."""
    return f.to_spam_flag().model_dump_json().encode()


class BatchProducer(Protocol):
    """What `Publisher` needs of aiokafka's producer: record batches built here, sent whole."""

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Awaitable[Any]: ...


class Publisher:
    """A batch's records onto their topics as a few record batches per partition.

    Each record keeps its own Kafka message, keyed by its community id and in the
    partition Kafka's default partitioner gives that key (`partition_for`), in emission
    order, so consumers see what a per-record send gave them. Built as record batches,
    a record costs an append instead of a trip through Faust's and aiokafka's per-message
    send path (most of a worker's time when a batch changes many tiers).
    """

    def __init__(self, producer: Callable[[], BatchProducer], partitions: int) -> None:
        self._producer = producer
        self._partitions = partitions

    async def publish(self, topic: str, records: Iterable[tuple[str, bytes]]) -> None:
        """Send (community_id, value) records; returns once Kafka acknowledged all of them."""
        producer = self._producer()
        open_batches: dict[int, Any] = {}
        pending: list[Awaitable[Any]] = []
        parts: dict[str, int] = {}
        for community_id, value in records:
            p = parts.get(community_id)
            if p is None:
                p = parts[community_id] = partition_for(community_id, self._partitions)
            key = community_id.encode()
            batch = open_batches.get(p)
            if batch is not None and batch.append(key=key, value=value, timestamp=None) is not None:
                continue
            if batch is not None:  # full: send it, start another
                pending.append(await producer.send_batch(batch, topic, partition=p))
            batch = open_batches[p] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record of {len(value)} bytes is larger than a producer batch")
        for p, batch in open_batches.items():
            pending.append(await producer.send_batch(batch, topic, partition=p))
        for fut in pending:
            await fut

    async def outputs(self, tier_topic: str, flags_topic: str, outputs: Outputs) -> None:
        """A batch's tier changes and spam flags (at least once: before the batch is acknowledged)."""
        if outputs.tier_changes:
            changes = outputs.tier_changes
            keys = [t.community_id for t in changes]
            await self.publish(tier_topic, zip(keys, tier_change_values(changes), strict=True))
        if outputs.flags:
            await self.publish(flags_topic, ((f.community_id, spam_flag_value(f)) for f in outputs.flags))
