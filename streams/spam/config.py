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
    duplicate_max_hamming: int = 4
    duplicate_seconds: float = DAY
    duplicate_memory: int = 32  # recent comments per member searched for near-duplicates
    # Duplicates count only when the duplicated posts carry a link: short stock replies ("thanks!",
    # "+1", "congrats!") share a fingerprint; spam duplicates carry their payload.
    duplicate_needs_link: bool = True
    # Duplicates are strong evidence unless the member is established: older than this and the writer of at
    # least `established_comments` texts of its own before (comments that copied none of its recent ones).
    # Greeters are old, talkative members; a sleeper profile that waited a week with a few likes is old but
    # not established. Discourse's trust levels are earned by activity too, not by account age alone.
    established_seconds: float = 7 * DAY
    established_comments: int = 5

    # Newcomer signals count the member's comments in the first `newcomer_seconds` after joining.
    newcomer_seconds: float = DAY
    # A "drop" is a comment under another member's content that carries links (a launch post of one's own
    # with links is no drop). Weak: `link_heavy_links` dropped links or more, in at least
    # `link_heavy_min_link_share` of the newcomer's comments.
    link_heavy_links: int = 3
    link_heavy_min_link_share: float = 0.5
    # Strong on its own, link dropping, either of:
    # - `link_heavy_strong_links` dropped links or more (twice what Discourse lets a new user put in one post,
    #   `newuser_max_links` 2) in `link_drop_comments` drops or more, no links anywhere but in the drops, and
    #   at most `link_drop_plain_comments` comments that are not drops (the link dropper);
    # - `link_heavy_strong_link_comments` drops or more and nothing but drops (Discourse takes a new user's
    #   third link to the same host for spam, `newuser_spam_host_threshold` 3).
    link_heavy_strong_links: int = 4
    link_drop_comments: int = 2
    link_drop_plain_comments: int = 1
    link_heavy_strong_link_comments: int = 3
    velocity_comments: int = 10  # more than this many comments (Discourse: `max_replies_in_first_day` 10)
    # Velocity alone at its base level is a hint, not a case for a moderator: a launch day has dozens of such
    # newcomers. It weighs this (below `review_score`), and sends to review only with another weak signal.
    velocity_weak_weight: float = 0.25
    # Strong on its own: more than `velocity_strong_comments`, nearly all (`velocity_reply_share`) under other
    # members' content: a flood of replies, no conversation of one's own. (A busy launch-day newcomer also
    # starts threads: 12-44% of its comments in the simulation, however many it writes.)
    velocity_strong_comments: int = 24  # more than this: 25 or more
    velocity_reply_share: float = 0.9
    # Joins from these sources are members moved from elsewhere, not newcomers.
    exempt_join_sources: frozenset[int] = field(
        default_factory=lambda: frozenset({JOIN_SOURCE_CODES["import"]})
    )

    # Combination: a fired signal adds its weight for `combine_seconds`; a flag at `flag_score`.
    strong_weight: float = 1.0
    weak_weight: float = 0.5
    flag_score: float = 1.0
    # Weak evidence alone (a score at least this, below `flag_score`) goes to a moderator: status `review`, a
    # flag record with its score and reasons, the member still counted in the scores.
    review_score: float = 0.5
    combine_seconds: float = DAY

    # Window state of a member idle this long (in event time) is dropped; swept every `sweep_seconds`.
    idle_seconds: float = DAY
    sweep_seconds: float = 6 * 3_600.0
    # A member with nothing else to remember (status none, never moderated, not staff) is forgotten, all but
    # an 8-byte hash saying "not a newcomer", once idle this long and this long past its newcomer and
    # established windows. Keep it at least the scorer's `lateness_seconds`: then no event can still arrive
    # from before the member was forgotten, and forgetting changes no flag.
    forget_seconds: float = 7 * DAY
