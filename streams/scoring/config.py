"""The knobs of the scoring and tier core, as one frozen value passed down by the worker."""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class ScoringConfig:
    """Every number the scoring rules use (docs/scoring.md explains each)."""

    half_life_days: float = 14.0
    comment_weight: float = 3.0
    share_weight: float = 2.0
    like_weight: float = 1.0
    creator_threshold: float = 3.0
    curator_threshold: float = 2.0
    low_water: float = 0.9  # a tier is kept until its score drops below low_water x threshold
    ambassador_share: float = 0.01  # k = max(1, ceil(share x eligible members))
    lateness_seconds: float = 7 * DAY_SECONDS
    dedup_window_seconds: float = 7 * DAY_SECONDS
    active_window_seconds: float = 30 * DAY_SECONDS
    top_small_share: float = 0.01  # CommunityRow.top1_creation_share
    top_large_share: float = 0.20  # CommunityRow.top20_creation_share
    rebase_exponent: float = 500.0  # rebase the landmark before exp() of stored values passes e**this

    def __post_init__(self) -> None:
        positive = ("half_life_days", "creator_threshold", "curator_threshold", "rebase_exponent")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ScoringConfig.{name}={value!r} must be a finite number > 0")
        for name in (
            "comment_weight",
            "share_weight",
            "like_weight",
            "lateness_seconds",
            "dedup_window_seconds",
            "active_window_seconds",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"ScoringConfig.{name}={value!r} must be a finite number >= 0")
        for name in ("low_water", "ambassador_share", "top_small_share", "top_large_share"):
            value = getattr(self, name)
            if not (0 < value <= 1):
                raise ValueError(f"ScoringConfig.{name}={value!r} must be in (0, 1]")
        if self.rebase_exponent > 600:
            raise ValueError(
                f"ScoringConfig.rebase_exponent={self.rebase_exponent} leaves no float headroom; use <= 600"
            )
        if self.dedup_window_seconds < self.lateness_seconds:
            raise ValueError(
                f"ScoringConfig.dedup_window_seconds={self.dedup_window_seconds} is shorter than "
                f"lateness_seconds={self.lateness_seconds}: a re-delivered event could be scored twice; "
                "make the dedup window at least as long as the lateness"
            )

    @property
    def decay_rate(self) -> float:
        """lambda = ln 2 / half-life, per second."""
        return math.log(2.0) / (self.half_life_days * DAY_SECONDS)
