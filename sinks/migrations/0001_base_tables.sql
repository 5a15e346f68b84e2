-- Base tables: every accepted event, and the state the worker derives from them.
-- Each table is a ReplacingMergeTree whose key ends in an id, so a row written
-- twice (Kafka re-delivery, a retried flush, a restart mid-batch) collapses.
CREATE DATABASE IF NOT EXISTS engagement;

CREATE TABLE IF NOT EXISTS engagement.events
(
    event_id            String,
    type                LowCardinality(String),
    community_id        String,
    member_id           String,
    occurred_at         DateTime64(3, 'UTC'),
    source              LowCardinality(String),
    actor_role          LowCardinality(String),
    target_id           Nullable(String),
    target_author_id    Nullable(String),
    join_source         LowCardinality(String),
    content_fingerprint Nullable(UInt64),
    link_count          UInt32,
    ingested_at         DateTime64(3, 'UTC'),
    kafka_partition     UInt16,
    kafka_offset        UInt64
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (community_id, type, event_id);

CREATE TABLE IF NOT EXISTS engagement.member_state
(
    community_id   String,
    member_id      String,
    tier           LowCardinality(String),
    creation       Float64,
    curation       Float64,
    received       Float64,
    as_of          DateTime64(3, 'UTC'),
    first_seen     DateTime64(3, 'UTC'),
    last_active    DateTime64(3, 'UTC'),
    events_counted UInt64,
    join_source    LowCardinality(String),
    actor_role     LowCardinality(String),
    spam_status    LowCardinality(String),
    version        UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (community_id, member_id);

CREATE TABLE IF NOT EXISTS engagement.tier_changes
(
    community_id String,
    member_id    String,
    from_tier    LowCardinality(String),
    to_tier      LowCardinality(String),
    at           DateTime64(3, 'UTC'),
    creation     Float64,
    curation     Float64,
    received     Float64,
    seq          UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (community_id, member_id, at, seq);

CREATE TABLE IF NOT EXISTS engagement.community_state
(
    community_id     String,
    as_of            DateTime64(3, 'UTC'),
    members          UInt64,
    lurkers          UInt64,
    curators         UInt64,
    creators         UInt64,
    ambassadors      UInt64,
    active_creators  UInt64,
    top1_creation_share  Float64,
    top20_creation_share Float64,
    flagged_members  UInt64,
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (community_id, as_of);

CREATE TABLE IF NOT EXISTS engagement.spam_flags
(
    community_id String,
    member_id    String,
    flagged_at   DateTime64(3, 'UTC'),
    score        Float64,
    reasons      Array(LowCardinality(String)),
    status       LowCardinality(String),
    event_id     String,
    decided_by   String,
    decided_at   Nullable(DateTime64(3, 'UTC')),
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (community_id, member_id, flagged_at);

CREATE TABLE IF NOT EXISTS engagement.moderation
(
    decision_id  String,
    community_id String,
    member_id    String,
    action       LowCardinality(String),
    moderator    String,
    reason       String,
    decided_at   DateTime64(3, 'UTC'),
    ingested_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (community_id, member_id, decision_id);
