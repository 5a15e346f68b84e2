"""Every documented payload in tests/fixtures/webhooks maps to exactly the events it should."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from webhook_deliveries import NOW, Fixture, all_fixtures, deliver, sentences

from schemas.events import CanonicalEvent
from streams.webhooks import PLATFORMS, Accepted, Handshake, Ignored

FIXTURES = all_fixtures()
ACCEPTED = [f for f in FIXTURES if f.expect["result"] == "accepted"]
NOW_DT = datetime.fromtimestamp(NOW, tz=UTC)


def _expected_value(field: str, value: object) -> object:
    if field == "occurred_at" and isinstance(value, str):
        return NOW_DT if value == "@now" else datetime.fromisoformat(value)
    return value


def test_every_platform_has_fixtures_of_each_outcome() -> None:
    for platform in PLATFORMS:
        outcomes = {f.expect["result"] for f in FIXTURES if f.platform == platform}
        assert outcomes == {"accepted", "ignored", "handshake"}, platform


@pytest.mark.parametrize("f", FIXTURES, ids=lambda f: f.id)
def test_fixture_maps_as_expected(f: Fixture) -> None:
    result = deliver(f)
    expect = f.expect
    if expect["result"] == "handshake":
        assert result == Handshake(expect["status"], expect["body"].encode(), expect["content_type"])
    elif expect["result"] == "ignored":
        assert isinstance(result, Ignored), result
        assert result.reason
        assert result.unmapped == expect.get("unmapped"), f"{f.id}: unmapped"
    else:
        assert isinstance(result, Accepted), result
        assert len(result.events) == len(expect["events"])
        for event, wanted in zip(result.events, expect["events"], strict=True):
            for name, value in wanted.items():
                if name == "has_fingerprint":
                    assert (event.content_fingerprint is not None) is value, f"{f.id}: fingerprint"
                else:
                    assert getattr(event, name) == _expected_value(name, value), f"{f.id}: {name}"


@pytest.mark.parametrize("f", ACCEPTED, ids=lambda f: f.id)
def test_events_are_valid_canonical_events_from_the_platform(f: Fixture) -> None:
    result = deliver(f)
    assert isinstance(result, Accepted)
    for event in result.events:
        assert event.source == f.platform
        assert event.event_id.startswith(f"{f.platform}:")
        assert CanonicalEvent.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize("f", ACCEPTED, ids=lambda f: f.id)
def test_a_redelivery_maps_to_the_same_event_ids(f: Fixture) -> None:
    first = deliver(f, sent_at=NOW - 30)
    # A retry: signed again later, and Discourse gives every attempt a new X-Discourse-Event-Id.
    headers = dict(f.headers)
    if "X-Discourse-Event-Id" in headers:
        headers["X-Discourse-Event-Id"] = headers["X-Discourse-Event-Id"] + "9"
    again = deliver(f, headers=headers, now=NOW + 60, sent_at=NOW + 60)
    assert isinstance(first, Accepted) and isinstance(again, Accepted)
    assert [e.event_id for e in first.events] == [e.event_id for e in again.events]
    assert [e.community_id for e in first.events] == [e.community_id for e in again.events]
    assert len({e.event_id for e in first.events}) == len(first.events)


@pytest.mark.parametrize("f", ACCEPTED, ids=lambda f: f.id)
def test_written_text_never_leaves_the_adapter(f: Fixture) -> None:
    result = deliver(f)
    assert isinstance(result, Accepted)
    dumped = json.dumps([json.loads(e.model_dump_json()) for e in result.events])
    written = [s for s in sentences(f.payload) if not s.startswith(("http", "/"))]
    for text in written:
        assert text not in dumped
        assert json.dumps(text)[1:-1] not in dumped


def test_comment_fixtures_carry_text_that_the_leak_check_would_see() -> None:
    # Guard for the test above: it only means something if comment payloads hold sentences.
    comments = [f for f in ACCEPTED if any(e.get("type") == "comment" for e in f.expect["events"])]
    assert len(comments) >= 10
    assert all(sentences(f.payload) for f in comments)
