-- Weak-evidence flags wait for a moderator (status 'review'; 'dismissed' once a moderator cleared one,
-- docs/spam.md "Score, flag and review"): they are rows of engagement.spam_flags like any flag revision, but
-- not spam flags. v_daily counts flags only; the rest of the view is as in 0005 (eligible members only),
-- and its column comments are set again (CREATE OR REPLACE drops them).
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
    WHERE (community_id, member_id) NOT IN
        (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
    GROUP BY community_id, day
    UNION ALL
    SELECT community_id, toDate(at) AS day, 0, 0, 0, 0, 0, uniqExact(member_id), 0
    FROM engagement.tier_changes
    WHERE to_tier IN ('creator', 'ambassador') AND from_tier IN ('lurker', 'curator')
        AND (community_id, member_id) NOT IN
            (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
    GROUP BY community_id, day
    UNION ALL
    SELECT community_id, toDate(flagged_at) AS day, 0, 0, 0, 0, 0, 0, uniqExact(member_id, flagged_at)
    FROM engagement.spam_flags
    WHERE status NOT IN ('review', 'dismissed')
    GROUP BY community_id, day
)
GROUP BY community_id, day;

ALTER TABLE engagement.v_daily
    COMMENT COLUMN community_id 'the community and UTC day',
    COMMENT COLUMN day 'the community and UTC day',
    COMMENT COLUMN joins 'distinct events of each type that day, everyone\'s (staff and spam included)',
    COMMENT COLUMN likes 'distinct events of each type that day, everyone\'s (staff and spam included)',
    COMMENT COLUMN shares 'distinct events of each type that day, everyone\'s (staff and spam included)',
    COMMENT COLUMN comments 'distinct events of each type that day, everyone\'s (staff and spam included)',
    COMMENT COLUMN active_members 'distinct eligible members with any event that day',
    COMMENT COLUMN new_creators 'distinct eligible members who moved from lurker or curator to creator or ambassador that day (tier_changes)',
    COMMENT COLUMN spam_flags 'distinct flags raised that day (spam_flags keys), whatever their later status; weak-evidence rows waiting for a moderator (review, and dismissed once cleared: docs/spam.md) are not flags (migration 0006)';
ALTER TABLE engagement.v_daily MODIFY COMMENT 'Per community and UTC day; a day appears when it has an event, a tier change or a spam flag.';
