"""A spam flag as the detector emits it, and the bounded names of its reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.outputs import SpamFlag, SpamStatus

# Signal indices and their reason names (a bounded label set for metrics and ClickHouse).
BURST_COMMENTS, BURST_LIKES, DUPLICATE_CONTENT, LINK_HEAVY_NEWCOMER, FIRST_DAY_VELOCITY = range(5)
REASONS: tuple[str, ...] = (
    "burst_comments",
    "burst_likes",
    "duplicate_content",
    "link_heavy_newcomer",
    "first_day_velocity",
)

STATUS_NONE, STATUS_FLAGGED, STATUS_CONFIRMED, STATUS_CLEARED = "none", "flagged", "confirmed", "cleared"
STATUS_REVIEW = "review"  # weak evidence: a moderator should look; the member still counts in the scores
STATUS_DISMISSED = "dismissed"  # a review a moderator cleared: never was a spam flag
STATUSES: tuple[str, ...] = (
    STATUS_NONE, STATUS_FLAGGED, STATUS_CONFIRMED, STATUS_CLEARED, STATUS_REVIEW, STATUS_DISMISSED
)


@dataclass(frozen=True, slots=True)
class FlagRecord:
    """One revision of a member's spam flag.

    `flagged_at` and `event_id` are those of the event that tipped the score; a
    moderation decision keeps them and sets `status`, `decided_by`, `decided_at`.
    `version` grows with every revision of the member's flags (ReplacingMergeTree version).
    """

    community_id: str
    member_id: str
    flagged_at: float  # Unix seconds, event time
    score: float
    reasons: tuple[str, ...]
    status: str  # review | dismissed | flagged | confirmed | cleared
    event_id: str  # "" for a member a moderator confirmed without a flag
    decided_by: str = ""
    decided_at: float | None = None
    version: int = 1

    def to_spam_flag(self) -> SpamFlag:
        """This revision as it travels on `engagement.spam-flags` (validated by the model)."""
        return SpamFlag(
            community_id=self.community_id,
            member_id=self.member_id,
            flagged_at=datetime.fromtimestamp(self.flagged_at, UTC),
            score=self.score,
            reasons=list(self.reasons),
            status=SpamStatus(self.status),
            event_id=self.event_id,
            decided_by=self.decided_by,
            decided_at=None if self.decided_at is None else datetime.fromtimestamp(self.decided_at, UTC),
            version=self.version,
        )

    def to_json(self) -> dict[str, Any]:
        """The detector's snapshot form (plain floats); the wire form is `to_spam_flag`."""
        return {
            "community_id": self.community_id,
            "member_id": self.member_id,
            "flagged_at": self.flagged_at,
            "score": self.score,
            "reasons": list(self.reasons),
            "status": self.status,
            "event_id": self.event_id,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FlagRecord:
        return cls(
            community_id=data["community_id"],
            member_id=data["member_id"],
            flagged_at=float(data["flagged_at"]),
            score=float(data["score"]),
            reasons=tuple(data["reasons"]),
            status=data["status"],
            event_id=data["event_id"],
            decided_by=data.get("decided_by", ""),
            decided_at=data.get("decided_at"),
            version=int(data.get("version", 1)),
        )
