-- Erasures: the audit record of every forget request as each partition applied it
-- (docs/privacy.md). Who asked, when, why and what it removed; the member appears only
-- as member_key, a one-way hash (schemas/erasures.py), never as their id.
CREATE TABLE IF NOT EXISTS engagement.erasures
(
    erasure_id      String,
    community_id    String,
    member_key      String,
    erased_at       DateTime64(3, 'UTC'),
    requested_by    String,
    reason          String,
    source          LowCardinality(String),
    kafka_partition UInt16,
    communities     UInt32,
    rebuilt         UInt32,
    rows_deleted    UInt64,
    applied_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY (community_id, member_key, erasure_id, kafka_partition);
