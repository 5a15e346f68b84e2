"""Every threshold of the spam-profile detector, in one frozen dataclass.

Defaults are the measured ones (docs/spam.md); the worker builds one `SpamConfig`
from settings and passes it down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.event_record import JOIN_SOURCE_CODES

DAY = 86_400.0


@dataclass(frozen=True)
class SpamConfig:
    # Burst: more than N comments (likes) by one member inside a window of W seconds.
    burst_short_comments: int = 5
    burst_short_seconds: float = 30.0
    burst_long_comments: int = 15
    burst_long_seconds: float = 600.0
    burst_likes: int = 50
    burst_likes_seconds: float = 60.0

    # Duplicate content: the same or a near-duplicate fingerprint on this many different targets.
    duplicate_posts: int = 3
    duplicate_max_hamming: int = 3
    duplicate_seconds: float = DAY
    duplicate_memory: int = 32  # recent comments per member searched for near-duplicates
    # Duplicates count only when the duplicated posts carry a link: short stock replies ("thanks!",
    # "+1", "congrats!") share a fingerprint; spam duplicates carry their payload.
    duplicate_needs_link: bool = True
    # Duplicates are strong evidence only from a member younger than this (greeters are old members).
    established_seconds: float = 7 * DAY

    # Newcomer signals count the member's comments in the first `newcomer_seconds` after joining.
    newcomer_seconds: float = DAY
    link_heavy_links: int = 3  # links in total
    link_heavy_min_link_share: float = 0.5  # of the newcomer's comments that carry a link
    # Strong on its own (link dropping): this many links left under other members' content, at least
    # this many comments with links, and (at least this share of) every first-day comment carrying one.
    # A launch post of one's own with links is not link dropping.
    link_heavy_strong_links: int = 4
    link_heavy_strong_link_comments: int = 3
    link_heavy_strong_link_share: float = 1.0
    velocity_comments: int = 10  # more than this many comments
    velocity_strong_comments: int = 25  # more than this many count as a strong signal on their own
    # Joins from these sources are members moved from elsewhere, not newcomers.
    exempt_join_sources: frozenset[int] = field(
        default_factory=lambda: frozenset({JOIN_SOURCE_CODES["import"]})
    )

    # Combination: a fired signal adds its weight for `combine_seconds`; a flag at `flag_score`.
    strong_weight: float = 1.0
    weak_weight: float = 0.5
    flag_score: float = 1.0
    combine_seconds: float = DAY

    # Window state of a member idle this long (in event time) is dropped; swept every `sweep_seconds`.
    idle_seconds: float = DAY
    sweep_seconds: float = 6 * 3_600.0
    # A member with nothing else to remember (status none, never moderated, not staff) is forgotten, all but
    # an 8-byte hash saying "not a newcomer", once idle this long and this long past its newcomer and
    # established windows. Keep it at least the scorer's `lateness_seconds`: then no event can still arrive
    # from before the member was forgotten, and forgetting changes no flag.
    forget_seconds: float = 7 * DAY
