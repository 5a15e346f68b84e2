"""The gateway's producer replaces itself when Kafka refuses its sequence numbers for good.

aiokafka's idempotent producer neither resets its sequence nor bumps its epoch: batches that
expired while Kafka was away leave a gap, and every later batch of that partition is refused
with OutOfOrderSequenceNumber (seen in the chaos drill after a broker restart: the gateway
answered 503 until it was restarted). The broker is stood in for by a stub producer here: what
is tested is the gateway's reaction to the refusal (tests/e2e/test_chaos.py restarts a real one).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

import streams.gateway.producer as producer_module
from streams.gateway.producer import EventProducer, KafkaUnavailable


class StubProducer:
    """Takes sends and answers each with `refusal` (None: acknowledged)."""

    made: list[StubProducer] = []

    def __init__(self, **_: Any) -> None:
        self.refusal: BaseException | None = None
        self.sent = 0
        self.stopped = False
        StubProducer.made.append(self)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    async def send(self, topic: str, **_: Any) -> asyncio.Future[object]:
        self.sent += 1
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.refusal is None:
            fut.set_result(None)
        else:
            fut.set_exception(self.refusal)
        return fut


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> list[StubProducer]:
    StubProducer.made = []
    monkeypatch.setattr(producer_module, "AIOKafkaProducer", StubProducer)
    return StubProducer.made


def _events() -> list[tuple[str, bytes]]:
    return [(f"c{i}", b'{"event_id":"e%d"}' % i) for i in range(5)]


def test_a_producer_whose_sequence_kafka_lost_is_replaced(stubs: list[StubProducer]) -> None:
    async def run() -> None:
        gateway = EventProducer("stub:9092", timeout_s=1.0)
        await gateway.send_events(_events())  # the first producer, acknowledged
        first = stubs[0]
        first.refusal = OutOfOrderSequenceNumber()
        with pytest.raises(KafkaUnavailable, match="OutOfOrderSequenceNumber"):
            await gateway.send_events(_events())  # answered 503: the sender retries
        await gateway.send_events(_events())  # the retry goes out on a new producer
        assert len(stubs) == 2 and stubs[1].sent > 0
        await gateway.close()
        assert first.stopped and stubs[1].stopped

    asyncio.run(run())


def test_a_passing_failure_keeps_the_producer(stubs: list[StubProducer]) -> None:
    async def run() -> None:
        gateway = EventProducer("stub:9092", timeout_s=1.0)
        await gateway.send_events(_events())
        stubs[0].refusal = KafkaTimeoutError()
        with pytest.raises(KafkaUnavailable):
            await gateway.send_events(_events())
        stubs[0].refusal = None
        await gateway.send_events(_events())  # Kafka is back: the same producer goes on
        assert len(stubs) == 1 and not stubs[0].stopped
        await gateway.close()

    asyncio.run(run())
