-- Weak-evidence flags wait for a moderator (status 'review'; 'dismissed' once a moderator cleared one,
-- docs/spam.md "Score, flag and review"): they are rows of engagement.spam_flags like any flag revision, but
-- not spam flags. v_daily counts flags only; the rest of the view is as in 0002.
CREATE OR REPLACE VIEW engagement.v_daily AS
SELECT
    community_id,
    day,
    sum(joins) AS joins,
    sum(likes) AS likes,
    sum(shares) AS shares,
    sum(comments) AS comments,
    sum(active_members) AS active_members,
    sum(new_creators) AS new_creators,
    sum(spam_flags) AS spam_flags
FROM
(
    SELECT
        community_id,
        day,
        uniqExactMergeIf(events, type = 'join') AS joins,
        uniqExactMergeIf(events, type = 'like') AS likes,
        uniqExactMergeIf(events, type = 'share') AS shares,
        uniqExactMergeIf(events, type = 'comment') AS comments,
        toUInt64(0) AS active_members,
        toUInt64(0) AS new_creators,
        toUInt64(0) AS spam_flags
    FROM engagement.daily_events
    GROUP BY community_id, day
    UNION ALL
    SELECT community_id, day, 0, 0, 0, 0, uniqExact(member_id), 0, 0
    FROM engagement.member_days
    GROUP BY community_id, day
    UNION ALL
    SELECT community_id, toDate(at) AS day, 0, 0, 0, 0, 0, uniqExact(member_id), 0
    FROM engagement.tier_changes
    WHERE to_tier IN ('creator', 'ambassador') AND from_tier IN ('lurker', 'curator')
    GROUP BY community_id, day
    UNION ALL
    SELECT community_id, toDate(flagged_at) AS day, 0, 0, 0, 0, 0, 0, uniqExact(member_id, flagged_at)
    FROM engagement.spam_flags
    WHERE status NOT IN ('review', 'dismissed')
    GROUP BY community_id, day
)
GROUP BY community_id, day;
