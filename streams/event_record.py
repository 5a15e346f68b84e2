"""The worker's compact, validated view of one canonical event.

The scoring and spam cores take `EventRecord`s: a NamedTuple of plain values
(times as float Unix seconds) so the hot path touches no pydantic objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from schemas.events import CanonicalEvent

_Record = TypeVar("_Record", bound=tuple[Any, ...])

if TYPE_CHECKING:

    def new_record(cls: type[_Record], fields: tuple[Any, ...], /) -> _Record:
        """A record from all its fields in order (not checked: the scorer's hot path builds them)."""

else:
    # tuple.__new__ itself: a NamedTuple's constructor is a Python function around it (twice the cost)
    new_record = tuple.__new__

# Small integer codes keep per-member state compact. The one home of these codes: the
# decoder, the cores, the row builders and the simulator all import them from here.
JOIN, LIKE, SHARE, COMMENT = 0, 1, 2, 3
MEMBER, OWNER, MODERATOR, BOT = 0, 1, 2, 3
NO_SOURCE, INVITE, ORGANIC, PROMOTION, IMPORT = 0, 1, 2, 3, 4  # NO_SOURCE: not a join

TYPE_CODES = {"join": JOIN, "like": LIKE, "share": SHARE, "comment": COMMENT}
ROLE_CODES = {"member": MEMBER, "owner": OWNER, "moderator": MODERATOR, "bot": BOT}
JOIN_SOURCE_CODES = {None: NO_SOURCE, "invite": INVITE, "organic": ORGANIC, "promotion": PROMOTION, "import": IMPORT}
TYPE_NAMES = {v: k for k, v in TYPE_CODES.items()}
ROLE_NAMES = {v: k for k, v in ROLE_CODES.items()}
JOIN_SOURCE_NAMES = {v: (k or "") for k, v in JOIN_SOURCE_CODES.items()}


class EventRecord(NamedTuple):
    event_id: str
    type: int  # TYPE_CODES
    community_id: str
    member_id: str
    ts: float  # occurred_at, Unix seconds (event time)
    role: int  # ROLE_CODES
    target_id: str | None
    target_author_id: str | None
    join_source: int  # JOIN_SOURCE_CODES, 0 when not a join
    fingerprint: int | None  # 64-bit simhash of a comment's text
    link_count: int


def from_canonical(event: CanonicalEvent) -> EventRecord:
    """The record for a validated canonical event."""
    return EventRecord(
        event.event_id,
        TYPE_CODES[event.type.value],
        event.community_id,
        event.member_id,
        event.occurred_at.timestamp(),
        ROLE_CODES[event.actor_role.value],
        event.target_id,
        event.target_author_id,
        JOIN_SOURCE_CODES[event.join_source.value if event.join_source else None],
        event.content_fingerprint,
        event.link_count,
    )


def is_staff(role: int) -> bool:
    """Owners, moderators and bots are tracked but left out of ranks and counts."""
    return role != MEMBER
