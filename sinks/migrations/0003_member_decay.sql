-- Scores compared across members, decayed to one moment: the community clock.
-- docs/analytics.md ("Scores at the community clock") explains the rule.
--
-- The worker rewrites a member_state row only when the member changes (their own
-- event, something done to their content, a tier change), so a quiet member's row keeps
-- scores decayed to its own as_of. Ranking or summing those stored values across members
-- favours stale rows. Each row now carries the decay rate it was computed with
-- (lambda = ln 2 / half-life, per second), and the views decay every row to the clock:
--     value at the clock = stored value * exp(-decay_rate * (clock - as_of in seconds))
--
-- Rows written before this migration read decay_rate = 0 (the column default). The
-- worker always writes a rate > 0 (its half-life is finite and > 0), so 0 means "rate
-- not recorded": those rows use the rate of the newest row that has one (the worker's
-- current configuration, one per deployment); only while no row has a rate yet are
-- they left undecayed, as before.
--
-- Every statement is idempotent (IF NOT EXISTS, OR REPLACE), so a run interrupted
-- before the ledger entry can simply run again.
-- Statements end with a semicolon at a line end (sinks/migrate.py splits there).

ALTER TABLE engagement.member_state ADD COLUMN IF NOT EXISTS decay_rate Float64 DEFAULT 0;

-- Latest member_state row per member (FINAL: highest version wins), with eligibility,
-- the scores decayed to the community clock, and the member's rank by decayed creation
-- among the eligible members of the community. The columns of 0002 keep their names and
-- meaning (creation, curation, received are still the stored values); new columns follow.
--
-- clock: one moment per community, the community clock (v_community_clock), or the
-- newest as_of of the community's rows when that is later (rows ahead of the stored
-- events, or a community without stored events), so no row is ever decayed backwards.
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
    received * factor AS received_now
FROM decayed
WINDOW by_creation AS (PARTITION BY community_id, is_eligible ORDER BY creation_now DESC, member_id ASC);

-- Per community: share of creation at the community clock (v_member_current.creation_now,
-- eligible members only) held by the top 1% and top 20% of members, next to the
-- worker's own latest figures (NULL when the worker wrote no snapshot: 0002 showed
-- 1970-01-01 and 0 there, as the join's defaults). Column names as in 0002; clock is new.
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
    any(r.clock) AS clock
FROM ranked AS r
LEFT JOIN worker AS w ON w.community_id = r.community_id
GROUP BY r.community_id;
