"""The canonical engagement event, schema version 1: one immutable fact.

Pure data: pydantic models and the rules that make an event valid. No I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import msgspec
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

SCHEMA_VERSION = 1
MAX_FINGERPRINT = (1 << 64) - 1


class EventType(StrEnum):
    JOIN = "join"
    LIKE = "like"
    SHARE = "share"
    COMMENT = "comment"


class ActorRole(StrEnum):
    MEMBER = "member"
    OWNER = "owner"
    MODERATOR = "moderator"
    BOT = "bot"


class JoinSource(StrEnum):
    INVITE = "invite"
    ORGANIC = "organic"
    PROMOTION = "promotion"
    IMPORT = "import"


Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Source = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$")]


class CanonicalEvent(BaseModel):
    """A join, like, share or comment: who, where, when, and its id.

    `event_id` is the idempotency key: the same id twice is the same fact.
    Comment text is never part of an event; only its 64-bit simhash
    (`content_fingerprint`) and how many links it carried (`link_count`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[1] = 1
    event_id: EventId
    type: EventType
    community_id: Id
    member_id: Id
    occurred_at: AwareDatetime
    source: Source
    actor_role: ActorRole = ActorRole.MEMBER
    target_id: Id | None = None
    target_author_id: Id | None = None
    join_source: JoinSource | None = None
    content_fingerprint: Annotated[int, Field(ge=0, le=MAX_FINGERPRINT)] | None = None
    link_count: Annotated[int, Field(ge=0, le=10_000)] = 0

    @model_validator(mode="after")
    def _fields_fit_the_type(self) -> CanonicalEvent:
        if self.type is EventType.JOIN:
            if self.join_source is None:
                raise ValueError("join_source is required for a join (invite, organic, promotion or import)")
        elif self.join_source is not None:
            raise ValueError(f"join_source is only allowed on joins, not on a {self.type.value}")
        if self.type is not EventType.COMMENT and (self.content_fingerprint is not None or self.link_count):
            raise ValueError("content_fingerprint and link_count are only allowed on comments")
        return self


class FieldError(BaseModel):
    """One violation: where (a dotted path such as `events[2].occurred_at`), what, and its kind."""

    model_config = ConfigDict(frozen=True)

    path: str
    message: str
    kind: str


def format_location(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """Turn pydantic's location tuple into `prefix[2].field.sub` form."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "$"


# --- The same contract for the worker's hot path ------------------------------------------
# msgspec validates ~10x faster than pydantic. `WireEvent` accepts a subset of what
# `CanonicalEvent` accepts (property-tested in tests/unit/test_decode_properties.py): a line it
# refuses goes to pydantic, which either accepts it (same values) or explains the refusal.
# Patterns end in \Z: Python's `$` would also match before a trailing newline.
_WireId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
# RFC 3339 with at most microseconds: exactly what datetime.fromisoformat and pydantic agree on.
WIRE_SOURCE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}\Z"
WIRE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\Z"


class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    """`CanonicalEvent` as msgspec sees it (field rules across fields are checked by the decoder)."""

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    type: Literal["join", "like", "share", "comment"]
    community_id: _WireId
    member_id: _WireId
    # WIRE_TIME_PATTERN is checked by the decoder as it reads the time (streams.decode.wire_time)
    occurred_at: str
    # WIRE_SOURCE_PATTERN is checked by the decoder, once per distinct source (there are few)
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    schema_version: Literal[1] = 1
    actor_role: Literal["member", "owner", "moderator", "bot"] = "member"
    target_id: _WireId | None = None
    target_author_id: _WireId | None = None
    join_source: Literal["invite", "organic", "promotion", "import"] | None = None
    content_fingerprint: Annotated[int, msgspec.Meta(ge=0)] | None = None  # <= MAX_FINGERPRINT: decoder
    link_count: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
