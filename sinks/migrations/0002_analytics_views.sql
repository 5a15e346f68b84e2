-- Analytics: rollups that count every event once, and the views analysts query.
-- docs/analytics.md documents every column and rule; the view names are a contract.
--
-- Why uniqExact: the same event row can reach engagement.events twice (a retried
-- flush, a replay), and a materialized view sees every insert before any merge, so a
-- countState would count it twice. uniqExactState(event_id) keeps the set of
-- (128-bit hashes of) ids and merging states is a set union: a duplicate insert, a
-- backfill that overlaps the view, or a replay of the whole log leaves counts unchanged.
-- uniq/uniqCombined are smaller but approximate; groupBitmap needs an integer, and a
-- 32-bit hash of the id collides at these volumes while a 64-bit one saves nothing
-- over the hash set. The cost is 16 bytes per distinct event per (community, day) row.
-- min/max states are idempotent too, so first/last times need no such care.
--
-- Statements end with a semicolon at a line end (sinks/migrate.py splits there).

CREATE TABLE IF NOT EXISTS engagement.daily_events
(
    community_id String,
    day          Date,
    type         LowCardinality(String),
    actor_role   LowCardinality(String),
    events       AggregateFunction(uniqExact, String),
    first_at     SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_at      SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (community_id, day, type, actor_role);

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

-- One row per member and UTC day with an event, members only (actor_role = 'member'):
-- the activity history behind retention, lifecycle and daily active members.
-- (type, event_id) is the id: events are unique per (community, type, event_id).
CREATE TABLE IF NOT EXISTS engagement.member_days
(
    community_id String,
    member_id    String,
    day          Date,
    events       AggregateFunction(uniqExact, String, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (community_id, member_id, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement.mv_member_days TO engagement.member_days AS
SELECT
    community_id,
    member_id,
    toDate(occurred_at) AS day,
    uniqExactState(toString(type), event_id) AS events
FROM engagement.events
WHERE actor_role = 'member'
GROUP BY community_id, member_id, day;

-- A member's first join (time and source), members only. argMin is keyed on
-- (occurred_at, event_id) so two joins at the same instant resolve the same way on
-- every replay.
CREATE TABLE IF NOT EXISTS engagement.member_joins
(
    community_id String,
    member_id    String,
    joined_at    SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    join_source  AggregateFunction(argMin, String, Tuple(DateTime64(3, 'UTC'), String))
)
ENGINE = AggregatingMergeTree
ORDER BY (community_id, member_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement.mv_member_joins TO engagement.member_joins AS
SELECT
    community_id,
    member_id,
    min(occurred_at) AS joined_at,
    argMinState(toString(join_source), (occurred_at, event_id)) AS join_source
FROM engagement.events
WHERE type = 'join' AND actor_role = 'member'
GROUP BY community_id, member_id;

-- Backfill from events already stored. Safe to overlap with the views above (and to
-- run again): the states are sets and min/max, so a row seen twice counts once.
INSERT INTO engagement.daily_events
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

INSERT INTO engagement.member_days
SELECT
    community_id,
    member_id,
    toDate(occurred_at) AS day,
    uniqExactState(toString(type), event_id) AS events
FROM engagement.events
WHERE actor_role = 'member'
GROUP BY community_id, member_id, day;

INSERT INTO engagement.member_joins
SELECT
    community_id,
    member_id,
    min(occurred_at) AS joined_at,
    argMinState(toString(join_source), (occurred_at, event_id)) AS join_source
FROM engagement.events
WHERE type = 'join' AND actor_role = 'member'
GROUP BY community_id, member_id;

-- The community clock: the latest occurred_at of any event of the community (late
-- events included). Every "days since" and "recent" rule is relative to it, never now().
CREATE OR REPLACE VIEW engagement.v_community_clock AS
SELECT
    community_id,
    max(last_at) AS clock,
    toDate(max(last_at)) AS clock_day
FROM engagement.daily_events
GROUP BY community_id;

-- Latest member_state row per member (FINAL: highest version wins), with eligibility
-- and the member's rank by creation among the eligible members of the community.
CREATE OR REPLACE VIEW engagement.v_member_current AS
SELECT
    community_id,
    member_id,
    tier,
    creation,
    curation,
    received,
    as_of,
    first_seen,
    last_active,
    events_counted,
    join_source,
    actor_role,
    spam_status,
    version,
    actor_role != 'member' AS is_staff,
    actor_role = 'member' AND spam_status NOT IN ('flagged', 'confirmed') AS is_eligible,
    if(is_eligible, row_number() OVER by_creation, NULL) AS creation_rank,
    countIf(is_eligible) OVER (PARTITION BY community_id) AS eligible_members,
    if(is_eligible, creation_rank / eligible_members, NULL) AS creation_top_fraction
FROM engagement.member_state FINAL
WINDOW by_creation AS (PARTITION BY community_id, is_eligible ORDER BY creation DESC, member_id ASC);

-- Per community and UTC day: the day's last community_state snapshot next to 90-9-1.
CREATE OR REPLACE VIEW engagement.v_tier_mix AS
SELECT
    community_id,
    day,
    snap.1 AS as_of,
    snap.2 AS members,
    snap.3 AS lurkers,
    snap.4 AS curators,
    snap.5 AS creators,
    snap.6 AS ambassadors,
    lurkers + curators + creators + ambassadors AS tiered_members,
    if(tiered_members = 0, NULL, lurkers / tiered_members) AS lurker_share,
    if(tiered_members = 0, NULL, curators / tiered_members) AS curator_share,
    if(tiered_members = 0, NULL, creators / tiered_members) AS creator_share,
    if(tiered_members = 0, NULL, ambassadors / tiered_members) AS ambassador_share,
    if(tiered_members = 0, NULL, (creators + ambassadors) / tiered_members) AS creating_share,
    0.90 AS benchmark_lurker_share,
    0.09 AS benchmark_curator_share,
    0.01 AS benchmark_creating_share,
    lurker_share - benchmark_lurker_share AS lurker_gap,
    curator_share - benchmark_curator_share AS curator_gap,
    creating_share - benchmark_creating_share AS creating_gap
FROM
(
    SELECT
        community_id,
        toDate(as_of) AS day,
        argMax((as_of, members, lurkers, curators, creators, ambassadors), as_of) AS snap
    FROM engagement.community_state FINAL
    GROUP BY community_id, day
);

-- Per community: size, kernel and critical mass from the latest snapshot, and when
-- the current critical-mass run started / when the kernel was lost, from history.
CREATE OR REPLACE VIEW engagement.v_critical_mass AS
WITH
snapshots AS
(
    SELECT
        community_id,
        as_of,
        members,
        active_creators,
        members >= 1000 AND active_creators >= 10 AS at_critical_mass,
        active_creators >= 10 AS with_kernel,
        maxIf(as_of, NOT at_critical_mass) OVER (PARTITION BY community_id) AS last_below_at,
        maxIf(as_of, with_kernel) OVER (PARTITION BY community_id) AS last_kernel_at
    FROM engagement.community_state FINAL
),
history AS
(
    SELECT
        community_id,
        max(as_of) AS latest_as_of,
        argMax(members, as_of) AS latest_members,
        argMax(active_creators, as_of) AS latest_active_creators,
        max(active_creators) AS peak_active_creators,
        countIf(with_kernel) > 0 AS had_kernel,
        minIf(as_of, as_of > last_below_at) AS critical_mass_run_start,
        minIf(toNullable(as_of), as_of > last_kernel_at) AS first_without_kernel_at
    FROM snapshots
    GROUP BY community_id
),
clocks AS
(
    SELECT community_id, toNullable(clock) AS clock FROM engagement.v_community_clock
)
SELECT
    h.community_id AS community_id,
    h.latest_as_of AS as_of,
    clocks.clock AS clock,
    h.latest_members AS members,
    h.latest_active_creators AS active_creators,
    h.peak_active_creators AS peak_active_creators,
    active_creators >= 10 AS has_kernel,
    h.had_kernel AS had_kernel,
    if(NOT has_kernel AND had_kernel, h.first_without_kernel_at, NULL) AS kernel_lost_at,
    multiIf(
        members >= 10000, '10000_plus',
        members >= 1000, '1000_plus',
        members >= 8 AND members <= 16, 'small_8_16',
        members < 30, 'micro',
        'hard_middle'
    ) AS size_band,
    members < 30 AS is_micro,
    least(members / 1000, 1.0) AS progress_to_1000,
    toUInt64(greatest(0, 1000 - toInt64(members))) AS members_to_1000,
    members >= 1000 AND active_creators >= 10 AS critical_mass,
    if(critical_mass, toNullable(h.critical_mass_run_start), NULL) AS critical_mass_since
FROM history AS h
LEFT JOIN clocks ON clocks.community_id = h.community_id;

-- Weekly join cohorts by join source; week N after joining is days [7N, 7N+6] after
-- the join day, and a member counts for week N once that window ended before the
-- clock's day.
CREATE OR REPLACE VIEW engagement.v_retention_by_source AS
WITH
joins AS
(
    SELECT
        community_id,
        member_id,
        min(joined_at) AS joined_at,
        argMinMerge(join_source) AS join_source
    FROM engagement.member_joins
    GROUP BY community_id, member_id
),
cohort AS
(
    SELECT
        j.community_id AS community_id,
        j.member_id AS member_id,
        j.join_source AS join_source,
        toDate(j.joined_at) AS join_day,
        c.clock_day AS clock_day
    FROM joins AS j
    INNER JOIN engagement.v_community_clock AS c ON c.community_id = j.community_id
    WHERE (j.community_id, j.member_id) NOT IN
        (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
),
activity AS
(
    SELECT
        m.community_id AS community_id,
        m.member_id AS member_id,
        max(dateDiff('day', k.join_day, m.day) BETWEEN 7 AND 13) AS active_w1,
        max(dateDiff('day', k.join_day, m.day) BETWEEN 28 AND 34) AS active_w4,
        max(dateDiff('day', k.join_day, m.day) BETWEEN 84 AND 90) AS active_w12
    FROM engagement.member_days AS m
    INNER JOIN cohort AS k ON k.community_id = m.community_id AND k.member_id = m.member_id
    GROUP BY m.community_id, m.member_id
)
SELECT
    k.community_id AS community_id,
    toMonday(k.join_day) AS cohort_week,
    k.join_source AS join_source,
    count() AS cohort_members,
    countIf(k.join_day + 13 < k.clock_day) AS eligible_w1,
    countIf(k.join_day + 13 < k.clock_day AND a.active_w1) AS retained_w1,
    if(eligible_w1 = 0, NULL, retained_w1 / eligible_w1) AS retention_w1,
    countIf(k.join_day + 34 < k.clock_day) AS eligible_w4,
    countIf(k.join_day + 34 < k.clock_day AND a.active_w4) AS retained_w4,
    if(eligible_w4 = 0, NULL, retained_w4 / eligible_w4) AS retention_w4,
    countIf(k.join_day + 90 < k.clock_day) AS eligible_w12,
    countIf(k.join_day + 90 < k.clock_day AND a.active_w12) AS retained_w12,
    if(eligible_w12 = 0, NULL, retained_w12 / eligible_w12) AS retention_w12
FROM cohort AS k
LEFT JOIN activity AS a ON a.community_id = k.community_id AND a.member_id = k.member_id
GROUP BY community_id, cohort_week, join_source;

-- One row per eligible member with events: lifecycle state relative to the clock.
CREATE OR REPLACE VIEW engagement.v_lifecycle AS
WITH
history AS
(
    SELECT
        m.community_id AS community_id,
        m.member_id AS member_id,
        any(c.clock) AS community_clock,
        any(c.clock_day) AS community_clock_day,
        min(m.day) AS first_day,
        max(m.day) AS last_day,
        uniqExact(m.day) AS active_days,
        minIf(m.day, m.day > c.clock_day - 14) AS first_recent_day,
        maxIf(m.day, m.day <= c.clock_day - 14) AS prior_day
    FROM engagement.member_days AS m
    INNER JOIN engagement.v_community_clock AS c ON c.community_id = m.community_id
    WHERE (m.community_id, m.member_id) NOT IN
        (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
    GROUP BY m.community_id, m.member_id
)
SELECT
    h.community_id AS community_id,
    h.member_id AS member_id,
    multiIf(
        h.first_day > h.community_clock_day - 14, 'new',
        h.last_day > h.community_clock_day - 14 AND h.first_recent_day - h.prior_day - 1 >= 30, 'returning',
        h.last_day > h.community_clock_day - 14, 'active',
        h.last_day > h.community_clock_day - 30, 'at_risk',
        'lapsed'
    ) AS state,
    h.community_clock AS clock,
    h.first_day AS first_day,
    h.last_day AS last_day,
    dateDiff('day', h.last_day, h.community_clock_day) AS idle_days,
    h.active_days AS active_days,
    if(state = 'returning', h.first_recent_day - h.prior_day - 1, NULL) AS silent_days_before_return,
    mc.tier AS tier,
    mc.join_source AS join_source
FROM history AS h
LEFT JOIN engagement.v_member_current AS mc
    ON mc.community_id = h.community_id AND mc.member_id = h.member_id;

-- Per community: how recently and how regularly the owner posts (comments by owners).
CREATE OR REPLACE VIEW engagement.v_owner_cadence AS
WITH
posts AS
(
    SELECT
        community_id,
        day,
        uniqExactMerge(events) AS posts,
        max(last_at) AS last_post_at
    FROM engagement.daily_events
    WHERE type = 'comment' AND actor_role = 'owner'
    GROUP BY community_id, day
)
SELECT
    c.community_id AS community_id,
    c.clock AS clock,
    maxIf(toNullable(p.last_post_at), p.posts > 0) AS owner_last_post_at,
    dateDiff('day', toDate(owner_last_post_at), c.clock_day) AS days_since_owner_post,
    sumIf(p.posts, dateDiff('day', p.day, c.clock_day) < 28) AS owner_posts_28d,
    owner_posts_28d / 4 AS owner_posts_per_week_4w,
    sumIf(p.posts, dateDiff('day', p.day, c.clock_day) < 84) AS owner_posts_84d,
    owner_posts_84d / 12 AS owner_posts_per_week_12w,
    uniqExactIf(intDiv(dateDiff('day', p.day, c.clock_day), 7), p.posts > 0
        AND dateDiff('day', p.day, c.clock_day) < 84) AS owner_weeks_with_post_12w,
    sum(p.posts) AS owner_posts_total
FROM engagement.v_community_clock AS c
LEFT JOIN posts AS p ON p.community_id = c.community_id
GROUP BY c.community_id, c.clock, c.clock_day;

-- Per community: share of current creation (member_state, eligible members only) held
-- by the top 1% and top 20% of members, next to the worker's own latest figures.
CREATE OR REPLACE VIEW engagement.v_concentration AS
WITH
ranked AS
(
    SELECT
        community_id,
        creation,
        creation_rank,
        eligible_members AS community_eligible,
        sum(creation) OVER (PARTITION BY community_id) AS creation_total,
        sum(creation) OVER (
            PARTITION BY community_id ORDER BY creation_rank ASC
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS creation_before
    FROM engagement.v_member_current
    WHERE is_eligible
),
worker AS
(
    SELECT
        community_id,
        argMax((as_of, top1_creation_share, top20_creation_share), as_of) AS snap
    FROM engagement.community_state FINAL
    GROUP BY community_id
)
SELECT
    r.community_id AS community_id,
    count() AS eligible_members,
    sum(r.creation) AS total_creation,
    greatest(1, intDiv(eligible_members + 99, 100)) AS top1_members,
    greatest(1, intDiv(eligible_members + 4, 5)) AS top20_members,
    sumIf(r.creation, r.creation_rank <= greatest(1, intDiv(r.community_eligible + 99, 100))) AS top1_creation,
    sumIf(r.creation, r.creation_rank <= greatest(1, intDiv(r.community_eligible + 4, 5))) AS top20_creation,
    if(total_creation > 0, top1_creation / total_creation, NULL) AS top1_share,
    if(total_creation > 0, top20_creation / total_creation, NULL) AS top20_share,
    if(total_creation > 0, countIf(r.creation_before < r.creation_total / 2), NULL)
        AS members_for_half_creation,
    any(toNullable(w.snap.1)) AS worker_as_of,
    any(toNullable(w.snap.2)) AS worker_top1_share,
    any(toNullable(w.snap.3)) AS worker_top20_share
FROM ranked AS r
LEFT JOIN worker AS w ON w.community_id = r.community_id
GROUP BY r.community_id;

-- Per community and UTC day: what happened, each event counted once.
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
    GROUP BY community_id, day
)
GROUP BY community_id, day;
