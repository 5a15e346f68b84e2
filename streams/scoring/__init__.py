"""The pure scoring and tier core: forward-decayed scores, tiers and community rows (docs/scoring.md)."""

from streams.scoring.community import CommunityScorer
from streams.scoring.config import ScoringConfig
from streams.scoring.records import BatchOutcome, CommunityRow, MemberRow, TierChangeRecord
from streams.scoring.tiers import TIER_NAMES

__all__ = [
    "TIER_NAMES",
    "BatchOutcome",
    "CommunityRow",
    "CommunityScorer",
    "MemberRow",
    "ScoringConfig",
    "TierChangeRecord",
]
