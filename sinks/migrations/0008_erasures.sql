-- Erasures: the audit record of every forget request as each partition applied it
-- (docs/privacy.md). Who asked, when, why and what it removed; the member appears only
-- as member_key, a one-way hash (schemas/erasures.py), never as their id.
CREATE TABLE IF NOT EXISTS engagement.erasures
(
    erasure_id      String COMMENT 'the request\'s id (the same request at the same erased_at has the same id)',
    community_id    String COMMENT 'the community (its sub-communities are covered) and the member\'s hash',
    member_key      String COMMENT 'the community (its sub-communities are covered) and the member\'s hash',
    erased_at       DateTime64(3, 'UTC') COMMENT 'events of the member at or before it are forgotten; later ones are a new member',
    requested_by    String COMMENT 'who asked, why, and through what (cli, api, webhook:<platform>)',
    reason          String COMMENT 'who asked, why, and through what (cli, api, webhook:<platform>)',
    source          LowCardinality(String) COMMENT 'who asked, why, and through what (cli, api, webhook:<platform>)',
    kafka_partition UInt16 COMMENT 'the partition that applied it, how many of its communities it covered and rebuilt',
    communities     UInt32 COMMENT 'the partition that applied it, how many of its communities it covered and rebuilt',
    rebuilt         UInt32 COMMENT 'the partition that applied it, how many of its communities it covered and rebuilt',
    rows_deleted    UInt64 COMMENT 'rows deleted or rewritten in ClickHouse, and when',
    applied_at      DateTime64(3, 'UTC') COMMENT 'rows deleted or rewritten in ClickHouse, and when'
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY (community_id, member_key, erasure_id, kafka_partition)
COMMENT 'The audit record of forget requests (docs/privacy.md), one row per erasure and partition that applied it.';
