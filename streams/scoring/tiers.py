"""The participation tier rules: lurker, curator, creator, ambassador (docs/scoring.md).

Pure functions of scores and the previous tier; the scorer decides *when* to apply them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from streams.scoring.config import ScoringConfig

# Base tiers are what the per-event rules produce; AMBASSADOR is only ever a
# creator in the community's top k, chosen at the end of each batch.
LURKER, CURATOR, CREATOR, AMBASSADOR = 0, 1, 2, 3
TIER_NAMES = ("lurker", "curator", "creator", "ambassador")  # == schemas.outputs.Tier values
TIER_CODES = {name: code for code, name in enumerate(TIER_NAMES)}


# Scores are compared with thresholds to within this relative tolerance, so that float
# rounding cannot decide a tier: 3 * g(t - L) * g(L - t) may come out one ulp under 3.
TOLERANCE = 1e-9


def at_least(threshold: float) -> float:
    """The smallest score that counts as reaching `threshold`."""
    return threshold * (1.0 - TOLERANCE)


def base_tier(prev: int, creation: float, curation: float, config: ScoringConfig) -> int:
    """The base tier for decayed scores, with hysteresis on the way down.

    Promotion is immediate at the threshold; a creator (or ambassador) stays one
    until creation < low_water x creator_threshold, a curator until curation <
    low_water x curator_threshold.
    """
    if creation >= at_least(config.creator_threshold) or (
        prev >= CREATOR and creation >= at_least(config.creator_threshold * config.low_water)
    ):
        return CREATOR
    if curation >= at_least(config.curator_threshold) or (
        prev == CURATOR and curation >= at_least(config.curator_threshold * config.low_water)
    ):
        return CURATOR
    return LURKER


def top_count(share: float, members: int) -> int:
    """k = max(1, ceil(share x members)); rounding first keeps 0.07 x 100 at 7, not 8."""
    return max(1, math.ceil(round(share * members, 9)))


def top_by_creation(index: Any, k: int, received: Sequence[float], member_ids: Sequence[str]) -> list[int]:
    """Member indexes of the top k by creation desc, then received desc, then member_id asc.

    `index` is a SortedList of (-stored creation, member index) over the eligible
    members with creation > 0; members absent from it have creation 0 and can never be
    creators, so they are never needed to fill an ambassador slot.
    """
    n = len(index)
    if n <= k:
        return [idx for _, idx in index]
    boundary = index[k - 1][0]
    # Everything strictly better than the k-th key is in; the k-th key's ties compete for what is left.
    first_tied = index.bisect_left((boundary, -1))
    chosen = [idx for _, idx in index.islice(0, first_tied)]
    tied: list[int] = []
    for key, idx in index.islice(first_tied, n):
        if key != boundary:
            break
        tied.append(idx)
    tied.sort(key=lambda i: (-received[i], member_ids[i]))
    chosen.extend(tied[: k - first_tied])
    return chosen
