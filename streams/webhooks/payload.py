"""Reading platform payloads: decode the body, then pull typed fields with a path for every failure.

A required field that is absent (missing, null or empty) raises `MappingError(path,
missing=True)`: a shape of the platform's payload the adapter cannot map, answered
200, ignored and counted by path (the platform would only retry a 4xx). A field that
is there but out of shape (wrong type, a date that does not parse) raises
`MappingError(path)`, which becomes `Rejected(422, "invalid", path)`. Paths are dotted
from the payload root (`event.item.ts`), always spelled in the adapters' code (so they
are bounded metric labels); header fields read as `headers.x-github-delivery`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs

import orjson

JsonObject = Mapping[str, object]


class MappingError(Exception):
    """A required field is absent (`missing`) or has the wrong type."""

    def __init__(self, path: str, message: str, missing: bool = False) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
        self.missing = missing


def _absent(value: object) -> bool:
    return value is None or value == ""


@contextmanager
def handshake_fields() -> Iterator[None]:
    """A handshake without its challenge cannot be answered at all: malformed (422), never ignored."""
    try:
        yield
    except MappingError as exc:
        exc.missing = False
        raise


def decode_body(body: bytes) -> JsonObject | None:
    """The JSON object in `body`, or in a form field `payload=` (GitHub form deliveries); else None."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
        if body.startswith(b"payload="):
            try:
                fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
                value = orjson.loads(fields["payload"][0])
            except (UnicodeDecodeError, ValueError, KeyError):
                value = None
    return value if isinstance(value, dict) else None


def child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def obj(parent: JsonObject, key: str, path: str = "") -> JsonObject:
    value = parent.get(key)
    if not isinstance(value, dict):
        if _absent(value):
            raise MappingError(child(path, key), "required object is missing", missing=True)
        raise MappingError(child(path, key), "not an object")
    return value


def opt_obj(parent: JsonObject, key: str) -> JsonObject | None:
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def text(parent: JsonObject, key: str, path: str = "") -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        if _absent(value):
            raise MappingError(child(path, key), "required non-empty string is missing", missing=True)
        raise MappingError(child(path, key), "not a string")
    return value


def opt_text(parent: JsonObject, key: str) -> str | None:
    value = parent.get(key)
    return value if isinstance(value, str) and value else None


def ident(parent: JsonObject, key: str, path: str = "") -> str:
    """An id that platforms send as a string or an integer, as a string."""
    value = opt_ident(parent, key)
    if value is None:
        if _absent(parent.get(key)):
            raise MappingError(child(path, key), "required id (string or integer) is missing", missing=True)
        raise MappingError(child(path, key), "not an id (string or integer)")
    return value


def opt_ident(parent: JsonObject, key: str) -> str | None:
    value = parent.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def opt_str(parent: JsonObject, key: str, path: str = "") -> str | None:
    """An optional string as sent (None when absent or null); any other type is out of shape."""
    value = parent.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MappingError(child(path, key), "not a string")


def opt_int(parent: JsonObject, key: str) -> int | None:
    value = parent.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def epoch_seconds(raw: str, path: str) -> datetime:
    """A Unix time in seconds, possibly fractional (`"1355517523.000005"`), as an aware UTC datetime.

    Parsed as a decimal, not a float, so Slack's microsecond `ts` survives exactly.
    """
    try:
        seconds = Decimal(raw.strip())
    except InvalidOperation:
        raise MappingError(path, "not a Unix time in seconds") from None
    if not seconds.is_finite() or not 0 < seconds < 32503680000:  # before year 3000
        raise MappingError(path, "Unix time out of range")
    whole = int(seconds)
    micros = int((seconds - whole) * 1_000_000)
    return datetime.fromtimestamp(whole, tz=UTC) + timedelta(microseconds=micros)


def iso_time(parent: JsonObject, key: str, path: str = "") -> datetime:
    """An ISO 8601 timestamp (`2021-12-20T04:23:32.223Z`); one without an offset is taken as UTC."""
    raw = text(parent, key, path)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise MappingError(child(path, key), "not an ISO 8601 timestamp") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def opt_iso_time(parent: JsonObject, key: str, path: str = "") -> datetime | None:
    return iso_time(parent, key, path) if parent.get(key) is not None else None
