"""The canonical event, schema v1: what is accepted, and how violations are reported."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import MAX_FINGERPRINT, CanonicalEvent, format_location


def raw(**overrides: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "event_id": "ev-1",
        "type": "comment",
        "community_id": "c-1",
        "member_id": "m-1",
        "occurred_at": "2026-11-01T12:00:00Z",
        "source": "slack",
        "content_fingerprint": 123,
        "link_count": 1,
    }
    e.update(overrides)
    return {k: v for k, v in e.items() if v is not None}


def parse(e: dict[str, Any]) -> CanonicalEvent:
    return CanonicalEvent.model_validate_json(json.dumps(e))


def paths(e: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as info:
        parse(e)
    return {format_location(tuple(err["loc"])) for err in info.value.errors()}


def test_valid_comment_round_trips() -> None:
    ev = parse(raw())
    assert ev.actor_role.value == "member"
    assert ev.occurred_at.utcoffset() is not None
    assert parse(json.loads(ev.model_dump_json())) == ev


def test_naive_timestamp_is_rejected() -> None:
    assert paths(raw(occurred_at="2026-11-01T12:00:00")) == {"occurred_at"}


def test_offset_timestamps_are_accepted_and_compared_in_utc() -> None:
    a = parse(raw(occurred_at="2026-11-01T12:00:00+02:00"))
    b = parse(raw(occurred_at="2026-11-01T10:00:00Z"))
    assert a.occurred_at == b.occurred_at


def test_unknown_field_is_rejected_with_its_path() -> None:
    assert paths(raw(text="hello")) == {"text"}


def test_every_violation_is_reported() -> None:
    assert paths(raw(event_id="", type="poke", member_id=None)) == {"event_id", "type", "member_id"}


@pytest.mark.parametrize("n", [1, 128])
def test_event_id_length_bounds_accept(n: int) -> None:
    assert parse(raw(event_id="x" * n)).event_id == "x" * n


def test_event_id_over_128_is_rejected() -> None:
    assert paths(raw(event_id="x" * 129)) == {"event_id"}


def test_join_requires_join_source() -> None:
    with pytest.raises(ValidationError, match="join_source is required"):
        parse(raw(type="join", content_fingerprint=None, link_count=None))
    ev = parse(raw(type="join", join_source="promotion", content_fingerprint=None, link_count=None))
    assert ev.join_source is not None and ev.join_source.value == "promotion"


def test_join_source_only_on_joins() -> None:
    with pytest.raises(ValidationError, match="only allowed on joins"):
        parse(raw(join_source="invite"))


def test_fingerprint_only_on_comments_and_within_64_bits() -> None:
    with pytest.raises(ValidationError, match="only allowed on comments"):
        parse(raw(type="like"))
    assert parse(raw(content_fingerprint=MAX_FINGERPRINT)).content_fingerprint == MAX_FINGERPRINT
    assert paths(raw(content_fingerprint=MAX_FINGERPRINT + 1)) == {"content_fingerprint"}
    assert paths(raw(link_count=-1)) == {"link_count"}


def test_strict_types_no_coercion() -> None:
    assert paths(raw(link_count="3")) == {"link_count"}
    assert paths(raw(event_id=42)) == {"event_id"}


def test_actor_roles() -> None:
    assert parse(raw(actor_role="owner")).actor_role.value == "owner"
    assert paths(raw(actor_role="admin")) == {"actor_role"}


def test_format_location_for_arrays() -> None:
    assert format_location((3, "occurred_at")) == "[3].occurred_at"
    assert format_location(("a", 0, "b"), "events") == "events.a[0].b"
    assert format_location(()) == "$"
