"""What the scoring core hands back: tier changes, member and community rows, batch outcomes.

Plain NamedTuples of floats and strings (times are Unix seconds of event time), shaped
like the columns of engagement.tier_changes, member_state and community_state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streams.event_record import EventRecord


class TierChangeRecord(NamedTuple):
    """A member moved from one tier to another; scores are decayed at `at`."""

    community_id: str
    member_id: str
    from_tier: str
    to_tier: str
    at: float
    creation: float
    curation: float
    received: float


class MemberRow(NamedTuple):
    community_id: str
    member_id: str
    tier: str
    creation: float  # decayed at as_of
    curation: float
    received: float
    as_of: float  # the community clock
    first_seen: float
    last_active: float  # newest event the member performed; first_seen when they never acted
    events_counted: int  # scored events the member performed (joins included)
    join_source: str  # "" when no join was scored
    actor_role: str
    excluded: bool


class CommunityRow(NamedTuple):
    community_id: str
    as_of: float
    members: int  # eligible: not staff, not excluded
    lurkers: int  # lurkers + curators + creators + ambassadors == members
    curators: int
    creators: int  # creators that are not ambassadors
    ambassadors: int
    active_creators: int  # creators and ambassadors who commented within active_window of as_of
    top1_creation_share: float
    top20_creation_share: float
    flagged_members: int  # members excluded by set_excluded, staff or not


@dataclass(slots=True)
class BatchOutcome:
    tier_changes: list[TierChangeRecord] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # rows that changed beyond decay
    # the row index of most touched members (those the batch resolved): `member_columns` uses it
    touched_rows: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    duplicates: int = 0
    late: int = 0
    # the events scored (neither late nor duplicate), in order: what other cores may count
    accepted: list[EventRecord] = field(default_factory=list)
    # One row per event-time minute the clock was in during the batch, `as_of` = the minute's
    # start: the final row of each minute the clock left, then the provisional row of the
    # minute it is still in (a later batch's row for that minute replaces it). Empty when
    # nothing was scored.
    community_rows: list[CommunityRow] = field(default_factory=list)


@dataclass(slots=True)
class MemberColumns:
    """The rows of many members of one community as columns (what a batch stores).

    `tier` holds codes of `tiers.TIER_NAMES` (ambassador shown instead of creator), `role`
    of `event_record.ROLE_NAMES`, `join_source` of `event_record.JOIN_SOURCE_NAMES`; scores
    are decayed at `as_of` (the community clock) and `last_active` is `first_seen` for a
    member who never acted, as in `MemberRow`. `spam_status` (codes of
    `spam.flags.STATUSES`) is filled in by whoever knows the spam state.
    """

    community_id: str
    member_ids: list[str]
    tier: Any  # numpy arrays (`array`s in a block of a few members), one entry per member
    creation: Any
    curation: Any
    received: Any
    as_of: float
    first_seen: Any
    last_active: Any
    events_counted: Any
    join_source: Any
    actor_role: Any
    excluded: Any
    spam_status: Any = None

    def __len__(self) -> int:
        return len(self.member_ids)
