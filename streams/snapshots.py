"""Scoring state in a Faust table backed by a changelog topic, plus the log tail.

Event sourcing with checkpoints: every few seconds the worker writes a snapshot
of each community that changed, chunked under Kafka's message size limit, then
a per-partition marker: "every event up to offset N of this partition is in the
snapshots". After a restart or a rebalance the new owner restores the snapshots
(Faust recovers the table from its changelog) and re-applies the events between
the marker and the first offset it is handed, read straight from the log
(streams/worker/recovery.py). So state never depends on when offsets were committed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import orjson

from streams.state_registry import StateRegistry, compress_snapshot

log = logging.getLogger(__name__)

CHUNK_BYTES = 900_000  # under the broker's default 1 MiB message limit

Send = Callable[[int, bytes, bytes | None], object]  # partition, key, value (None deletes)


def _marker_key(partition: int) -> bytes:
    return f"{partition}|m".encode()


def _header_key(partition: int, community_id: str) -> bytes:
    return f"{partition}|c|{community_id}".encode()


def _chunk_key(partition: int, community_id: str, gen: int, i: int) -> bytes:
    return f"{partition}|c|{community_id}|{gen}|{i}".encode()


class SnapshotStore:
    """Reads and writes snapshots in a mapping (the table's local data) and its changelog."""

    def __init__(self, data: Any, send: Send) -> None:
        self.data = data
        self.send = send

    def _put(self, partition: int, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value
        self.send(partition, key, value)

    def capture(self, registry: StateRegistry, partition: int) -> list[tuple[str, bytes]]:
        """The changed communities of `partition` as JSON bytes, marked clean (CPU only: may run
        in a thread while nothing changes state). Compressed and written later (`compress`, `write`)."""
        captured = []
        for cid in registry.in_partition(partition):
            c = registry.communities[cid]
            if c.dirty:
                captured.append((cid, registry.snapshot_json(cid)))
                c.dirty = False
        return captured

    @staticmethod
    def compress(captured: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [(cid, compress_snapshot(raw)) for cid, raw in captured]

    def write(self, partition: int, blobs: list[tuple[str, bytes]], marker: int) -> int:
        """Store serialized snapshots, then the marker. Returns communities written."""
        for cid, blob in blobs:
            old = self.data.get(_header_key(partition, cid))
            old_header = orjson.loads(old) if old else None
            gen = (old_header["gen"] + 1) if old_header else 0
            n = max(1, math.ceil(len(blob) / CHUNK_BYTES))
            for i in range(n):
                self._put(
                    partition,
                    _chunk_key(partition, cid, gen, i),
                    blob[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES],
                )
            self._put(partition, _header_key(partition, cid), orjson.dumps({"gen": gen, "n": n}))
            if old_header:
                for i in range(old_header["n"]):
                    self._put(partition, _chunk_key(partition, cid, old_header["gen"], i), None)
        self._put(partition, _marker_key(partition), str(marker).encode())
        return len(blobs)

    def restore_partition(self, registry: StateRegistry, partition: int) -> int:
        """Load every community snapshot of `partition`; return its marker (-1 when none)."""
        prefix = f"{partition}|c|".encode()
        for key, value in list(self.data.items()):
            if not (isinstance(key, bytes) and key.startswith(prefix)) or key.count(b"|") != 2:
                continue
            cid = key[len(prefix) :].decode()
            header = orjson.loads(value)
            blob = b"".join(
                self.data[_chunk_key(partition, cid, header["gen"], i)] for i in range(header["n"])
            )
            registry.restore(cid, blob)
        marker = self.data.get(_marker_key(partition))
        return int(marker) if marker else -1
