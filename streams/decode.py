"""Bytes from Kafka to validated `EventRecord`s, or dead letters with the reason.

A message is an envelope of JSON Lines (streams/envelopes.py). Each line is validated
against the canonical event v1: msgspec (`WireEvent`) accepts on the hot path, and
only a line it refuses goes to the pydantic model the gateway uses, which either
accepts it (the same values) or says exactly why not. So the worker accepts what the
gateway would, and bytes written straight to the topic get no pass. A bad line is a
dead letter with its line number; the rest of the envelope is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

import msgspec
import orjson
from pydantic import ValidationError

from schemas.events import MAX_FINGERPRINT, WIRE_SOURCE_PATTERN, CanonicalEvent, WireEvent, format_location
from streams.envelopes import split_lines
from streams.event_record import JOIN_SOURCE_CODES, ROLE_CODES, TYPE_CODES, EventRecord, from_canonical, new_record
from streams.event_time import check_event_time, event_time_label
from streams.native import c_helper


class Decoded(NamedTuple):
    record: EventRecord
    source: str


class DeadLetter(NamedTuple):
    reason: str  # bounded: not_utf8, not_json, invalid, event_time_future, event_time_before_floor
    detail: str  # one line a person can act on


class TimeBounds(NamedTuple):
    """Event time the worker lets into state: not before `floor`, not past `now + skew_s`."""

    now: float
    skew_s: float
    floor: float


class DecodedBatch(NamedTuple):
    """One envelope's events in line order, and its dead letters."""

    records: list[EventRecord]
    sources: list[str]
    lines: list[int]
    dead: list[tuple[int, DeadLetter, bytes]]  # line, why, the line's bytes


_ONE = msgspec.json.Decoder(WireEvent)
_from_iso = datetime.fromisoformat
_source_ok = re.compile(WIRE_SOURCE_PATTERN).match
_SOURCES: dict[str, bool] = {}  # source -> matches the pattern (a few platforms: a small dict)
_SOURCES_MAX = 4096


def _good_source(source: str) -> bool:
    ok = _SOURCES.get(source)
    if ok is None:
        ok = _source_ok(source) is not None
        if len(_SOURCES) < _SOURCES_MAX:
            _SOURCES[source] = ok
    return ok


def wire_time(text: str) -> float | None:
    """`datetime.fromisoformat(text).timestamp()` for text of the wire's form
    (`WIRE_TIME_PATTERN`); None for anything else, left to the slow path.

    fromisoformat reads only ASCII digits, so with the separators where the form has them,
    a fraction of 1 to 6 digits and a zone, what it accepts is what the pattern allows (the
    property test holds the two to each other): a regex per event cost three times more."""
    n = len(text)
    if n < 20 or text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":" or text[16] != ":":
        return None
    if text[n - 1] == "Z":
        zone_at = n - 1
    elif text[n - 3] == ":" and (text[n - 6] == "+" or text[n - 6] == "-"):
        zone_at = n - 6
    else:
        return None
    if zone_at != 19 and (text[19] != "." or zone_at < 21 or zone_at > 26):
        return None
    try:
        return _from_iso(text).timestamp()
    except (ValueError, OverflowError):  # 23:59:60, February 30th, ...
        return None


def _record(w: WireEvent) -> EventRecord | None:
    """The record for a line msgspec accepted, or None when a cross-field rule fails."""
    kind = w.type
    if not _good_source(w.source):
        return None
    if w.content_fingerprint is not None and w.content_fingerprint > MAX_FINGERPRINT:
        return None
    if (w.join_source is None) == (kind == "join"):  # required on joins, refused elsewhere
        return None
    if kind != "comment" and (w.content_fingerprint is not None or w.link_count):
        return None
    ts = wire_time(w.occurred_at)
    if ts is None:  # 23:59:60, February 30th, a lowercase t, ...: pydantic accepts or explains
        return None
    return new_record(
        EventRecord,
        (
            w.event_id,
            TYPE_CODES[kind],
            w.community_id,
            w.member_id,
            ts,
            ROLE_CODES[w.actor_role],
            w.target_id,
            w.target_author_id,
            JOIN_SOURCE_CODES[w.join_source],
            w.content_fingerprint,
            w.link_count,
        ),
    )


ToRecord = Callable[[WireEvent], "EventRecord | None"]


def _load_c_record() -> ToRecord:
    """`_record` in C (streams/wire_record.c) when it is built and current (streams/native.py),
    else `_record` itself: the same records either way (tests/unit/test_decode_properties.py)."""
    module = c_helper("streams._wire_record")
    if module is None:
        return _record
    module.configure(
        EventRecord, _good_source, _SOURCES, TYPE_CODES, ROLE_CODES, JOIN_SOURCE_CODES, MAX_FINGERPRINT, wire_time
    )
    to_record: ToRecord = module.record
    return to_record


_to_record = _load_c_record()


def decode(value: bytes | None) -> Decoded | DeadLetter:
    """One canonical event (one line)."""
    if value is None:
        return DeadLetter("invalid", "empty message (no value)")
    try:
        wire = _ONE.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError):
        wire = None
    if wire is not None:
        rec = _to_record(wire)
        if rec is not None:
            return Decoded(rec, wire.source)
    return _slow(value)


def _slow(value: bytes) -> Decoded | DeadLetter:
    try:
        event = CanonicalEvent.model_validate_json(value)
    except ValidationError as exc:
        return _classify(value, exc)
    return Decoded(from_canonical(event), event.source)


def check_time(ts: float, bounds: TimeBounds) -> DeadLetter | None:
    why = check_event_time(ts, bounds.now, bounds.skew_s, bounds.floor)
    if why is None:
        return None
    return DeadLetter(f"event_time_{event_time_label(ts, bounds.now)}", f"occurred_at {why}")


def decode_envelope(value: bytes | None, bounds: TimeBounds | None = None) -> DecodedBatch:
    """Every line of one message; with `bounds`, events outside them are dead letters too."""
    out = DecodedBatch([], [], [], [])
    if value is None:
        out.dead.append((0, DeadLetter("invalid", "empty message (no value)"), b""))
        return out
    lines = split_lines(value)
    records, sources, line_nos = out.records, out.sources, out.lines
    to_record = _to_record
    # check_time's bounds, worked out once: only an event outside them pays for the call
    latest, floor = (bounds.now + bounds.skew_s, bounds.floor) if bounds is not None else (0.0, 0.0)
    for i, line in enumerate(lines):  # line by line: lines joined into one document could parse as other events
        try:
            wire = _ONE.decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError):
            wire = None
        rec = to_record(wire) if wire is not None else None
        if rec is None or wire is None:  # refused by the fast path: pydantic accepts or explains
            slow = _slow(line)
            if isinstance(slow, DeadLetter):
                out.dead.append((i, slow, line))
                continue
            rec, source = slow
        else:
            source = wire.source
        if bounds is not None and (rec.ts > latest or rec.ts < floor):
            refused = check_time(rec.ts, bounds)
            if refused is not None:
                out.dead.append((i, refused, line))
                continue
        records.append(rec)
        sources.append(source)
        line_nos.append(i)
    return out


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
