"""Schemathesis hooks for test_openapi_fuzz.py (loaded by path through SCHEMATHESIS_HOOKS).

The gateway refuses an event time beyond its clock plus the allowed skew, a bound that moves
with the clock and so cannot be written in a JSON Schema. Generated bodies keep their shape,
but a valid date-time outside the bounds is moved to 2024 (a leap year, so every month and
day stays valid); anything that is not a valid aware date-time is left for the fuzzer to try.
test_access.py checks the refusals themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

TIME_FIELDS = ("occurred_at", "decided_at")
FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


def _in_bounds(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None or FLOOR <= parsed <= datetime.now(UTC) + timedelta(minutes=4):
        return value
    return "2024" + value[4:] if value[:4].isdigit() else value


def _fix(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: _in_bounds(v) if k in TIME_FIELDS and isinstance(v, str) else v for k, v in item.items()}
    if isinstance(item, list):
        return [_fix(x) for x in item]
    return item


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    return _fix(body)
