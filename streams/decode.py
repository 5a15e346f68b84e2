"""Bytes from Kafka to validated `EventRecord`s, or a dead letter with the reason.

Validation is the same pydantic model the gateway uses, so the worker accepts
exactly what the gateway would: bytes written straight to the topic get no pass.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson
from pydantic import ValidationError

from schemas.events import CanonicalEvent, format_location
from streams.event_record import EventRecord, from_canonical


class Decoded(NamedTuple):
    record: EventRecord
    source: str


class DeadLetter(NamedTuple):
    reason: str  # bounded: not_utf8, not_json, invalid
    detail: str  # one line a person can act on


def decode(value: bytes | None) -> Decoded | DeadLetter:
    if value is None:
        return DeadLetter("invalid", "empty message (no value)")
    try:
        event = CanonicalEvent.model_validate_json(value)
    except ValidationError as exc:
        return _classify(value, exc)
    return Decoded(from_canonical(event), event.source)


def _classify(value: bytes, exc: ValidationError) -> DeadLetter:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as err:
        return DeadLetter("not_utf8", f"not UTF-8 at byte {err.start}")
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError as err:
        return DeadLetter("not_json", f"not JSON: {err}")
    problems = "; ".join(f"{format_location(e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
    return DeadLetter("invalid", f"not a canonical event v1: {problems}")
