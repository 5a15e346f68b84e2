"""The gateway's Kafka producer: acks=all, idempotent, and quick to say "not now".

A request is answered 202 only after Kafka acknowledged every event in it; if
Kafka cannot take them in time the gateway answers 503 with Retry-After, so the
sender retries and nothing accepted is ever lost. Canonical events travel in
envelopes (streams/envelopes.py): the events of concurrent requests that fall in
one partition share a Kafka message, so the worker pays Faust's per-message cost
once per envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidProducerEpoch, KafkaError, OutOfOrderSequenceNumber, UnknownProducerId

from streams.config import TOPIC_EVENTS
from streams.envelopes import HEADERS, EnvelopeBatcher, EnvelopeLimits, partition_for

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    pass


# Refusals that last as long as the producer does: the broker no longer accepts its sequence
# numbers. aiokafka neither resets the sequence nor bumps the epoch, so batches that expired while
# Kafka was away (each took sequence numbers it never appended) left a gap that refuses every
# later batch of that partition with OutOfOrderSequenceNumber, for good. Such a producer is
# replaced by a new one (a new producer id starts at sequence 0); the requests that met it were
# answered 503 and are sent again.
LOST_SEQUENCE = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)


class EventProducer:
    def __init__(
        self, bootstrap: str, timeout_s: float = 2.5, envelope_limits: EnvelopeLimits | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._envelopes = EnvelopeBatcher(self._send_envelope, envelope_limits)
        self._partitions: int | None = None
        self._retiring: set[asyncio.Task[None]] = set()  # replaced producers, being stopped

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=0,  # envelopes are already batched
                    max_request_size=2 << 20,
                    request_timeout_ms=int(self.timeout_s * 1000),
                    compression_type=None,
                )
                try:
                    await asyncio.wait_for(producer.start(), self.timeout_s * 2)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise KafkaUnavailable(f"cannot connect to Kafka at {self.bootstrap}: {exc}") from exc
                self._producer = producer
            return self._producer

    async def send_all(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Send (key, value) pairs; return once Kafka acknowledged all of them."""
        producer = await self._ensure()
        try:
            futures = [await self._send(producer, topic, value=value, key=key) for key, value in messages]
            await asyncio.wait_for(asyncio.gather(*futures), self.timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge in {self.timeout_s}s: {exc!r}") from exc

    async def send_to_every_partition(self, topic: str, key: bytes, value: bytes) -> int:
        """Send one record to every partition of `topic` (erasures); return once all are acknowledged."""
        producer = await self._ensure()
        try:
            partitions = sorted(await asyncio.wait_for(producer.partitions_for(topic), self.timeout_s))
            futures = [await self._send(producer, topic, value=value, key=key, partition=p) for p in partitions]
            await asyncio.wait_for(asyncio.gather(*futures), self.timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge in {self.timeout_s}s: {exc!r}") from exc
        return len(partitions)

    async def send_events(self, events: Sequence[tuple[str, bytes]]) -> None:
        """Send (community_id, canonical JSON line) pairs in envelopes; return once Kafka
        acknowledged every envelope holding them. A community's lines keep their order."""
        producer = await self._ensure()
        try:
            partitions = await self._partition_count(producer)
            by_partition: dict[int, list[bytes]] = {}
            for community_id, line in events:
                by_partition.setdefault(partition_for(community_id, partitions), []).append(line)
            waits = [w for p, lines in by_partition.items() for w in self._envelopes.add(p, lines)]
            # asyncio.wait, not wait_for: an envelope is shared with other requests and must not be cancelled
            done, pending = await asyncio.wait(waits, timeout=self.timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise KafkaUnavailable(f"Kafka did not take the events: {exc!r}") from exc
        if pending:
            raise KafkaUnavailable(f"Kafka did not acknowledge in {self.timeout_s}s")
        for fut in done:
            refused = fut.exception()
            if refused is not None:
                raise KafkaUnavailable(f"Kafka refused an envelope: {refused!r}") from refused

    async def _partition_count(self, producer: AIOKafkaProducer) -> int:
        if self._partitions is None:
            found = await asyncio.wait_for(producer.partitions_for(TOPIC_EVENTS), self.timeout_s)
            self._partitions = len(found)
        return self._partitions

    async def _send_envelope(self, partition: int, value: bytes) -> asyncio.Future[object]:
        producer = await self._ensure()
        return await self._send(producer, TOPIC_EVENTS, value=value, partition=partition, headers=HEADERS)

    async def _send(self, producer: AIOKafkaProducer, topic: str, **record: Any) -> asyncio.Future[object]:
        """One record sent by `producer`, which is replaced if the broker lost its sequence."""
        fut: asyncio.Future[object] = await producer.send(topic, **record)
        fut.add_done_callback(lambda done: self._check_sequence(done, producer))
        return fut

    def _check_sequence(self, fut: asyncio.Future[object], producer: AIOKafkaProducer) -> None:
        if fut.cancelled() or not isinstance(fut.exception(), LOST_SEQUENCE) or self._producer is not producer:
            return
        log.warning("Kafka refuses this producer's sequence (%r): replacing the producer", fut.exception())
        self._producer = None  # the next send starts a new one
        task = asyncio.ensure_future(self._stop_quietly(producer))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _stop_quietly(self, producer: AIOKafkaProducer) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), self.timeout_s * 2)

    async def ready(self) -> tuple[bool, str]:
        try:
            producer = await self._ensure()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), self.timeout_s)
        except (KafkaUnavailable, KafkaError, TimeoutError, OSError) as exc:
            return False, str(exc)[:300]
        return True, "ok"

    async def close(self) -> None:
        await self._envelopes.flush_all()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
