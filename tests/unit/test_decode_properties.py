"""msgspec accepts nothing that pydantic rejects, and yields the same values.

The worker's fast path (`WireEvent`, msgspec) and the gateway's model (`CanonicalEvent`,
pydantic) describe one contract. Whatever msgspec accepts must be accepted by pydantic
with an identical record; what msgspec refuses is decided by pydantic (tested elsewhere).
"""

from __future__ import annotations

import re
import struct
from datetime import datetime
from typing import Any

import msgspec
import orjson
from c_helpers import c_helper
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import MAX_FINGERPRINT, WIRE_TIME_PATTERN, CanonicalEvent, WireEvent
from streams import decode as decode_module
from streams import native
from streams.decode import Decoded, _record, decode, wire_time
from streams.event_record import JOIN_SOURCE_CODES, ROLE_CODES, TYPE_CODES, EventRecord, from_canonical

TIMES = st.one_of(
    st.sampled_from(
        [
            "2026-11-01T12:00:00Z",
            "2026-11-01T12:00:00.5Z",
            "2026-11-01T12:00:00.123456Z",
            "2026-11-01T12:00:00.1234567Z",
            "2026-11-01T12:00:00+05:30",
            "2026-11-01T12:00:00-00:00",
            "2026-11-01T12:00:00+0530",
            "2026-11-01 12:00:00Z",
            "2026-11-01t12:00:00z",
            "2026-11-01T12:00:00",
            "2026-11-01T23:59:60Z",
            "2026-02-30T12:00:00Z",
            "2026-13-01T12:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01",
            "1767225600",
            "",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.text(max_size=30),
)
IDS = st.one_of(
    st.text(max_size=3), st.text(min_size=120, max_size=260), st.sampled_from(["a", "m-1", " x ", "é", "a\n"])
)
SOURCES = st.one_of(
    st.sampled_from(["api", "slack", "a.b-c_d", "API", "api\n", "", "-x", "a" * 32, "a" * 33]), st.text(max_size=5)
)
INTS = st.one_of(
    st.integers(min_value=-2, max_value=12_000),
    st.integers(min_value=(1 << 64) - 3, max_value=(1 << 64) + 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
ENUMISH = st.sampled_from(
    ["join", "like", "share", "comment", "Like", "post", "member", "owner", "bot", "invite", "organic"]
)
OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "schema_version": st.one_of(st.just(1), st.just(2), st.just(1.0), st.just("1")),
    "actor_role": st.one_of(st.sampled_from(["member", "owner", "moderator", "bot"]), ENUMISH, st.none()),
    "target_id": st.one_of(IDS, st.none(), st.integers()),
    "target_author_id": st.one_of(IDS, st.none()),
    "join_source": st.one_of(st.sampled_from(["invite", "organic", "promotion", "import"]), ENUMISH, st.none()),
    "content_fingerprint": INTS,
    "link_count": INTS,
    "extra_field": st.integers(),
}


VALID_TIMES = st.one_of(
    st.sampled_from(["2026-11-01T12:00:00Z", "2026-11-01T12:00:00.123456Z", "2026-11-01T12:00:00+05:30"]),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["join", "like", "share", "comment"]))
    doc: dict[str, Any] = {
        "event_id": draw(st.text(min_size=1, max_size=128)),
        "type": kind,
        "community_id": draw(st.text(min_size=1, max_size=256)),
        "member_id": draw(st.text(min_size=1, max_size=30)),
        "occurred_at": draw(VALID_TIMES),
        "source": draw(st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,31}\Z")),
    }
    if kind == "join":
        doc["join_source"] = draw(st.sampled_from(["invite", "organic", "promotion", "import"]))
    if kind == "comment" and draw(st.booleans()):
        doc["content_fingerprint"] = draw(st.integers(0, (1 << 64) - 1))
        doc["link_count"] = draw(st.integers(0, 10_000))
    if draw(st.booleans()):
        doc["actor_role"] = draw(st.sampled_from(["member", "owner", "moderator", "bot"]))
    if kind in ("like", "share", "comment") and draw(st.booleans()):
        doc["target_id"] = draw(st.one_of(st.none(), st.text(min_size=1, max_size=20)))
        doc["target_author_id"] = draw(st.one_of(st.none(), st.text(min_size=1, max_size=20)))
    return doc


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with zero to two fields changed, added or removed in arbitrary ways."""
    doc = draw(valid_documents())
    anything: dict[str, st.SearchStrategy[Any]] = {
        "event_id": IDS,
        "type": ENUMISH,
        "community_id": IDS,
        "member_id": IDS,
        "occurred_at": TIMES,
        "source": SOURCES,
        **OPTIONAL,
    }
    for name in draw(st.lists(st.sampled_from(sorted(anything)), unique=True, max_size=2)):
        if draw(st.integers(0, 4)) == 0:
            doc.pop(name, None)
        else:
            doc[name] = draw(anything[name])
    return doc


def fast(value: bytes) -> Any:
    try:
        wire = msgspec.json.Decoder(WireEvent).decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return _record(wire), wire.source


@settings(max_examples=3000, deadline=None)
@given(documents())
def test_msgspec_accepts_a_subset_of_pydantic_with_equal_values(doc: dict[str, Any]) -> None:
    value = _dumps(doc)
    accepted = fast(value)
    if accepted is None or accepted[0] is None:
        return  # refused by the fast path: pydantic decides
    record, source = accepted
    event = CanonicalEvent.model_validate_json(value)  # raises if pydantic rejects what msgspec accepted
    assert from_canonical(event) == record
    assert event.source == source
    assert decode(value) == Decoded(record, source)


def _dumps(doc: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError:  # integers past 64 bits: the standard library writes them
        import json

        return json.dumps(doc).encode()


def test_the_generator_reaches_both_sides() -> None:
    """A property that never sees an accepted event proves nothing: the strategy must produce both."""
    seen = {True: 0, False: 0}

    @settings(max_examples=400, deadline=None)
    @given(documents())
    def probe(doc: dict[str, Any]) -> None:
        got = fast(_dumps(doc))
        seen[got is not None and got[0] is not None] += 1

    probe()
    assert seen[True] >= 40 and seen[False] >= 40, seen  # at least a tenth of the examples on each side


# --- the wire's event time, read without datetime on the hot path ------------------------

WIRE_TIME = re.compile(WIRE_TIME_PATTERN)
ZONES = st.sampled_from(["Z", "+00:00", "-00:00", "+05:30", "-09:59", "+23:59", "-23:59", "+24:00", "+05:60"])


@st.composite
def wire_times(draw: st.DrawFn) -> str:
    """Text of the wire's form, the fields anywhere in (and a little past) their ranges."""
    year = draw(st.integers(1, 9999))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    digits = draw(st.integers(0, 7))
    fraction = "." + draw(st.text("0123456789", min_size=digits, max_size=digits)) if digits else ""
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{draw(ZONES)}"


@st.composite
def near_wire_times(draw: st.DrawFn) -> str:
    """A wire time with a character replaced, inserted or removed (what a hand-written producer gets wrong)."""
    text = draw(wire_times())
    at = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(list("0123456789:-+.,TtZz W\uff12\u0663")))
    how = draw(st.integers(0, 2))
    if how == 0:
        return text[:at] + char + text[at + 1 :]
    if how == 1:
        return text[:at] + char + text[at:]
    return text[:at] + text[at + 1 :]


def _reference(text: str) -> float | None:
    """What the decoder did before: the pattern, then datetime."""
    if WIRE_TIME.search(text) is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError):
        return None


@settings(max_examples=5000, deadline=None)
@given(st.one_of(wire_times(), near_wire_times(), TIMES))
def test_wire_time_is_the_pattern_then_fromisoformat(text: str) -> None:
    got, want = wire_time(text), _reference(text)
    if want is None:
        assert got is None, text  # declined: the slow path (pydantic) accepts or explains
    else:
        assert got is not None and struct.pack("<d", got) == struct.pack("<d", want), text


def test_wire_time_reads_what_the_wire_carries() -> None:
    for text in ("2026-11-01T12:00:00Z", "2026-11-01T12:00:00.5Z", "2026-11-01T12:00:00.123456+05:30",
                 "2026-02-28T23:59:59.999999-09:00", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59.999999Z"):
        assert wire_time(text) == datetime.fromisoformat(text).timestamp(), text
    declined = [
        "2026-11-01T23:59:60Z",  # a leap second: datetime refuses it, pydantic explains
        "2026-02-30T12:00:00Z",
        "2026-11-01T24:00:00Z",
        "2026-11-01T12:00:00+24:00",
        "2026-11-01T12:00:00.1234567Z",
        "2026-11-01t12:00:00Z",
        "2026-11-01T12:00:00z",
        "2026-11-01T12:00:00",
        "2026-11-01T12:00:00+0530",
        "2026-11-01T1\uff12:00:00Z",  # a digit that is not ASCII
        "2026-11-01T12:00:00,5Z",
        "2026-11-01T12:00:00.Z",
        "2026-11-01T12:00:00+05:30:15",
        "2026-11-01T12:00Z",
    ]
    assert [t for t in declined if wire_time(t) is not None] == []


# --- the same two steps in C (streams/wire_record.c), where `make native` built them ------


def _c_twin() -> Any:
    """streams/wire_record.c, or None where the hot path runs as Python (then it is not used)."""
    return c_helper("streams._wire_record", decode_module._to_record is _record)


def test_the_decoder_uses_the_c_record_exactly_when_the_hot_path_is_compiled() -> None:
    assert (decode_module._to_record is not _record) == (native.mode == "compiled")


@settings(max_examples=3000, deadline=None)
@given(documents())
def test_the_c_record_is_the_python_record(doc: dict[str, Any]) -> None:
    twin = _c_twin()
    if twin is None:
        return
    try:
        wire = msgspec.json.Decoder(WireEvent).decode(_dumps(doc))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return
    got, want = twin.record(wire), _record(wire)
    assert got == want and type(got) is type(want)
    if want is not None:
        assert struct.pack("<d", got.ts) == struct.pack("<d", want.ts)


@settings(max_examples=5000, deadline=None)
@given(st.one_of(wire_times(), near_wire_times(), TIMES, st.text(max_size=40)))
def test_the_c_wire_time_is_the_python_wire_time(text: str) -> None:
    twin = _c_twin()
    if twin is None:
        return
    got, want = twin.wire_time(text), wire_time(text)
    assert (got is None) == (want is None), text
    if want is not None:
        assert struct.pack("<d", got) == struct.pack("<d", want), text


def test_the_c_wire_time_at_the_edges_of_what_it_reads_itself() -> None:
    twin = _c_twin()
    if twin is None:
        return
    edges = [
        "0001-01-01T00:00:00Z", "1685-01-01T00:00:00Z", "1684-12-31T23:59:59.999999Z",  # 2^53 us from 1970
        "2255-06-05T23:47:34.740991Z", "2255-06-05T23:47:34.740992Z", "9999-12-31T23:59:59.999999-23:59",
        "2000-02-29T12:00:00Z", "1900-02-29T12:00:00Z", "2024-02-29T00:00:00+00:60", "2026-01-01T00:00:00.0Z",
        "2026-12-31T23:59:59.9+23:59", "2026-12-31T23:59:59.99999-00:00", "1969-12-31T23:59:59.999999Z",
    ]
    for text in edges:
        got, want = twin.wire_time(text), wire_time(text)
        assert (got is None) == (want is None), text
        assert got is None or struct.pack("<d", got) == struct.pack("<d", want), text


def test_the_c_wire_time_reads_the_wire_itself_and_asks_python_only_off_its_subset() -> None:
    twin = _c_twin()
    if twin is None:
        return
    asked: list[str] = []

    def counting(text: str) -> float | None:
        asked.append(text)
        return wire_time(text)

    d = decode_module
    config = (EventRecord, d._good_source, d._SOURCES, TYPE_CODES, ROLE_CODES, JOIN_SOURCE_CODES, MAX_FINGERPRINT)
    twin.configure(*config, counting)
    try:
        read = ["2026-11-01T12:00:00Z", "2026-11-01T12:00:00.123+05:30", "1970-01-01T00:00:00-09:59"]
        assert [twin.wire_time(t) for t in read] == [wire_time(t) for t in read] and asked == []
        assert twin.wire_time("2026-11-01T12:00:00z") is None and asked == []  # not the wire's form at all
        off = ["2026-02-30T12:00:00Z", "2026-11-01T12:00:00+05:60", "1500-01-01T00:00:00Z", "2026-11-01T1\uff12:00:00Z"]
        assert [twin.wire_time(t) for t in off] == [wire_time(t) for t in off] and asked == off
    finally:
        twin.configure(*config, wire_time)
