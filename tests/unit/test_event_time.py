"""Event-time bounds: from the floor to the clock plus the skew, and how far off anything else is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.event_time import (
    BEFORE_FLOOR,
    DEFAULT_FLOOR,
    FUTURE,
    check_event_time,
    event_time_label,
    parse_floor,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
FLOOR = parse_floor(DEFAULT_FLOOR)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_past_and_present_are_within_bounds() -> None:
    for t in (NOW, NOW - 86400 * 365 * 20, FLOOR, NOW + 300):
        assert check_event_time(t, NOW, 300, FLOOR) is None


def test_the_2099_like_is_refused_and_says_how_far_off() -> None:
    why = check_event_time(ts("2099-01-01T00:00:00+00:00"), NOW, 300, FLOOR)
    assert why is not None
    assert "2099-01-01T00:00:00+00:00" in why and "ahead of the clock" in why
    assert "26,328 days (72.1 years)" in why and "5 min" in why
    assert event_time_label(ts("2099-01-01T00:00:00+00:00"), NOW) == FUTURE


def test_just_past_the_skew_is_refused_in_seconds() -> None:
    why = check_event_time(NOW + 301, NOW, 300, FLOOR)
    assert why is not None and "5 min 1 s ahead" in why


def test_before_the_floor_is_refused() -> None:
    year_one = datetime(1, 1, 1, tzinfo=UTC).timestamp()
    why = check_event_time(year_one, NOW, 300, FLOOR)
    assert why is not None and "0001-01-01" in why and "before the earliest allowed event time 2000-01-01" in why
    assert event_time_label(year_one, NOW) == BEFORE_FLOOR
    assert check_event_time(FLOOR - 1, NOW, 300, FLOOR) is not None


def test_parse_floor() -> None:
    assert parse_floor("2000-01-01") == FLOOR
    assert parse_floor("2000-01-01T00:00:00Z") == FLOOR
    with pytest.raises(ValueError, match="not an ISO 8601 date"):
        parse_floor("last tuesday")
