"""Column lists of the base tables, in the order the writers send them.

Kept next to the DDL they mirror (sinks/migrations/0001_base_tables.sql; member_state's
`decay_rate` comes from 0003_member_decay.sql, events' `kafka_line` from 0007). The rows
that fill them are shaped on the streams side (streams/worker/rows.py).
"""

from __future__ import annotations

EVENTS_COLUMNS = (
    "event_id",
    "type",
    "community_id",
    "member_id",
    "occurred_at",
    "source",
    "actor_role",
    "target_id",
    "target_author_id",
    "join_source",
    "content_fingerprint",
    "link_count",
    "ingested_at",
    "kafka_partition",
    "kafka_offset",
    "kafka_line",
)
MEMBER_STATE_COLUMNS = (
    "community_id",
    "member_id",
    "tier",
    "creation",
    "curation",
    "received",
    "as_of",
    "first_seen",
    "last_active",
    "events_counted",
    "join_source",
    "actor_role",
    "spam_status",
    "version",
    "decay_rate",
)
TIER_CHANGES_COLUMNS = (
    "community_id",
    "member_id",
    "from_tier",
    "to_tier",
    "at",
    "creation",
    "curation",
    "received",
    "seq",
)
COMMUNITY_STATE_COLUMNS = (
    "community_id",
    "as_of",
    "members",
    "lurkers",
    "curators",
    "creators",
    "ambassadors",
    "active_creators",
    "top1_creation_share",
    "top20_creation_share",
    "flagged_members",
    "version",
)
SPAM_FLAGS_COLUMNS = (
    "community_id",
    "member_id",
    "flagged_at",
    "score",
    "reasons",
    "status",
    "event_id",
    "decided_by",
    "decided_at",
    "version",
)
MODERATION_COLUMNS = (
    "decision_id",
    "community_id",
    "member_id",
    "action",
    "moderator",
    "reason",
    "decided_at",
    "ingested_at",
)
