"""Forget requests: a member asks to be forgotten (GDPR Art. 17, a platform's deletion webhook).

An erasure is itself an event, on the compacted topic `engagement.erasures` keyed by
`community|member_key`. The durable record never holds the member id: `member_key`
is a one-way hash of (community, member id), the same in Python and in ClickHouse
SQL (`MEMBER_KEY_SQL`), so rows are matched without storing whom they belonged to.
With pseudonymization on, the id hashed is already the HMAC pseudonym; the raw
platform id never reaches this record.

An erasure of community `C` covers `C` and every community under it (`C/…`: Slack
channels, Discourse categories, GitHub repositories of an organization). Every event
of the member that happened at or before `erased_at` is forgotten; events after it
are a new member, who starts fresh.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.events import Id

MEMBER_KEY_PREFIX = "engage.erasure.v1|"
MEMBER_KEY_HEX = 32  # 128 bits of SHA-256


def member_key(community_id: str, member_id: str) -> str:
    """The one-way key of a member on the erasures topic and in the audit table; `community_id` is
    the erasure's community (for an event of `C/x` forgotten by an erasure of `C`, it is `C`)."""
    digest = hashlib.sha256(f"{MEMBER_KEY_PREFIX}{community_id}|{member_id}".encode()).hexdigest()
    return digest[:MEMBER_KEY_HEX]


def member_key_sql(community: str, member_column: str) -> str:
    """The same key as a ClickHouse expression; `community` is an SQL expression or a bound parameter
    (the erasure's own community, also for rows of communities under it)."""
    return (
        f"lower(left(hex(SHA256(concat('{MEMBER_KEY_PREFIX}', {community}, '|', {member_column}))), {MEMBER_KEY_HEX}))"
    )


def covers(erased_community: str, community_id: str) -> bool:
    """Whether an erasure of `erased_community` applies to `community_id` (itself or under it)."""
    return community_id == erased_community or community_id.startswith(erased_community + "/")


def base_communities(community_id: str) -> list[str]:
    """`a/b/c` -> [`a/b/c`, `a/b`, `a`]: every community whose erasure covers this one."""
    parts = community_id.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


Source = Literal["cli", "api", "webhook:slack", "webhook:discourse", "webhook:github", "webhook:bettermode"]
SOURCES: tuple[str, ...] = Source.__args__  # type: ignore[attr-defined]


class ErasureRequest(BaseModel):
    """`POST /v1/erasures` and `engage forget`: forget `member_id` (as stored) in `community_id`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    community_id: Id
    member_id: Id = Field(description="The member id as the pipeline stores it (the pseudonym when on).")
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
    requested_by: Annotated[str, StringConstraints(min_length=1, max_length=256)] = "operator"
    erased_at: AwareDatetime | None = Field(
        default=None, description="Events at or before this time are forgotten; default: when received."
    )


class ErasureRecord(BaseModel):
    """The record on `engagement.erasures` and in `engagement.erasures` (ClickHouse): no member id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    erasure_id: str
    community_id: Id
    member_key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    erased_at: AwareDatetime
    requested_by: str
    reason: str = ""
    source: Source = "api"

    @property
    def topic_key(self) -> bytes:
        return f"{self.community_id}|{self.member_key}".encode()


def record_for(request: ErasureRequest, source: Source, now: datetime) -> ErasureRecord:
    """The record of a request; the same request at the same `erased_at` has the same id."""
    key = member_key(request.community_id, request.member_id)
    erased_at = request.erased_at or now
    ident = hashlib.sha256(f"{request.community_id}|{key}|{erased_at.isoformat()}".encode()).hexdigest()[:32]
    return ErasureRecord(
        erasure_id=ident,
        community_id=request.community_id,
        member_key=key,
        erased_at=erased_at,
        requested_by=request.requested_by,
        reason=request.reason,
        source=source,
    )
