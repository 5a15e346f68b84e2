"""Is an event's `occurred_at` believable? A pure check shared by the gateway and the worker.

One event from the far future would move a community's clock there for good (every score
decays to nothing and the clock never goes back), and a date before any platform existed is
a bug or a forgery. So an event time must lie between a floor and the checker's own clock plus
an allowed skew. Old events (replays of a log) are always within bounds.
"""

from __future__ import annotations

from datetime import UTC, datetime

DEFAULT_MAX_SKEW_SECONDS = 300.0
DEFAULT_FLOOR = "2000-01-01T00:00:00+00:00"
FUTURE = "future"  # metric label: ahead of the clock by more than the skew
BEFORE_FLOOR = "before_floor"  # metric label: earlier than the floor


def parse_floor(text: str) -> float:
    """The floor as epoch seconds, from an ISO 8601 date or date-time (UTC when no zone is given)."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"event time floor {text!r} is not an ISO 8601 date, e.g. 2000-01-01") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _span(seconds: float) -> str:
    """A duration a person can read: '42 s', '5 min 1 s', '3.5 h', '26,694 days (73.1 years)'."""
    s = abs(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        minutes, rest = divmod(round(s), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    days = s / 86400
    return f"{days:,.0f} days ({days / 365.25:.1f} years)" if days >= 365 else f"{days:,.0f} days"


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{ts:.0f} (epoch seconds)"


def check_event_time(ts: float, now: float, skew_s: float, floor_ts: float) -> str | None:
    """None when `floor_ts <= ts <= now + skew_s`; otherwise why not, with how far off it is.

    All arguments are epoch seconds. The caller labels a refusal `FUTURE` when `ts > now`,
    `BEFORE_FLOOR` otherwise (see `event_time_label`).
    """
    if ts > now + skew_s:
        return (
            f"{_iso(ts)} is {_span(ts - now)} ahead of the clock here; at most {_span(skew_s)} ahead "
            "is allowed: check the sender's clock (NTP)"
        )
    if ts < floor_ts:
        return f"{_iso(ts)} is {_span(floor_ts - ts)} before the earliest allowed event time {_iso(floor_ts)}"
    return None


def event_time_label(ts: float, now: float) -> str:
    """The bounded metric label of a refused event time."""
    return FUTURE if ts > now else BEFORE_FLOOR
