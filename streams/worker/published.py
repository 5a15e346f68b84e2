"""What the worker publishes downstream, each record built from and validated against its model.

`engagement.tier-changes` carries `schemas.outputs.TierChange`, `engagement.spam-flags`
carries `schemas.outputs.SpamFlag` (docs/topics.md is generated from those models). The
cores hand back plain records (floats of Unix seconds); this is where they become the wire's
records, so a record the model would refuse fails here rather than downstream.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.outputs import Tier, TierChange
from streams.scoring import TierChangeRecord
from streams.spam.flags import FlagRecord


def tier_change(t: TierChangeRecord) -> TierChange:
    return TierChange(
        community_id=t.community_id,
        member_id=t.member_id,
        from_tier=Tier(t.from_tier),
        to_tier=Tier(t.to_tier),
        at=datetime.fromtimestamp(t.at, UTC),
        creation=t.creation,
        curation=t.curation,
        received=t.received,
    )


def tier_change_value(t: TierChangeRecord) -> bytes:
    """The message value on `engagement.tier-changes` (its key is the community id)."""
    return tier_change(t).model_dump_json().encode()


def spam_flag_value(f: FlagRecord) -> bytes:
    """The message value on `engagement.spam-flags` (its key is the community id)."""
    return f.to_spam_flag().model_dump_json().encode()
