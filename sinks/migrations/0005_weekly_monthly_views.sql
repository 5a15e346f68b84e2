-- Weekly and monthly questions, eligible members wherever a view counts people, rates over
-- a community's real age, and one naming rule for moments, days, weeks and months.
-- docs/analytics.md documents every column; its words are the COMMENTs at the end.
--
-- 1. Rollups with mergeable states: weekly_members and monthly_members hold the set of
--    member ids active per community and week / month (uniqExactState: distinct counts do
--    not add up across days, sets merge exactly); weekly_snapshots holds each week's last
--    community_state snapshot (argMaxState by (as_of, version), as FINAL would pick it).
--    Backfilled below; a backfill overlapping the views counts nothing twice.
-- 2. New views: v_weekly (WAU), v_monthly (MAU, DAU/MAU stickiness), v_tier_mix_weekly,
--    v_retention_weekly (retention by join source, week by week, per community).
-- 3. Fixes: v_daily counts eligible members only (active_members, new_creators: no staff, no
--    flagged or confirmed spam); v_owner_cadence divides by the weeks the community has
--    existed when it is younger than the window; v_community_clock gains the community's age.
-- 4. Names: in the views a moment is `*_at`, a UTC day `day`/`*_day`, a week `week`/`*_week`
--    (its Monday), a month `month` (its first day). Columns that broke the rule keep their
--    old name next to the new one (clock = clock_at, as_of = snapshot_at / scored_at, ...).
--
-- Every statement is idempotent (IF NOT EXISTS, OR REPLACE, set-valued backfills, comments),
-- so a run stopped before its ledger entry can simply run again.
-- Statements end with a semicolon at a line end (sinks/migrate.py splits there).

CREATE TABLE IF NOT EXISTS engagement.weekly_members
(
    community_id String,
    week         Date,
    members      AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(week)
ORDER BY (community_id, week);

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement.mv_weekly_members TO engagement.weekly_members AS
SELECT
    community_id,
    toMonday(occurred_at) AS week,
    uniqExactState(member_id) AS members
FROM engagement.events
WHERE actor_role = 'member'
GROUP BY community_id, week;

CREATE TABLE IF NOT EXISTS engagement.monthly_members
(
    community_id String,
    month        Date,
    members      AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(month)
ORDER BY (community_id, month);

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement.mv_monthly_members TO engagement.monthly_members AS
SELECT
    community_id,
    toStartOfMonth(occurred_at) AS month,
    uniqExactState(member_id) AS members
FROM engagement.events
WHERE actor_role = 'member'
GROUP BY community_id, month;

CREATE TABLE IF NOT EXISTS engagement.weekly_snapshots
(
    community_id String,
    week         Date,
    snapshot     AggregateFunction(
        argMax,
        Tuple(DateTime64(3, 'UTC'), UInt64, UInt64, UInt64, UInt64, UInt64, UInt64),
        Tuple(DateTime64(3, 'UTC'), UInt64)
    )
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(week)
ORDER BY (community_id, week);

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement.mv_weekly_snapshots TO engagement.weekly_snapshots AS
SELECT
    community_id,
    toMonday(as_of) AS week,
    argMaxState((as_of, members, lurkers, curators, creators, ambassadors, active_creators), (as_of, version))
        AS snapshot
FROM engagement.community_state
GROUP BY community_id, week;

INSERT INTO engagement.weekly_members
SELECT community_id, toMonday(occurred_at) AS week, uniqExactState(member_id) AS members
FROM engagement.events
WHERE actor_role = 'member'
GROUP BY community_id, week;

INSERT INTO engagement.monthly_members
SELECT community_id, toStartOfMonth(occurred_at) AS month, uniqExactState(member_id) AS members
FROM engagement.events
WHERE actor_role = 'member'
GROUP BY community_id, month;

INSERT INTO engagement.weekly_snapshots
SELECT
    community_id,
    toMonday(as_of) AS week,
    argMaxState((as_of, members, lurkers, curators, creators, ambassadors, active_creators), (as_of, version))
        AS snapshot
FROM engagement.community_state
GROUP BY community_id, week;

-- The community clock, and the community's age: from its first event's day to the clock's day.
CREATE OR REPLACE VIEW engagement.v_community_clock AS
SELECT
    community_id,
    max(last_at) AS clock,
    toDate(max(last_at)) AS clock_day,
    max(last_at) AS clock_at,
    min(first_at) AS first_event_at,
    toDate(min(first_at)) AS first_day,
    toUInt32(dateDiff('day', toDate(min(first_at)), toDate(max(last_at))) + 1) AS age_days
FROM engagement.daily_events
GROUP BY community_id;

-- As 0003, with the `_at` names appended.
CREATE OR REPLACE VIEW engagement.v_member_current AS
WITH
latest AS
(
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
        if(
            decay_rate > 0,
            decay_rate,
            ifNull((SELECT argMax(decay_rate, version) FROM engagement.member_state WHERE decay_rate > 0), 0)
        ) AS rate,
        max(as_of) OVER (PARTITION BY community_id) AS newest_as_of
    FROM engagement.member_state FINAL
),
clocks AS
(
    SELECT community_id, toNullable(clock) AS clock FROM engagement.v_community_clock
),
decayed AS
(
    SELECT
        m.*,
        CAST(greatest(ifNull(c.clock, m.newest_as_of), m.newest_as_of) AS DateTime64(3, 'UTC')) AS scores_at,
        exp(-m.rate * ((toUnixTimestamp64Milli(scores_at) - toUnixTimestamp64Milli(m.as_of)) / 1000))
            AS factor
    FROM latest AS m
    LEFT JOIN clocks AS c ON c.community_id = m.community_id
)
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
    if(is_eligible, creation_rank / eligible_members, NULL) AS creation_top_fraction,
    rate AS decay_rate,
    scores_at AS clock,
    creation * factor AS creation_now,
    curation * factor AS curation_now,
    received * factor AS received_now,
    as_of AS scored_at,
    first_seen AS first_seen_at,
    last_active AS last_active_at,
    scores_at AS clock_at
FROM decayed
WINDOW by_creation AS (PARTITION BY community_id, is_eligible ORDER BY creation_now DESC, member_id ASC);

-- As 0002, with snapshot_at appended.
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
    creating_share - benchmark_creating_share AS creating_gap,
    snap.1 AS snapshot_at
FROM
(
    SELECT
        community_id,
        toDate(as_of) AS day,
        argMax((as_of, members, lurkers, curators, creators, ambassadors), as_of) AS snap
    FROM engagement.community_state FINAL
    GROUP BY community_id, day
);

-- As 0002, with snapshot_at, clock_at and critical_mass_since_at appended.
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
    if(critical_mass, toNullable(h.critical_mass_run_start), NULL) AS critical_mass_since,
    h.latest_as_of AS snapshot_at,
    clocks.clock AS clock_at,
    critical_mass_since AS critical_mass_since_at
FROM history AS h
LEFT JOIN clocks ON clocks.community_id = h.community_id;

-- As 0002, with clock_at appended.
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
    mc.join_source AS join_source,
    h.community_clock AS clock_at
FROM history AS h
LEFT JOIN engagement.v_member_current AS mc
    ON mc.community_id = h.community_id AND mc.member_id = h.member_id;

-- Rates over the weeks the community has existed when that is less than the window: a
-- community 60 days old with 30 owner posts posted 3.5 a week, not 30 / 12 = 2.5.
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
    owner_posts_28d / (least(28, c.age_days) / 7) AS owner_posts_per_week_4w,
    sumIf(p.posts, dateDiff('day', p.day, c.clock_day) < 84) AS owner_posts_84d,
    owner_posts_84d / (least(84, c.age_days) / 7) AS owner_posts_per_week_12w,
    uniqExactIf(intDiv(dateDiff('day', p.day, c.clock_day), 7), p.posts > 0
        AND dateDiff('day', p.day, c.clock_day) < 84) AS owner_weeks_with_post_12w,
    sum(p.posts) AS owner_posts_total,
    c.clock AS clock_at,
    c.age_days AS community_age_days,
    toUInt64(least(12, intDiv(c.age_days + 6, 7))) AS owner_weeks_observed_12w
FROM engagement.v_community_clock AS c
LEFT JOIN posts AS p ON p.community_id = c.community_id
GROUP BY c.community_id, c.clock, c.clock_day, c.age_days;

-- As 0003, with worker_snapshot_at and clock_at appended.
CREATE OR REPLACE VIEW engagement.v_concentration AS
WITH
ranked AS
(
    SELECT
        community_id,
        clock,
        creation_now,
        creation_rank,
        eligible_members AS community_eligible,
        sum(creation_now) OVER (PARTITION BY community_id) AS creation_total,
        sum(creation_now) OVER (
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
        toNullable(max(as_of)) AS latest_as_of,
        toNullable(argMax(top1_creation_share, as_of)) AS latest_top1_share,
        toNullable(argMax(top20_creation_share, as_of)) AS latest_top20_share
    FROM engagement.community_state FINAL
    GROUP BY community_id
)
SELECT
    r.community_id AS community_id,
    count() AS eligible_members,
    sum(r.creation_now) AS total_creation,
    greatest(1, intDiv(eligible_members + 99, 100)) AS top1_members,
    greatest(1, intDiv(eligible_members + 4, 5)) AS top20_members,
    sumIf(r.creation_now, r.creation_rank <= greatest(1, intDiv(r.community_eligible + 99, 100))) AS top1_creation,
    sumIf(r.creation_now, r.creation_rank <= greatest(1, intDiv(r.community_eligible + 4, 5))) AS top20_creation,
    if(total_creation > 0, top1_creation / total_creation, NULL) AS top1_share,
    if(total_creation > 0, top20_creation / total_creation, NULL) AS top20_share,
    if(total_creation > 0, countIf(r.creation_before < r.creation_total / 2), NULL)
        AS members_for_half_creation,
    any(w.latest_as_of) AS worker_as_of,
    any(w.latest_top1_share) AS worker_top1_share,
    any(w.latest_top20_share) AS worker_top20_share,
    any(r.clock) AS clock,
    any(w.latest_as_of) AS worker_snapshot_at,
    any(r.clock) AS clock_at
FROM ranked AS r
LEFT JOIN worker AS w ON w.community_id = r.community_id
GROUP BY r.community_id;

-- As 0002, but people are eligible members only: a spam profile or an owner promoted to
-- creator is no new creator, and neither is active.
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
    GROUP BY community_id, day
)
GROUP BY community_id, day;

-- Per community and week: events, weekly active members (WAU), new members and new creators.
-- WAU is the week's set of members minus those not eligible now (few: staff never enter the
-- set, so only flagged or confirmed spam), so it stays exact without reading every member-day.
CREATE OR REPLACE VIEW engagement.v_weekly AS
WITH
counts AS
(
    SELECT
        community_id,
        toMonday(day) AS week,
        uniqExactMergeIf(events, type = 'join') AS joins,
        uniqExactMergeIf(events, type = 'like') AS likes,
        uniqExactMergeIf(events, type = 'share') AS shares,
        uniqExactMergeIf(events, type = 'comment') AS comments
    FROM engagement.daily_events
    GROUP BY community_id, week
),
active AS
(
    SELECT community_id, week, uniqExactMerge(members) AS members
    FROM engagement.weekly_members
    GROUP BY community_id, week
),
excluded AS
(
    SELECT community_id, toMonday(day) AS week, uniqExact(member_id) AS members
    FROM engagement.member_days
    WHERE (community_id, member_id) IN
        (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
    GROUP BY community_id, week
),
joined AS
(
    SELECT community_id, toMonday(min(joined_at)) AS week, member_id
    FROM engagement.member_joins
    WHERE (community_id, member_id) NOT IN
        (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
    GROUP BY community_id, member_id
),
promoted AS
(
    SELECT community_id, toMonday(at) AS week, uniqExact(member_id) AS members
    FROM engagement.tier_changes
    WHERE to_tier IN ('creator', 'ambassador') AND from_tier IN ('lurker', 'curator')
        AND (community_id, member_id) NOT IN
            (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
    GROUP BY community_id, week
)
SELECT
    k.community_id AS community_id,
    k.week AS week,
    k.week + 6 < c.clock_day AS complete,
    k.joins AS joins,
    k.likes AS likes,
    k.shares AS shares,
    k.comments AS comments,
    a.members - x.members AS active_members,
    toUInt64(j.new_members) AS new_members,
    p.members AS new_creators
FROM counts AS k
INNER JOIN engagement.v_community_clock AS c ON c.community_id = k.community_id
LEFT JOIN active AS a ON a.community_id = k.community_id AND a.week = k.week
LEFT JOIN excluded AS x ON x.community_id = k.community_id AND x.week = k.week
LEFT JOIN (SELECT community_id, week, count() AS new_members FROM joined GROUP BY community_id, week) AS j
    ON j.community_id = k.community_id AND j.week = k.week
LEFT JOIN promoted AS p ON p.community_id = k.community_id AND p.week = k.week;

-- Per community and calendar month: monthly active members (MAU), the average daily active
-- members over the month's observed days, and stickiness = that average / MAU (DAU/MAU).
CREATE OR REPLACE VIEW engagement.v_monthly AS
WITH
counts AS
(
    SELECT
        community_id,
        toStartOfMonth(day) AS month,
        uniqExactMergeIf(events, type = 'join') AS joins,
        uniqExactMergeIf(events, type = 'like') AS likes,
        uniqExactMergeIf(events, type = 'share') AS shares,
        uniqExactMergeIf(events, type = 'comment') AS comments
    FROM engagement.daily_events
    GROUP BY community_id, month
),
active AS
(
    SELECT community_id, month, uniqExactMerge(members) AS members
    FROM engagement.monthly_members
    GROUP BY community_id, month
),
excluded AS
(
    SELECT community_id, toStartOfMonth(day) AS month, uniqExact(member_id) AS members
    FROM engagement.member_days
    WHERE (community_id, member_id) IN
        (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
    GROUP BY community_id, month
),
member_days AS
(
    SELECT community_id, toStartOfMonth(day) AS month, uniqExact(member_id, day) AS member_days
    FROM engagement.member_days
    WHERE (community_id, member_id) NOT IN
        (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
    GROUP BY community_id, month
),
joined AS
(
    SELECT community_id, toStartOfMonth(min(joined_at)) AS month, member_id
    FROM engagement.member_joins
    WHERE (community_id, member_id) NOT IN
        (SELECT community_id, member_id FROM engagement.v_member_current WHERE NOT is_eligible)
    GROUP BY community_id, member_id
)
SELECT
    k.community_id AS community_id,
    k.month AS month,
    toLastDayOfMonth(k.month) < c.clock_day AS complete,
    toUInt32(dateDiff('day', greatest(k.month, c.first_day), least(toLastDayOfMonth(k.month), c.clock_day)) + 1)
        AS observed_days,
    k.joins AS joins,
    k.likes AS likes,
    k.shares AS shares,
    k.comments AS comments,
    a.members - x.members AS active_members,
    d.member_days / observed_days AS daily_active_avg,
    if(active_members = 0, NULL, daily_active_avg / active_members) AS stickiness,
    toUInt64(j.new_members) AS new_members
FROM counts AS k
INNER JOIN engagement.v_community_clock AS c ON c.community_id = k.community_id
LEFT JOIN active AS a ON a.community_id = k.community_id AND a.month = k.month
LEFT JOIN excluded AS x ON x.community_id = k.community_id AND x.month = k.month
LEFT JOIN member_days AS d ON d.community_id = k.community_id AND d.month = k.month
LEFT JOIN (SELECT community_id, month, count() AS new_members FROM joined GROUP BY community_id, month) AS j
    ON j.community_id = k.community_id AND j.month = k.month;

-- Per community and week: the week's last community_state snapshot next to 90-9-1.
CREATE OR REPLACE VIEW engagement.v_tier_mix_weekly AS
SELECT
    community_id,
    week,
    snap.1 AS snapshot_at,
    snap.2 AS members,
    snap.3 AS lurkers,
    snap.4 AS curators,
    snap.5 AS creators,
    snap.6 AS ambassadors,
    snap.7 AS active_creators,
    lurkers + curators + creators + ambassadors AS tiered_members,
    if(tiered_members = 0, NULL, lurkers / tiered_members) AS lurker_share,
    if(tiered_members = 0, NULL, curators / tiered_members) AS curator_share,
    if(tiered_members = 0, NULL, creators / tiered_members) AS creator_share,
    if(tiered_members = 0, NULL, ambassadors / tiered_members) AS ambassador_share,
    if(tiered_members = 0, NULL, (creators + ambassadors) / tiered_members) AS creating_share,
    lurker_share - 0.90 AS lurker_gap,
    curator_share - 0.09 AS curator_gap,
    creating_share - 0.01 AS creating_gap
FROM
(
    SELECT community_id, week, argMaxMerge(snapshot) AS snap
    FROM engagement.weekly_snapshots
    GROUP BY community_id, week
);

-- Weekly join cohorts per community and source, and their retention in each of the 12 weeks
-- after joining (the rules of v_retention_by_source, whose w1, w4 and w12 it repeats).
CREATE OR REPLACE VIEW engagement.v_retention_weekly AS
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
        groupUniqArray(toUInt8(intDiv(dateDiff('day', k.join_day, m.day), 7))) AS active_weeks
    FROM engagement.member_days AS m
    INNER JOIN cohort AS k ON k.community_id = m.community_id AND k.member_id = m.member_id
    WHERE m.day >= k.join_day + 7 AND m.day < k.join_day + 91
    GROUP BY m.community_id, m.member_id
)
SELECT
    k.community_id AS community_id,
    toMonday(k.join_day) AS cohort_week,
    k.join_source AS join_source,
    arrayJoin(range(toUInt8(1), toUInt8(13))) AS weeks_after,
    count() AS cohort_members,
    countIf(k.join_day + 7 * weeks_after + 6 < k.clock_day) AS eligible_members,
    countIf(k.join_day + 7 * weeks_after + 6 < k.clock_day AND has(a.active_weeks, weeks_after)) AS retained_members,
    if(eligible_members = 0, NULL, retained_members / eligible_members) AS retention
FROM cohort AS k
LEFT JOIN activity AS a ON a.community_id = k.community_id AND a.member_id = k.member_id
GROUP BY community_id, cohort_week, join_source, weeks_after;

-- Comments (docs/analytics.md): the new rollups, their views, and every view, whose
-- CREATE OR REPLACE above (or in 0002, 0003) left them without.

ALTER TABLE engagement.weekly_members
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN week 'the week\'s Monday, UTC (toMonday(occurred_at))',
    COMMENT COLUMN members 'uniqExact state of member_id: read with uniqExactMerge(members)';
ALTER TABLE engagement.weekly_members MODIFY COMMENT 'Per community and week (Monday, UTC): the members (actor_role = \'member\') with any event that week, as a set of ids.';

ALTER TABLE engagement.monthly_members
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN month 'the month\'s first day, UTC (toStartOfMonth(occurred_at))',
    COMMENT COLUMN members 'uniqExact state of member_id: read with uniqExactMerge(members)';
ALTER TABLE engagement.monthly_members MODIFY COMMENT 'Per community and calendar month (UTC): the members (actor_role = \'member\') with any event that month, as a set of ids.';

ALTER TABLE engagement.weekly_snapshots
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN week 'the week\'s Monday, UTC (toMonday(as_of))',
    COMMENT COLUMN snapshot 'argMax state of (as_of, members, lurkers, curators, creators, ambassadors, active_creators) by (as_of, version): the latest snapshot, highest version; read with argMaxMerge(snapshot)';
ALTER TABLE engagement.weekly_snapshots MODIFY COMMENT 'Per community and week (Monday, UTC): the week\'s last community_state snapshot.';

ALTER TABLE engagement.mv_weekly_members
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN week 'the week\'s Monday, UTC (toMonday(occurred_at))',
    COMMENT COLUMN members 'uniqExact state of member_id: read with uniqExactMerge(members)';
ALTER TABLE engagement.mv_weekly_members MODIFY COMMENT 'Feeds engagement.weekly_members: Per community and week (Monday, UTC): the members (actor_role = \'member\') with any event that week, as a set of ids.';

ALTER TABLE engagement.mv_monthly_members
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN month 'the month\'s first day, UTC (toStartOfMonth(occurred_at))',
    COMMENT COLUMN members 'uniqExact state of member_id: read with uniqExactMerge(members)';
ALTER TABLE engagement.mv_monthly_members MODIFY COMMENT 'Feeds engagement.monthly_members: Per community and calendar month (UTC): the members (actor_role = \'member\') with any event that month, as a set of ids.';

ALTER TABLE engagement.mv_weekly_snapshots
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN week 'the week\'s Monday, UTC (toMonday(as_of))',
    COMMENT COLUMN snapshot 'argMax state of (as_of, members, lurkers, curators, creators, ambassadors, active_creators) by (as_of, version): the latest snapshot, highest version; read with argMaxMerge(snapshot)';
ALTER TABLE engagement.mv_weekly_snapshots MODIFY COMMENT 'Feeds engagement.weekly_snapshots: Per community and week (Monday, UTC): the week\'s last community_state snapshot.';

ALTER TABLE engagement.v_community_clock
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN clock 'latest occurred_at of any event of the community (clock is the older name)',
    COMMENT COLUMN clock_day 'toDate(clock_at), UTC',
    COMMENT COLUMN clock_at 'latest occurred_at of any event of the community (clock is the older name)',
    COMMENT COLUMN first_event_at 'earliest occurred_at of any event of the community',
    COMMENT COLUMN first_day 'toDate(first_event_at), UTC',
    COMMENT COLUMN age_days 'UTC days from first_day to clock_day, both counted (1 on the first day)';
ALTER TABLE engagement.v_community_clock MODIFY COMMENT 'Per community with events: its clock (the latest event time) and its age.';

ALTER TABLE engagement.v_concentration
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN eligible_members 'n',
    COMMENT COLUMN total_creation 'sum of creation (at the clock) of eligible members',
    COMMENT COLUMN top1_members 'how many members the top 1% / 20% are',
    COMMENT COLUMN top20_members 'how many members the top 1% / 20% are',
    COMMENT COLUMN top1_creation 'their creation',
    COMMENT COLUMN top20_creation 'their creation',
    COMMENT COLUMN top1_share 'their share of the total; NULL when the total is 0',
    COMMENT COLUMN top20_share 'their share of the total; NULL when the total is 0',
    COMMENT COLUMN members_for_half_creation 'fewest members whose creation reaches half the total ("carried by a few" when small); NULL when the total is 0',
    COMMENT COLUMN worker_as_of 'the worker\'s latest snapshot, NULL when there is none (worker_as_of is the older name)',
    COMMENT COLUMN worker_top1_share 'the worker\'s own figures from that snapshot, for comparison; NULL when there is no snapshot',
    COMMENT COLUMN worker_top20_share 'the worker\'s own figures from that snapshot, for comparison; NULL when there is no snapshot',
    COMMENT COLUMN clock 'the moment creation is decayed to (v_member_current.clock_at; clock is the older name)',
    COMMENT COLUMN worker_snapshot_at 'the worker\'s latest snapshot, NULL when there is none (worker_as_of is the older name)',
    COMMENT COLUMN clock_at 'the moment creation is decayed to (v_member_current.clock_at; clock is the older name)';
ALTER TABLE engagement.v_concentration MODIFY COMMENT 'Per community, how much of the creation at the clock (v_member_current.creation_now, eligible members only) the top members hold.';

ALTER TABLE engagement.v_critical_mass
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN as_of 'the latest snapshot (as_of is the older name)',
    COMMENT COLUMN clock 'the community clock, NULL if the community has no events (clock is the older name)',
    COMMENT COLUMN members 'from the latest snapshot',
    COMMENT COLUMN active_creators 'from the latest snapshot',
    COMMENT COLUMN peak_active_creators 'most active creators in any snapshot',
    COMMENT COLUMN has_kernel 'active_creators >= 10: enough creators to sustain a conversation',
    COMMENT COLUMN had_kernel 'some snapshot ever had 10+ active creators',
    COMMENT COLUMN kernel_lost_at 'when the kernel was lost: the first snapshot after the last one with 10+ active creators; NULL while the kernel holds or if there never was one',
    COMMENT COLUMN size_band 'see the bands below',
    COMMENT COLUMN is_micro 'members < 30, whatever the band (8-16 communities are micro too)',
    COMMENT COLUMN progress_to_1000 'least(members / 1000, 1)',
    COMMENT COLUMN members_to_1000 'members still missing to 1,000 (0 at or past it)',
    COMMENT COLUMN critical_mass 'members >= 1000 AND active_creators >= 10',
    COMMENT COLUMN critical_mass_since 'start of the current critical-mass run: the first snapshot after the last snapshot without critical mass; NULL when not at critical mass (critical_mass_since is the older name)',
    COMMENT COLUMN snapshot_at 'the latest snapshot (as_of is the older name)',
    COMMENT COLUMN clock_at 'the community clock, NULL if the community has no events (clock is the older name)',
    COMMENT COLUMN critical_mass_since_at 'start of the current critical-mass run: the first snapshot after the last snapshot without critical mass; NULL when not at critical mass (critical_mass_since is the older name)';
ALTER TABLE engagement.v_critical_mass MODIFY COMMENT 'Per community, from the latest community_state snapshot, plus its history.';

ALTER TABLE engagement.v_daily
    COMMENT COLUMN community_id 'the community and UTC day',
    COMMENT COLUMN day 'the community and UTC day',
    COMMENT COLUMN joins 'distinct events of each type that day, everyone\'s (staff and spam included)',
    COMMENT COLUMN likes 'distinct events of each type that day, everyone\'s (staff and spam included)',
    COMMENT COLUMN shares 'distinct events of each type that day, everyone\'s (staff and spam included)',
    COMMENT COLUMN comments 'distinct events of each type that day, everyone\'s (staff and spam included)',
    COMMENT COLUMN active_members 'distinct eligible members with any event that day',
    COMMENT COLUMN new_creators 'distinct eligible members who moved from lurker or curator to creator or ambassador that day (tier_changes)',
    COMMENT COLUMN spam_flags 'distinct flags raised that day (spam_flags keys), whatever their later status';
ALTER TABLE engagement.v_daily MODIFY COMMENT 'Per community and UTC day; a day appears when it has an event, a tier change or a spam flag.';

ALTER TABLE engagement.v_lifecycle
    COMMENT COLUMN community_id 'the member',
    COMMENT COLUMN member_id 'the member',
    COMMENT COLUMN state 'new, active, returning, at_risk or lapsed',
    COMMENT COLUMN clock 'the community clock the state is relative to (clock is the older name)',
    COMMENT COLUMN first_day 'first and latest UTC day with an event',
    COMMENT COLUMN last_day 'first and latest UTC day with an event',
    COMMENT COLUMN idle_days 'days from last_day to the clock\'s day',
    COMMENT COLUMN active_days 'days with at least one event',
    COMMENT COLUMN silent_days_before_return 'for returning: silent days before coming back; NULL otherwise',
    COMMENT COLUMN tier 'from v_member_current (empty when the worker has not written the member yet)',
    COMMENT COLUMN join_source 'from v_member_current (empty when the worker has not written the member yet)',
    COMMENT COLUMN clock_at 'the community clock the state is relative to (clock is the older name)';
ALTER TABLE engagement.v_lifecycle MODIFY COMMENT 'One row per eligible member with at least one event.';

ALTER TABLE engagement.v_member_current
    COMMENT COLUMN community_id 'the member',
    COMMENT COLUMN member_id 'the member',
    COMMENT COLUMN tier 'lurker, curator, creator or ambassador (a creator in the community\'s top 1% by creation), from the row with the highest version',
    COMMENT COLUMN creation 'C: decayed creation score (comments) as of as_of, from the row with the highest version',
    COMMENT COLUMN curation 'U: decayed curation score (likes, shares) as of as_of, from the row with the highest version',
    COMMENT COLUMN received 'R: decayed score of what others did to this member\'s content, as of as_of, from the row with the highest version',
    COMMENT COLUMN as_of 'the community clock when the worker computed the row (as_of is the older name)',
    COMMENT COLUMN first_seen 'time of the member\'s first event (first_seen is the older name)',
    COMMENT COLUMN last_active 'time of the member\'s latest event (last_active is the older name)',
    COMMENT COLUMN events_counted 'events scored for this member, from the row with the highest version',
    COMMENT COLUMN join_source 'source of the member\'s join, empty if none was seen, from the row with the highest version',
    COMMENT COLUMN actor_role 'member, owner, moderator or bot, from the row with the highest version',
    COMMENT COLUMN spam_status 'none, flagged, confirmed or cleared, from the row with the highest version',
    COMMENT COLUMN version 'increases with every rewrite; the highest wins, from the row with the highest version',
    COMMENT COLUMN is_staff '1 for owners, moderators and bots',
    COMMENT COLUMN is_eligible '1 for an eligible member (role member, spam status none or cleared)',
    COMMENT COLUMN creation_rank '1 = most creation at the clock (creation_now) among the community\'s eligible members (ties: by member_id; the worker breaks ties for ambassadors by received, so on exact ties the two may differ); NULL when not eligible',
    COMMENT COLUMN eligible_members 'eligible members of the community',
    COMMENT COLUMN creation_top_fraction 'creation_rank / eligible_members: 0.05 means "in the top 5%"; NULL when not eligible',
    COMMENT COLUMN decay_rate 'the rate the _now columns use: the row\'s own, or for a row written before 0003 (stored 0) the newest row\'s rate',
    COMMENT COLUMN clock 'the moment the _now columns are decayed to, one per community: the community clock, or the community\'s newest as_of when that is later (clock is the older name)',
    COMMENT COLUMN creation_now 'C, U, R at clock: creation · exp(-decay_rate · (clock - as_of)) in seconds, and likewise',
    COMMENT COLUMN curation_now 'C, U, R at clock: creation · exp(-decay_rate · (clock - as_of)) in seconds, and likewise',
    COMMENT COLUMN received_now 'C, U, R at clock: creation · exp(-decay_rate · (clock - as_of)) in seconds, and likewise',
    COMMENT COLUMN scored_at 'the community clock when the worker computed the row (as_of is the older name)',
    COMMENT COLUMN first_seen_at 'time of the member\'s first event (first_seen is the older name)',
    COMMENT COLUMN last_active_at 'time of the member\'s latest event (last_active is the older name)',
    COMMENT COLUMN clock_at 'the moment the _now columns are decayed to, one per community: the community clock, or the community\'s newest as_of when that is later (clock is the older name)';
ALTER TABLE engagement.v_member_current MODIFY COMMENT 'The latest member_state row per member (FINAL), with eligibility, scores decayed to the community clock and rank by them.';

ALTER TABLE engagement.v_monthly
    COMMENT COLUMN community_id 'the community and the month\'s first day',
    COMMENT COLUMN month 'the community and the month\'s first day',
    COMMENT COLUMN complete '1 when the month ended before the clock\'s day',
    COMMENT COLUMN observed_days 'days of the month from the community\'s first day to the clock\'s day',
    COMMENT COLUMN joins 'distinct events of each type that month, everyone\'s (staff and spam included)',
    COMMENT COLUMN likes 'distinct events of each type that month, everyone\'s (staff and spam included)',
    COMMENT COLUMN shares 'distinct events of each type that month, everyone\'s (staff and spam included)',
    COMMENT COLUMN comments 'distinct events of each type that month, everyone\'s (staff and spam included)',
    COMMENT COLUMN active_members 'MAU: distinct eligible members with any event that month',
    COMMENT COLUMN daily_active_avg 'eligible (member, day) pairs with an event that month / observed_days: the average DAU',
    COMMENT COLUMN stickiness 'daily_active_avg / active_members (DAU/MAU); NULL when nobody was active',
    COMMENT COLUMN new_members 'eligible members whose first join was that month';
ALTER TABLE engagement.v_monthly MODIFY COMMENT 'Per community and calendar month (UTC) with an event: monthly active members (MAU) and stickiness (DAU/MAU).';

ALTER TABLE engagement.v_owner_cadence
    COMMENT COLUMN community_id 'the community',
    COMMENT COLUMN clock 'the community clock (clock is the older name)',
    COMMENT COLUMN owner_last_post_at 'latest owner comment; NULL if the owner never posted',
    COMMENT COLUMN days_since_owner_post 'UTC days from that post\'s day to the clock\'s day (0 = posted that day); NULL if never',
    COMMENT COLUMN owner_posts_28d 'owner comments in the 28 days D-27 .. D',
    COMMENT COLUMN owner_posts_per_week_4w 'owner_posts_28d per week of those 28 days the community has existed: / (least(28, community_age_days) / 7)',
    COMMENT COLUMN owner_posts_84d 'owner comments in the 84 days D-83 .. D',
    COMMENT COLUMN owner_posts_per_week_12w 'owner_posts_84d per week of those 84 days the community has existed: / (least(84, community_age_days) / 7)',
    COMMENT COLUMN owner_weeks_with_post_12w 'of the 12 seven-day weeks counted back from the clock\'s day, how many had an owner post (consistency: every observed week is best)',
    COMMENT COLUMN owner_posts_total 'all owner comments ever',
    COMMENT COLUMN clock_at 'the community clock (clock is the older name)',
    COMMENT COLUMN community_age_days 'the community\'s age_days (v_community_clock): days from its first event\'s day to the clock\'s day, both counted',
    COMMENT COLUMN owner_weeks_observed_12w 'of those 12 weeks, how many the community has existed in (at least partly): least(12, ceil(community_age_days / 7))';
ALTER TABLE engagement.v_owner_cadence MODIFY COMMENT 'Per community with events: how recently and how regularly owners post.';

ALTER TABLE engagement.v_retention_by_source
    COMMENT COLUMN community_id 'the cohort (week starts Monday)',
    COMMENT COLUMN cohort_week 'the cohort (week starts Monday)',
    COMMENT COLUMN join_source 'the cohort (week starts Monday)',
    COMMENT COLUMN cohort_members 'members who joined that week from that source',
    COMMENT COLUMN eligible_w1 'members whose week 1 / 4 / 12 has ended',
    COMMENT COLUMN retained_w1 'of those, members active in that week',
    COMMENT COLUMN retention_w1 'retained / eligible, NULL when none eligible',
    COMMENT COLUMN eligible_w4 'members whose week 1 / 4 / 12 has ended',
    COMMENT COLUMN retained_w4 'of those, members active in that week',
    COMMENT COLUMN retention_w4 'retained / eligible, NULL when none eligible',
    COMMENT COLUMN eligible_w12 'members whose week 1 / 4 / 12 has ended',
    COMMENT COLUMN retained_w12 'of those, members active in that week',
    COMMENT COLUMN retention_w12 'retained / eligible, NULL when none eligible';
ALTER TABLE engagement.v_retention_by_source MODIFY COMMENT 'Weekly join cohorts per community and join source.';

ALTER TABLE engagement.v_retention_weekly
    COMMENT COLUMN community_id 'the cohort (week starts Monday)',
    COMMENT COLUMN cohort_week 'the cohort (week starts Monday)',
    COMMENT COLUMN join_source 'the cohort (week starts Monday)',
    COMMENT COLUMN weeks_after 'N, from 1 to 12',
    COMMENT COLUMN cohort_members 'members who joined that week from that source',
    COMMENT COLUMN eligible_members 'of those, members whose week N has ended',
    COMMENT COLUMN retained_members 'of those, members active in week N',
    COMMENT COLUMN retention 'retained_members / eligible_members; NULL when none is eligible yet';
ALTER TABLE engagement.v_retention_weekly MODIFY COMMENT 'Weekly join cohorts per community and join source, with their retention in each of the 12 weeks after joining.';

ALTER TABLE engagement.v_tier_mix
    COMMENT COLUMN community_id 'the community and UTC day',
    COMMENT COLUMN day 'the community and UTC day',
    COMMENT COLUMN as_of 'the snapshot used (as_of is the older name)',
    COMMENT COLUMN members 'members of that snapshot',
    COMMENT COLUMN lurkers 'tier counts of that snapshot',
    COMMENT COLUMN curators 'tier counts of that snapshot',
    COMMENT COLUMN creators 'tier counts of that snapshot',
    COMMENT COLUMN ambassadors 'tier counts of that snapshot',
    COMMENT COLUMN tiered_members 'lurkers + curators + creators + ambassadors',
    COMMENT COLUMN lurker_share 'each tier / tiered members',
    COMMENT COLUMN curator_share 'each tier / tiered members',
    COMMENT COLUMN creator_share 'each tier / tiered members',
    COMMENT COLUMN ambassador_share 'each tier / tiered members',
    COMMENT COLUMN creating_share '(creators + ambassadors) / tiered members: the "1%" of 90-9-1',
    COMMENT COLUMN benchmark_lurker_share '0.90, 0.09, 0.01',
    COMMENT COLUMN benchmark_curator_share '0.90, 0.09, 0.01',
    COMMENT COLUMN benchmark_creating_share '0.90, 0.09, 0.01',
    COMMENT COLUMN lurker_gap 'share minus benchmark (positive: more than 90-9-1 expects)',
    COMMENT COLUMN curator_gap 'share minus benchmark (positive: more than 90-9-1 expects)',
    COMMENT COLUMN creating_gap 'share minus benchmark (positive: more than 90-9-1 expects)',
    COMMENT COLUMN snapshot_at 'the snapshot used (as_of is the older name)';
ALTER TABLE engagement.v_tier_mix MODIFY COMMENT 'Per community and UTC day, the day\'s last community_state snapshot (latest as_of that day, highest version) next to the 90-9-1 benchmark.';

ALTER TABLE engagement.v_tier_mix_weekly
    COMMENT COLUMN community_id 'the community and the week\'s Monday',
    COMMENT COLUMN week 'the community and the week\'s Monday',
    COMMENT COLUMN snapshot_at 'the snapshot used',
    COMMENT COLUMN members 'members and active_creators of that snapshot',
    COMMENT COLUMN lurkers 'tier counts of that snapshot',
    COMMENT COLUMN curators 'tier counts of that snapshot',
    COMMENT COLUMN creators 'tier counts of that snapshot',
    COMMENT COLUMN ambassadors 'tier counts of that snapshot',
    COMMENT COLUMN active_creators 'members and active_creators of that snapshot',
    COMMENT COLUMN tiered_members 'lurkers + curators + creators + ambassadors',
    COMMENT COLUMN lurker_share 'each tier / tiered members',
    COMMENT COLUMN curator_share 'each tier / tiered members',
    COMMENT COLUMN creator_share 'each tier / tiered members',
    COMMENT COLUMN ambassador_share 'each tier / tiered members',
    COMMENT COLUMN creating_share '(creators + ambassadors) / tiered members: the "1%" of 90-9-1',
    COMMENT COLUMN lurker_gap 'share minus benchmark (0.90, 0.09, 0.01)',
    COMMENT COLUMN curator_gap 'share minus benchmark (0.90, 0.09, 0.01)',
    COMMENT COLUMN creating_gap 'share minus benchmark (0.90, 0.09, 0.01)';
ALTER TABLE engagement.v_tier_mix_weekly MODIFY COMMENT 'Per community and week (Monday, UTC), the week\'s last community_state snapshot (latest as_of that week, highest version) next to the 90-9-1 benchmark.';

ALTER TABLE engagement.v_weekly
    COMMENT COLUMN community_id 'the community and the week\'s Monday',
    COMMENT COLUMN week 'the community and the week\'s Monday',
    COMMENT COLUMN complete '1 when the week ended before the clock\'s day (the last week is partial otherwise)',
    COMMENT COLUMN joins 'distinct events of each type that week, everyone\'s (staff and spam included)',
    COMMENT COLUMN likes 'distinct events of each type that week, everyone\'s (staff and spam included)',
    COMMENT COLUMN shares 'distinct events of each type that week, everyone\'s (staff and spam included)',
    COMMENT COLUMN comments 'distinct events of each type that week, everyone\'s (staff and spam included)',
    COMMENT COLUMN active_members 'WAU: distinct eligible members with any event that week',
    COMMENT COLUMN new_members 'eligible members whose first join was that week',
    COMMENT COLUMN new_creators 'distinct eligible members who moved from lurker or curator to creator or ambassador that week';
ALTER TABLE engagement.v_weekly MODIFY COMMENT 'Per community and week (Monday to Sunday, UTC) with an event: what happened, and the weekly active members (WAU).';
