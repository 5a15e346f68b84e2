"""The gateway's Kafka producer: acks=all, idempotent, and quick to say "not now".

A request is answered 202 only after Kafka acknowledged every event in it; if
Kafka cannot take them in time the gateway answers 503 with Retry-After, so the
sender retries and nothing accepted is ever lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    pass


class EventProducer:
    def __init__(self, bootstrap: str, timeout_s: float = 2.5) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=2,
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
            futures = [await producer.send(topic, value=value, key=key) for key, value in messages]
            await asyncio.wait_for(asyncio.gather(*futures), self.timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge in {self.timeout_s}s: {exc!r}") from exc

    async def ready(self) -> tuple[bool, str]:
        try:
            producer = await self._ensure()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), self.timeout_s)
        except (KafkaUnavailable, KafkaError, TimeoutError, OSError) as exc:
            return False, str(exc)[:300]
        return True, "ok"

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
