-- A self-describing schema, and engagement.events keyed by day.
--
-- 1. Every table and column of the `engagement` database gets a COMMENT: the words of
--    docs/analytics.md (each table's first sentence there, each column's meaning), so
--    Metabase, Superset, DataGrip and Grafana show them. tests/unit/test_analytics_schema.py
--    checks system.columns against the page. Views get theirs in 0005, after it redefines them.
-- 2. engagement.events is re-keyed from (community_id, type, event_id) to
--    (community_id, toDate(occurred_at), type, event_id), so a time-range question reads
--    only that range of a community. occurred_at never changes for an event, so a re-delivered
--    row has the same key and copies still collapse. ClickHouse cannot change a sorting key
--    in place: a new table is filled from the old one, the copy is counted, and the two are
--    exchanged; the old one is then dropped.
--
-- Safe to re-run from any step: the steps of the re-key run only while `events` still has
-- the old key (`-- when:` guards, sinks/migrate.py), and the copy starts from an empty table.
-- Run it while no worker writes (docker-compose.yml runs `engage migrate` before the workers):
-- a row written to the old table during the copy would not be copied.
-- Statements end with a semicolon at a line end (sinks/migrate.py splits there).

-- when: SELECT count() FROM system.tables WHERE database = 'engagement' AND name = 'events' AND sorting_key = 'community_id, type, event_id'
CREATE TABLE IF NOT EXISTS engagement.events_by_day
(
    event_id            String                 COMMENT 'the platform\'s idempotency key, unique within (community, type)',
    type                LowCardinality(String) COMMENT 'join, like, share or comment',
    community_id        String                 COMMENT 'the community (workspace, forum, channel, group)',
    member_id           String                 COMMENT 'who acted (pseudonymised when the gateway is configured so)',
    occurred_at         DateTime64(3, 'UTC')   COMMENT 'event time, DateTime64(3, \'UTC\')',
    source              LowCardinality(String) COMMENT 'which platform adapter sent it (discourse, slack, ...)',
    actor_role          LowCardinality(String) COMMENT 'member, owner, moderator or bot',
    target_id           Nullable(String)       COMMENT 'what was liked, shared or commented on, if anything',
    target_author_id    Nullable(String)       COMMENT 'the author of the target: who *received* the like, share or comment',
    join_source         LowCardinality(String) COMMENT 'on joins: invite, organic, promotion or import; empty otherwise',
    content_fingerprint Nullable(UInt64)       COMMENT 'comments only: 64-bit simhash of the text (the text is never stored)',
    link_count          UInt32                 COMMENT 'comments only: how many links the text carried',
    ingested_at         DateTime64(3, 'UTC')   COMMENT 'when the worker wrote the row; the version of the replacing table',
    kafka_partition     UInt16                 COMMENT 'where the event sat in engagement.events on Kafka',
    kafka_offset        UInt64                 COMMENT 'where the event sat in engagement.events on Kafka'
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (community_id, toDate(occurred_at), type, event_id)
COMMENT 'Every accepted event, late ones included, one row per (community, type, event id).';

-- when: SELECT count() FROM system.tables WHERE database = 'engagement' AND name = 'events' AND sorting_key = 'community_id, type, event_id'
TRUNCATE TABLE engagement.events_by_day;

-- when: SELECT count() FROM system.tables WHERE database = 'engagement' AND name = 'events' AND sorting_key = 'community_id, type, event_id'
INSERT INTO engagement.events_by_day SELECT * FROM engagement.events;

-- Every event copied: the same distinct (community_id, type, event_id) in both, or nothing
-- moves. (Raw row counts may differ: a background merge of the copy may already have
-- collapsed duplicates that the old table still holds.)
-- when: SELECT count() FROM system.tables WHERE database = 'engagement' AND name = 'events' AND sorting_key = 'community_id, type, event_id'
SELECT throwIf(
    (SELECT uniqExact(community_id, type, event_id) FROM engagement.events_by_day)
        != (SELECT uniqExact(community_id, type, event_id) FROM engagement.events),
    'the copy of engagement.events into events_by_day misses events; run engage migrate again'
);

-- when: SELECT count() FROM system.tables WHERE database = 'engagement' AND name = 'events' AND sorting_key = 'community_id, type, event_id'
EXCHANGE TABLES engagement.events AND engagement.events_by_day;

-- events_by_day now holds the old copy; never drop a table with the new key.
-- when: SELECT count() FROM system.tables WHERE database = 'engagement' AND name = 'events_by_day' AND sorting_key = 'community_id, type, event_id'
DROP TABLE engagement.events_by_day;

-- The rollups' views on events, as 0002 made them, re-created so they feed from the new
-- table whichever way the server tracks a view's source across EXCHANGE (by name or by
-- table id). With no worker writing, no row is missed in between.
DROP VIEW IF EXISTS engagement.mv_daily_events;

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement.mv_daily_events TO engagement.daily_events AS
SELECT
    community_id,
    toDate(occurred_at) AS day,
    type,
    actor_role,
    uniqExactState(event_id) AS events,
    min(occurred_at) AS first_at,
    max(occurred_at) AS last_at
FROM engagement.events
GROUP BY community_id, day, type, actor_role;

DROP VIEW IF EXISTS engagement.mv_member_days;

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement.mv_member_days TO engagement.member_days AS
SELECT
    community_id,
    member_id,
    toDate(occurred_at) AS day,
    uniqExactState(toString(type), event_id) AS events
FROM engagement.events
WHERE actor_role = 'member'
GROUP BY community_id, member_id, day;

DROP VIEW IF EXISTS engagement.mv_member_joins;

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement.mv_member_joins TO engagement.member_joins AS
SELECT
    community_id,
    member_id,
    min(occurred_at) AS joined_at,
    argMinState(toString(join_source), (occurred_at, event_id)) AS join_source
FROM engagement.events
WHERE type = 'join' AND actor_role = 'member'
GROUP BY community_id, member_id;

-- Comments (docs/analytics.md). events has its own from the CREATE above.

ALTER TABLE engagement.member_state
    COMMENT COLUMN community_id 'the member',
    COMMENT COLUMN member_id 'the member',
    COMMENT COLUMN tier 'lurker, curator, creator or ambassador (a creator in the community\'s top 1% by creation)',
    COMMENT COLUMN creation 'C: decayed creation score (comments) as of as_of',
    COMMENT COLUMN curation 'U: decayed curation score (likes, shares) as of as_of',
    COMMENT COLUMN received 'R: decayed score of what others did to this member\'s content, as of as_of',
    COMMENT COLUMN as_of 'the community clock when the row was computed',
    COMMENT COLUMN first_seen 'time of the member\'s first event',
    COMMENT COLUMN last_active 'time of the member\'s latest event',
    COMMENT COLUMN events_counted 'events scored for this member',
    COMMENT COLUMN join_source 'source of the member\'s join, empty if none was seen',
    COMMENT COLUMN actor_role 'member, owner, moderator or bot',
    COMMENT COLUMN spam_status 'none, flagged, confirmed or cleared',
    COMMENT COLUMN version 'increases with every rewrite; the highest wins',
    COMMENT COLUMN decay_rate 'the worker\'s decay rate when it wrote the row, ln 2 / half-life per second (2^-1 after one half-life); 0 for rows written before migration 0003';
ALTER TABLE engagement.member_state MODIFY COMMENT 'One row per member, rewritten with a higher version whenever it changes.';

ALTER TABLE engagement.tier_changes
    COMMENT COLUMN community_id 'the member',
    COMMENT COLUMN member_id 'the member',
    COMMENT COLUMN from_tier 'the move',
    COMMENT COLUMN to_tier 'the move',
    COMMENT COLUMN at 'event time of the move',
    COMMENT COLUMN creation 'the member\'s scores at that moment',
    COMMENT COLUMN curation 'the member\'s scores at that moment',
    COMMENT COLUMN received 'the member\'s scores at that moment',
    COMMENT COLUMN seq 'order of the moves of one member (ties on at)';
ALTER TABLE engagement.tier_changes MODIFY COMMENT 'One row per tier move, at the event time it happened.';

ALTER TABLE engagement.community_state
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN as_of 'community clock of the snapshot',
    COMMENT COLUMN members 'members as the worker counts them (eligible members)',
    COMMENT COLUMN lurkers 'eligible members per tier',
    COMMENT COLUMN curators 'eligible members per tier',
    COMMENT COLUMN creators 'eligible members per tier',
    COMMENT COLUMN ambassadors 'eligible members per tier',
    COMMENT COLUMN active_creators 'eligible creators and ambassadors who commented within the worker\'s active window (30 days by default) before as_of',
    COMMENT COLUMN top1_creation_share 'the worker\'s own concentration figures',
    COMMENT COLUMN top20_creation_share 'the worker\'s own concentration figures',
    COMMENT COLUMN flagged_members 'members currently flagged as spam',
    COMMENT COLUMN version 'the highest wins';
ALTER TABLE engagement.community_state MODIFY COMMENT 'Snapshots of each community, at least every minute of event time while events flow.';

ALTER TABLE engagement.spam_flags
    COMMENT COLUMN community_id 'the flagged profile',
    COMMENT COLUMN member_id 'the flagged profile',
    COMMENT COLUMN flagged_at 'event time of the flag; with the member, the flag\'s key',
    COMMENT COLUMN score 'the spam score that crossed the threshold',
    COMMENT COLUMN reasons 'why, e.g. burst, duplicate_content, links',
    COMMENT COLUMN status 'flagged, confirmed or cleared',
    COMMENT COLUMN event_id 'the event that triggered the flag',
    COMMENT COLUMN decided_by 'the moderator and time of the decision, if any',
    COMMENT COLUMN decided_at 'the moderator and time of the decision, if any',
    COMMENT COLUMN version 'the highest wins';
ALTER TABLE engagement.spam_flags MODIFY COMMENT 'One row per flag, rewritten with a higher version when a moderator decides.';

ALTER TABLE engagement.moderation
    COMMENT COLUMN decision_id 'idempotency key',
    COMMENT COLUMN community_id 'whose flag was decided',
    COMMENT COLUMN member_id 'whose flag was decided',
    COMMENT COLUMN action 'confirm or clear',
    COMMENT COLUMN moderator 'who decided, and why',
    COMMENT COLUMN reason 'who decided, and why',
    COMMENT COLUMN decided_at 'when',
    COMMENT COLUMN ingested_at 'when the row was written; the version';
ALTER TABLE engagement.moderation MODIFY COMMENT 'Moderators\' decisions, themselves events.';

ALTER TABLE engagement.schema_migrations
    COMMENT COLUMN number 'the file\'s number, NNNN of NNNN_name.sql',
    COMMENT COLUMN name 'the file name',
    COMMENT COLUMN checksum 'SHA-256 of the file as applied; a changed applied file is an error',
    COMMENT COLUMN applied_at 'when the file was applied';
ALTER TABLE engagement.schema_migrations MODIFY COMMENT 'The applied migration files (sinks/migrate.py), one row per file.';

ALTER TABLE engagement.daily_events
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN day 'UTC day of the events (toDate(occurred_at))',
    COMMENT COLUMN type 'join, like, share or comment',
    COMMENT COLUMN actor_role 'member, owner, moderator or bot',
    COMMENT COLUMN events 'uniqExact state of event_id: read with uniqExactMerge(events)',
    COMMENT COLUMN first_at 'first occurred_at of the group',
    COMMENT COLUMN last_at 'latest occurred_at of the group';
ALTER TABLE engagement.daily_events MODIFY COMMENT 'Per community, UTC day, event type and actor role: the day\'s events as a set of ids.';

ALTER TABLE engagement.member_days
    COMMENT COLUMN community_id 'the member',
    COMMENT COLUMN member_id 'the member',
    COMMENT COLUMN day 'a UTC day with an event of the member',
    COMMENT COLUMN events 'uniqExact state of (type, event_id): the member\'s events that day';
ALTER TABLE engagement.member_days MODIFY COMMENT 'One row per member and UTC day with an event, members only (actor_role = \'member\').';

ALTER TABLE engagement.member_joins
    COMMENT COLUMN community_id 'the member',
    COMMENT COLUMN member_id 'the member',
    COMMENT COLUMN joined_at 'time of the member\'s first join',
    COMMENT COLUMN join_source 'argMin state: the source of that first join, ties broken by event_id; read with argMinMerge(join_source)';
ALTER TABLE engagement.member_joins MODIFY COMMENT 'A member\'s first join (time and source), members only.';

ALTER TABLE engagement.mv_daily_events
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN day 'UTC day of the events (toDate(occurred_at))',
    COMMENT COLUMN type 'join, like, share or comment',
    COMMENT COLUMN actor_role 'member, owner, moderator or bot',
    COMMENT COLUMN events 'uniqExact state of event_id: read with uniqExactMerge(events)',
    COMMENT COLUMN first_at 'first occurred_at of the group',
    COMMENT COLUMN last_at 'latest occurred_at of the group';
ALTER TABLE engagement.mv_daily_events MODIFY COMMENT 'Feeds engagement.daily_events: Per community, UTC day, event type and actor role: the day\'s events as a set of ids.';

ALTER TABLE engagement.mv_member_days
    COMMENT COLUMN community_id 'the member',
    COMMENT COLUMN member_id 'the member',
    COMMENT COLUMN day 'a UTC day with an event of the member',
    COMMENT COLUMN events 'uniqExact state of (type, event_id): the member\'s events that day';
ALTER TABLE engagement.mv_member_days MODIFY COMMENT 'Feeds engagement.member_days: One row per member and UTC day with an event, members only (actor_role = \'member\').';

ALTER TABLE engagement.mv_member_joins
    COMMENT COLUMN community_id 'the member',
    COMMENT COLUMN member_id 'the member',
    COMMENT COLUMN joined_at 'time of the member\'s first join',
    COMMENT COLUMN join_source 'argMin state: the source of that first join, ties broken by event_id; read with argMinMerge(join_source)';
ALTER TABLE engagement.mv_member_joins MODIFY COMMENT 'Feeds engagement.member_joins: A member\'s first join (time and source), members only.';
