"""The missing messages before one Faust hands from beyond the commit are read from the real
log (tests/unit/test_contiguous_log.py has the rules with a list for a log; this is the
reader on the broker): in order, each once, with their bytes, and nothing past the one handed.
And a partition whose hand-over to the agent was lost, with nothing after it, is sought back
by the live worker (streams/worker/stuck.py) and its messages processed once."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from streams.config import TOPIC_EVENTS, Settings
from streams.worker.pipeline import Incoming
from streams.worker.recovery import Partitions

from .helpers import scalar, wait_for

pytestmark = pytest.mark.usefixtures("stack")


def _produce(settings: Settings, community: str, values: list[bytes]) -> tuple[int, list[int]]:
    """Keyed by community, as the gateway does: one partition, in order. (partition, offsets)"""
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    try:
        futures = [producer.send(TOPIC_EVENTS, v, key=community.encode()) for v in values]
        producer.flush()
        sent = [f.get(timeout=30) for f in futures]
        return sent[0].partition, [m.offset for m in sent]
    finally:
        producer.close()


def _like(community: str, i: int) -> bytes:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return orjson.dumps(
        {
            "event_id": f"e-{uuid.uuid4().hex}",
            "type": "like",
            "community_id": community,
            "member_id": f"m-{i}",
            "occurred_at": at,
            "source": "test",
            "target_id": "post-1",
            "target_author_id": "m-0",
        }
    )


def test_a_gap_before_a_handed_message_is_filled_from_the_broker_in_log_order(e2e_settings: Settings) -> None:
    # events of a community of its own: the live worker scores them as it would any others
    community = f"c-gap-{uuid.uuid4().hex[:8]}"
    values = [_like(community, i) for i in range(12)]
    partition, offsets = _produce(e2e_settings, community, values)
    assert offsets == list(range(offsets[0], offsets[0] + 12)), "another producer wrote in between"
    nothing: Any = None
    parts = Partitions(e2e_settings, nothing, nothing, nothing, nothing)
    parts.ready.add(partition)
    parts.offsets[partition] = offsets[0] - 1  # applied up to just before the first probe

    async def go(batch: list[Incoming]) -> list[Incoming]:
        out: list[Incoming] = []
        async for run in parts.contiguous(batch):
            out.extend(run)
            parts.applied(run)
        return out

    handed = Incoming(values[9], partition, offsets[9], 0.0)
    got = asyncio.run(go([handed]))
    assert [m.offset for m in got] == offsets[:10]
    assert [m.value for m in got] == values[:10]  # read from the log, then the one handed
    assert got[-1] is handed
    # Faust then hands them again from the commit: in state and stored, all dropped but the new ones
    again = [Incoming(v, partition, o, 0.0) for v, o in zip(values, offsets, strict=True)]
    assert [m.offset for m in asyncio.run(go(again))] == offsets[10:]


def _metric(settings: Settings, series: str) -> float:
    with urllib.request.urlopen(f"{settings.worker_url}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line[len(series) + 1 :])
    raise AssertionError(f"no {series} on the worker's /metrics")


STUCK = 'engage_offsets_repaired_total{kind="stuck"}'


def test_a_lost_hand_over_is_sought_back_and_processed_once(e2e_settings: Settings) -> None:
    # A rebalance meanwhile seeks every partition back to its commit anyway (what the watch does),
    # so an attempt that saw one does not test the watch: it is tried again.
    assert any(_lose_a_hand_over(e2e_settings) for _ in range(3)), "a rebalance came during each of three attempts"


def _lose_a_hand_over(settings: Settings) -> bool:
    """False if a rebalance came meanwhile."""
    community = f"c-lost-{uuid.uuid4().hex[:8]}"
    stored = f"SELECT count() FROM engagement.events WHERE community_id = '{community}'"
    # the worker is consuming: a first event of the community goes through
    _produce(settings, community, [_like(community, 0)])
    wait_for(lambda: scalar(settings, stored) == 1, 60, "a first event to be processed")
    before, rebalances = _metric(settings, STUCK), _metric(settings, "engage_rebalances_total")
    switch = Path(settings.fault_kill_file)
    switch.write_text("lose:handover")  # the agent's next batch: neither processed nor acknowledged
    try:
        _produce(settings, community, [_like(community, i) for i in range(1, 6)])
        wait_for(lambda: not switch.exists(), 30, "the worker to take the batch and lose it")
        # nothing follows on that partition, so only the watch brings them back (15 s idle)
        wait_for(lambda: scalar(settings, stored) == 6, 90, "the lost events to be processed")
    finally:
        switch.unlink(missing_ok=True)
    if _metric(settings, "engage_rebalances_total") != rebalances:
        return False
    distinct = f"SELECT uniqExact(event_id) FROM engagement.events WHERE community_id = '{community}'"
    assert scalar(settings, distinct) == 6
    assert _metric(settings, STUCK) - before >= 5
    return True
