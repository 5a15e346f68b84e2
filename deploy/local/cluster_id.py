"""A KRaft cluster id for `kafka-storage format -t`: 22 URL-safe base64 characters, never starting with '-'.

Kafka's own `Uuid.randomUuid()` (what `kafka-storage random-uuid` prints) redraws
any id whose text starts with '-', because the storage tool would read such an
id as an option (`argument --cluster-id/-t: expected one argument`). This is the
same rule without starting a JVM: draw a random UUID, encode it as Kafka does
(URL-safe base64 of its 16 bytes, no padding), redraw while it starts with '-'.
Run as a script it prints one id.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable


def encode(raw: bytes) -> str:
    """Kafka's text form of a 16-byte UUID."""
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def cluster_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    while True:
        raw = bytearray(random_bytes(16))
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4, as java.util.UUID.randomUUID()
        raw[8] = (raw[8] & 0x3F) | 0x80  # IETF variant
        text = encode(bytes(raw))
        if not text.startswith("-"):
            return text


if __name__ == "__main__":
    print(cluster_id())
