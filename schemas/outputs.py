"""Facts the pipeline derives or receives besides engagement events.

Tier transitions and spam flags are written by the worker; moderation
decisions come from people through the gateway. Pure data, no I/O.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.events import Id


class Tier(StrEnum):
    LURKER = "lurker"
    CURATOR = "curator"
    CREATOR = "creator"
    AMBASSADOR = "ambassador"


class TierChange(BaseModel):
    """One member moved from one tier to another at a point of event time.

    The record on `engagement.tier-changes` (key: the community id), at least once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    community_id: str
    member_id: str
    from_tier: Tier
    to_tier: Tier
    at: AwareDatetime = Field(description="Event time of the transition (the community clock).")
    creation: float = Field(description="Creation score, decayed to `at`.")
    curation: float = Field(description="Curation score, decayed to `at`.")
    received: float = Field(description="Engagement the member's content received, decayed to `at`.")


class SpamStatus(StrEnum):
    NONE = "none"
    FLAGGED = "flagged"
    CONFIRMED = "confirmed"
    CLEARED = "cleared"
    REVIEW = "review"  # weak evidence waiting for a moderator; not excluded from the scores
    DISMISSED = "dismissed"  # a review a moderator cleared


class SpamFlag(BaseModel):
    """The pipeline's judgement that a profile behaves like spam, with its reasons.

    The record on `engagement.spam-flags` (key: the community id), at least once: a new
    flag, and every revision a moderator's decision makes of it (a higher `version`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    community_id: str
    member_id: str
    flagged_at: AwareDatetime = Field(description="Event time of the event that tipped the score.")
    score: float = Field(description="The spam score that crossed the threshold.")
    reasons: list[str] = Field(description="Why: burst_comments, burst_likes, duplicate_content, ...")
    status: SpamStatus
    event_id: str = Field(description="The event that tipped the score; empty when a moderator confirmed unflagged.")
    decided_by: str = Field(default="", description="The moderator who decided; empty before a decision.")
    decided_at: AwareDatetime | None = Field(default=None, description="When the moderator decided.")
    version: int = Field(default=1, ge=1, description="Revision of the member's flags; the highest wins.")


class ModerationAction(StrEnum):
    CONFIRM = "confirm"
    CLEAR = "clear"


class ModerationDecision(BaseModel):
    """A person's decision on a spam flag: itself an event, replayed like any other."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    community_id: Id
    member_id: Id
    action: ModerationAction
    moderator: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="Who decided: the gateway records the API token's name."
    )
    reason: Annotated[str, StringConstraints(max_length=2000)] = ""
    decided_at: AwareDatetime
    decision_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="Idempotency key; the gateway assigns one when absent."
    )

    def key(self) -> str:
        """The decision's id: its own, or one derived from what it says (the same decision, the same id)."""
        if self.decision_id:
            return self.decision_id
        said = "|".join(
            [self.community_id, self.member_id, self.action.value, self.moderator, self.decided_at.isoformat()]
        )
        return hashlib.sha256(said.encode()).hexdigest()[:32]

    def keyed(self) -> ModerationDecision:
        """This decision with its `decision_id` set (see `key`)."""
        return self if self.decision_id else self.model_copy(update={"decision_id": self.key()})
