"""The participation tier rules: lurker, curator, creator, ambassador (docs/scoring.md).

Pure functions of scores and the previous tier; the scorer decides *when* to apply them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from schemas.outputs import Tier
from streams.scoring.config import ScoringConfig

# Base tiers are what the per-event rules produce; AMBASSADOR is only ever a
# creator in the community's top k, judged at every event too.
LURKER, CURATOR, CREATOR, AMBASSADOR = 0, 1, 2, 3
TIER_NAMES: tuple[str, ...] = tuple(tier.value for tier in Tier)  # in code order: Tier is the home
TIER_CODES = {name: code for code, name in enumerate(TIER_NAMES)}


# Scores are compared with thresholds to within this relative tolerance, so that float
# rounding cannot decide a tier: 3 * g(t - L) * g(L - t) may come out one ulp under 3.
TOLERANCE = 1e-9


def at_least(threshold: float) -> float:
    """The smallest score that counts as reaching `threshold`."""
    return threshold * (1.0 - TOLERANCE)


class TierRule(NamedTuple):
    """The four smallest scores that count as reaching each threshold (`at_least`), worked out once."""

    creator: float  # promotion to creator
    creator_floor: float  # a creator stays one down to here (low water)
    curator: float
    curator_floor: float

    @classmethod
    def of(cls, config: ScoringConfig) -> TierRule:
        return cls(
            at_least(config.creator_threshold),
            at_least(config.creator_threshold * config.low_water),
            at_least(config.curator_threshold),
            at_least(config.curator_threshold * config.low_water),
        )

    def tier(self, prev: int, creation: float, curation: float) -> int:
        """`base_tier` with these thresholds."""
        if creation >= self.creator or (prev >= CREATOR and creation >= self.creator_floor):
            return CREATOR
        if curation >= self.curator or (prev == CURATOR and curation >= self.curator_floor):
            return CURATOR
        return LURKER


def base_tier(prev: int, creation: float, curation: float, config: ScoringConfig) -> int:
    """The base tier for decayed scores, with hysteresis on the way down.

    Promotion is immediate at the threshold; a creator (or ambassador) stays one
    until creation < low_water x creator_threshold, a curator until curation <
    low_water x curator_threshold.
    """
    return TierRule.of(config).tier(prev, creation, curation)


def top_count(share: float, members: int) -> int:
    """k = max(1, ceil(share x members)); rounding first keeps 0.07 x 100 at 7, not 8."""
    x = share * members
    k = math.ceil(x)
    # Rounding to 9 digits moves x by under 1e-9: it can only change the ceiling of an x
    # within that of an integer, so round (slow: decimal) only there.
    if k - x > 1e-6 and x - k + 1.0 > 1e-6:
        return k if k > 1 else 1
    return max(1, math.ceil(round(x, 9)))
