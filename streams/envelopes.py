"""Envelopes: one Kafka message on `engagement.events` carries one or more canonical events.

The value is JSON Lines (`content-type: application/x-ndjson`), one canonical event per
line; a one-event message is a valid one-line envelope, so older logs and simple
producers keep working. An event's position in the log is (partition, offset, line).

Producers choose the partition as Kafka's default partitioner does for the key
`community_id` (murmur2), so a producer that keys plain messages by community lands
in the same partition and a community's events stay in one ordered stream.
`EnvelopeBatcher` buffers lines per partition and flushes an envelope at a size,
byte or linger limit; each caller learns when the envelope holding its lines was
acknowledged.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from aiokafka.partitioner import murmur2

CONTENT_TYPE = b"application/x-ndjson"
HEADERS: list[tuple[str, bytes]] = [("content-type", CONTENT_TYPE)]


@functools.lru_cache(maxsize=1 << 16)
def partition_for(community_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key `community_id`."""
    return int(murmur2(community_id.encode()) & 0x7FFFFFFF) % partitions


def split_lines(value: bytes) -> list[bytes]:
    """The lines of an envelope; line i of the result is line i of the message (empty ones too)."""
    lines = value.split(b"\n")
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # a trailing newline ends the last line, it does not start another
    return lines


def envelope(lines: Iterable[bytes]) -> bytes:
    return b"\n".join(lines)


@dataclass(frozen=True)
class EnvelopeLimits:
    """When a partition's buffer is sent: whichever limit is reached first."""

    max_events: int = 1000
    max_bytes: int = 256 * 1024
    linger_s: float = 0.02


# partition, envelope bytes -> a future resolved when Kafka acknowledged it
Send = Callable[[int, bytes], Awaitable["asyncio.Future[object]"]]


@dataclass
class _Buffer:
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    done: asyncio.Future[None] | None = None
    timer: asyncio.TimerHandle | None = None


class EnvelopeBatcher:
    """Per-partition buffers of event lines, flushed as envelopes (single event loop)."""

    def __init__(self, send: Send, limits: EnvelopeLimits | None = None) -> None:
        self._send = send
        self.limits = limits or EnvelopeLimits()
        self._buffers: dict[int, _Buffer] = {}
        self._inflight: set[asyncio.Task[None]] = set()

    def add(self, partition: int, lines: Sequence[bytes]) -> list[asyncio.Future[None]]:
        """Queue `lines` (in order) for `partition`; the futures resolve when all are acknowledged."""
        waits: list[asyncio.Future[None]] = []
        limits = self.limits
        for line in lines:
            buf = self._buffers.get(partition)
            if buf is not None and buf.lines and buf.size + len(line) + 1 > limits.max_bytes:
                self._flush(partition)
                buf = None
            if buf is None:
                buf = self._buffers[partition] = _Buffer(done=asyncio.get_running_loop().create_future())
            buf.lines.append(line)
            buf.size += len(line) + 1
            assert buf.done is not None
            if not waits or waits[-1] is not buf.done:
                waits.append(buf.done)
            if len(buf.lines) >= limits.max_events or buf.size >= limits.max_bytes:
                self._flush(partition)
            elif buf.timer is None:
                buf.timer = asyncio.get_running_loop().call_later(limits.linger_s, self._flush, partition)
        return waits

    def _flush(self, partition: int) -> None:
        buf = self._buffers.pop(partition, None)
        if buf is None or not buf.lines:
            return
        if buf.timer is not None:
            buf.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._deliver(partition, buf))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _deliver(self, partition: int, buf: _Buffer) -> None:
        assert buf.done is not None
        try:
            ack = await self._send(partition, envelope(buf.lines))
            await ack
        except BaseException as exc:  # every waiter learns why; the sender answers 503
            if not buf.done.done():
                buf.done.set_exception(exc)
                buf.done.exception()  # retrieved here too: a waiter that timed out is not warned about
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if not buf.done.done():
            buf.done.set_result(None)

    async def flush_all(self) -> None:
        """Send every buffer now and wait for the envelopes in flight."""
        for partition in list(self._buffers):
            self._flush(partition)
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    def pending_events(self) -> int:
        return sum(len(b.lines) for b in self._buffers.values())


class EnvelopePacker:
    """The same buffering for a synchronous producer (`engage replay`, the benchmark): lines in,
    (partition, envelope) out whenever a buffer is full; `flush` gives the rest."""

    def __init__(self, partitions: int, limits: EnvelopeLimits | None = None) -> None:
        self.partitions = partitions
        self.limits = limits or EnvelopeLimits()
        self._buffers: dict[int, tuple[list[bytes], list[int]]] = {}

    def add(self, community_id: str, line: bytes) -> list[tuple[int, bytes]]:
        partition = partition_for(community_id, self.partitions)
        lines, size = self._buffers.setdefault(partition, ([], [0]))
        ready = []
        if lines and size[0] + len(line) + 1 > self.limits.max_bytes:
            ready.append((partition, envelope(lines)))
            lines.clear()
            size[0] = 0
        lines.append(line)
        size[0] += len(line) + 1
        if len(lines) >= self.limits.max_events or size[0] >= self.limits.max_bytes:
            ready.append((partition, envelope(lines)))
            lines.clear()
            size[0] = 0
        return ready

    def flush(self) -> list[tuple[int, bytes]]:
        ready = [(p, envelope(lines)) for p, (lines, _) in sorted(self._buffers.items()) if lines]
        self._buffers.clear()
        return ready
