"""Grafana dashboards as code (grafana-foundation-sdk), and the queries they and the alerts run.

`python deploy/grafana/dashboards.py` writes deploy/grafana/dashboards/*.json (provisioned into
Grafana by docker-compose.yml); tests/unit/test_dashboards.py fails when the JSON is stale.
`promql_expressions()` and `clickhouse_panel_sql()` list every query, ready to run, for tests.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "dashboards"
ALERTS_FILE = HERE.parent / "prometheus" / "alerts.yml"

# Datasource uids: deploy/grafana/provisioning/datasources/datasources.yml provisions these.
PROMETHEUS_UID = "prometheus"
CLICKHOUSE_UID = "clickhouse"
CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"
PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
CLICKHOUSE = dm.DataSourceRef(type_val=CLICKHOUSE_PLUGIN, uid=CLICKHOUSE_UID)

# Every ClickHouse query of the Community engagement dashboard, by panel. The views and their
# columns are a contract with sinks/migrations/0002_analytics_views.sql (docs/analytics.md):
# when they change, adjust the SQL here only. Grafana expands the macros $__dateFilter(col),
# $__conditionalAll(cond, $community) (true when "All" is selected) and ${community:singlequote};
# render_clickhouse_sql() does the same for tests. Aliases are capitalized so a result column
# never shadows the view column it is computed from.
_COMMUNITY = "$__conditionalAll(community_id IN (${community:singlequote}), $community)"
CLICKHOUSE_SQL: dict[str, str] = {
    "community_variable": "SELECT DISTINCT community_id FROM engagement.v_critical_mass ORDER BY 1",
    "tier_mix_over_time": f"""SELECT
    day AS time,
    sum(lurkers) / sum(tiered_members) AS Lurkers,
    sum(curators) / sum(tiered_members) AS Curators,
    sum(creators + ambassadors) / sum(tiered_members) AS `Creating (creators + ambassadors)`,
    sum(ambassadors) / sum(tiered_members) AS Ambassadors,
    any(benchmark_lurker_share) AS `90-9-1 lurkers`,
    any(benchmark_curator_share) AS `90-9-1 curators`,
    any(benchmark_creating_share) AS `90-9-1 creating`
FROM engagement.v_tier_mix
WHERE $__dateFilter(day) AND {_COMMUNITY}
GROUP BY day
HAVING sum(tiered_members) > 0
ORDER BY day""",
    "tier_mix_by_community": f"""SELECT
    community_id,
    day,
    members,
    lurker_share,
    curator_share,
    creating_share,
    ambassador_share,
    lurker_gap,
    curator_gap,
    creating_gap
FROM engagement.v_tier_mix
WHERE (community_id, day) IN (
        SELECT community_id, max(day)
        FROM engagement.v_tier_mix
        WHERE $__dateFilter(day)
        GROUP BY community_id
    )
    AND {_COMMUNITY}
ORDER BY members DESC
LIMIT 200""",
    "critical_mass_summary": f"""SELECT
    count() AS Communities,
    countIf(critical_mass) AS `At critical mass`,
    countIf(has_kernel) AS `With a kernel (10+ active creators)`
FROM engagement.v_critical_mass
WHERE {_COMMUNITY}""",
    "critical_mass": f"""SELECT
    community_id,
    members,
    active_creators,
    has_kernel,
    size_band,
    progress_to_1000,
    members_to_1000,
    critical_mass,
    critical_mass_since,
    kernel_lost_at
FROM engagement.v_critical_mass
WHERE {_COMMUNITY}
ORDER BY members DESC
LIMIT 200""",
    "ambassadors": f"""SELECT
    community_id,
    member_id,
    creation_now,
    curation_now,
    received_now,
    creation_rank,
    join_source,
    last_active
FROM engagement.v_member_current
WHERE tier = 'ambassador' AND is_eligible AND {_COMMUNITY}
ORDER BY community_id, creation_rank
LIMIT 500""",
    "near_ambassadors": f"""SELECT
    community_id,
    member_id,
    tier,
    creation_now,
    creation_rank,
    creation_top_fraction
FROM engagement.v_member_current
WHERE is_eligible AND tier != 'ambassador' AND creation_now > 0 AND creation_top_fraction <= 0.10
    AND {_COMMUNITY}
ORDER BY community_id, creation_rank
LIMIT 500""",
    "retention_w4_by_source": f"""SELECT
    cohort_week AS time,
    join_source,
    sum(retained_w4) / nullIf(sum(eligible_w4), 0) AS `Retained in week 4`
FROM engagement.v_retention_by_source
WHERE $__dateFilter(cohort_week) AND {_COMMUNITY}
GROUP BY cohort_week, join_source
ORDER BY time, join_source""",
    "retention_by_source": f"""SELECT
    join_source,
    sum(cohort_members) AS Joined,
    sum(retained_w1) / nullIf(sum(eligible_w1), 0) AS `Retained in week 1`,
    sum(retained_w4) / nullIf(sum(eligible_w4), 0) AS `Retained in week 4`,
    sum(retained_w12) / nullIf(sum(eligible_w12), 0) AS `Retained in week 12`
FROM engagement.v_retention_by_source
WHERE $__dateFilter(cohort_week) AND {_COMMUNITY}
GROUP BY join_source
ORDER BY Joined DESC""",
    "spam_flags_over_time": f"""SELECT
    day AS time,
    sum(spam_flags) AS `Spam flags`
FROM engagement.v_daily
WHERE $__dateFilter(day) AND {_COMMUNITY}
GROUP BY day
ORDER BY day""",
    "spam_flags_by_community": f"""SELECT
    community_id,
    sum(spam_flags) AS `Spam flags`,
    sum(joins) AS Joins,
    sum(spam_flags) / greatest(sum(joins), 1) AS `Flags per join`
FROM engagement.v_daily
WHERE $__dateFilter(day) AND {_COMMUNITY}
GROUP BY community_id
HAVING sum(spam_flags) > 0
ORDER BY `Spam flags` DESC
LIMIT 50""",
    "daily_activity": f"""SELECT
    day AS time,
    sum(joins) AS Joins,
    sum(likes) AS Likes,
    sum(shares) AS Shares,
    sum(comments) AS Comments,
    sum(active_members) AS `Active members`,
    sum(new_creators) AS `New creators`
FROM engagement.v_daily
WHERE $__dateFilter(day) AND {_COMMUNITY}
GROUP BY day
ORDER BY day""",
}

# What Grafana puts for its macros, for queries run outside Grafana (tests, the e2e stack).
RATE_INTERVAL = "5m"
_GRAFANA_PROMQL_MACROS = {"$__rate_interval": RATE_INTERVAL, "$__interval": "1m", "$__range": "1h"}
# The pipeline dashboard's instance variable, as "All" renders it.
_GRAFANA_PROMQL_MACROS["$instance"] = ".*"


# --- small builders --------------------------------------------------------------------------


class ClickHouseQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """A raw-SQL target for the official ClickHouse plugin (the SDK has no builder for it)."""

    def __init__(self, sql_key: str, *, time_series: bool, ref_id: str = "A") -> None:
        self.sql_key = sql_key
        self.time_series = time_series
        self.ref_id = ref_id

    def build(self) -> cogvariants.Dataquery:
        return UnknownDataquery(
            {
                "datasource": CLICKHOUSE.to_json(),
                "editorType": "sql",
                # The plugin's formats: 0 time series (long rows become one series per label), 1 table.
                "format": 0 if self.time_series else 1,
                "rawSql": CLICKHOUSE_SQL[self.sql_key],
                "refId": self.ref_id,
            }
        )


def _prom(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery().datasource(PROMETHEUS).expr(expr).legend_format(legend).ref_id(ref_id).range()
    )


def _quantiles(bucket: str) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    """p50, p90 and p99 of a histogram over every instance and label."""
    return [
        _prom(
            f"histogram_quantile({q}, sum by (le) (rate({bucket}[$__rate_interval])))",
            f"p{round(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))
    ]


def _timeseries(
    ids: Iterator[int],
    title: str,
    description: str,
    unit: str,
    targets: list[cogbuilder.Builder[cogvariants.Dataquery]],
    *,
    datasource: dm.DataSourceRef = PROMETHEUS,
    span: int = 12,
    height: int = 8,
    stacked: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .id(next(ids))
        .title(title)
        .description(description)
        .datasource(datasource)
        .targets(targets)
        .unit(unit)
        .span(span)
        .height(height)
        .fill_opacity(10)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
    )
    if stacked:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def _stat(
    ids: Iterator[int],
    title: str,
    description: str,
    unit: str,
    targets: list[cogbuilder.Builder[cogvariants.Dataquery]],
    *,
    datasource: dm.DataSourceRef = PROMETHEUS,
    span: int = 6,
    height: int = 4,
    red_at: float | None = None,
) -> stat.Panel:
    steps = [dm.Threshold(value=None, color="green")]
    if red_at is not None:
        steps.append(dm.Threshold(value=red_at, color="red"))
    return (
        stat.Panel()
        .id(next(ids))
        .title(title)
        .description(description)
        .datasource(datasource)
        .targets(targets)
        .unit(unit)
        .span(span)
        .height(height)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(dash.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
    )


def _table(
    ids: Iterator[int], title: str, description: str, sql_key: str, *, span: int = 12, height: int = 8
) -> table.Panel:
    return (
        table.Panel()
        .id(next(ids))
        .title(title)
        .description(description)
        .datasource(CLICKHOUSE)
        .with_target(ClickHouseQuery(sql_key, time_series=False))
        .span(span)
        .height(height)
        .filterable(True)
    )


# --- Pipeline health (Prometheus) --------------------------------------------------------------


def pipeline_health() -> dash.Dashboard:
    ids = count(1)
    r = "[$__rate_interval]"
    board = (
        dash.Dashboard("Engage / Pipeline health")
        .uid("engage-pipeline-health")
        .description("Is the pipeline keeping up, is anything dropped? Metrics: docs/metrics.md.")
        .tags(["engage", "pipeline"])
        .editable()
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("utc")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_row(dash.Row("Now").id(next(ids)))
        .with_panel(
            _stat(
                ids,
                "Targets up",
                "Gateway and workers Prometheus can scrape.",
                "none",
                [_prom('sum(up{job=~"engage-.*"})', "up")],
            )
        )
        .with_panel(
            _stat(
                ids,
                "Consumer lag",
                "Messages behind, all topics and partitions.",
                "short",
                [_prom("sum(max by (topic, partition) (engage_consumer_lag_messages))", "lag")],
                red_at=10000,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Stalled workers",
                "Workers with lag that finished no batch for ENGAGE_STALL_SECONDS.",
                "none",
                [_prom("sum(engage_worker_stalled)", "stalled")],
                red_at=1,
            )
        )
        .with_panel(
            _stat(
                ids,
                "Seconds since last flush (max)",
                "Oldest successful ClickHouse flush of any worker.",
                "s",
                [_prom("max(engage_sink_seconds_since_last_flush)", "seconds")],
                red_at=300,
            )
        )
        .with_row(dash.Row("Ingest (gateway)").id(next(ids)))
        .with_panel(
            _timeseries(
                ids,
                "Ingest by platform",
                "Canonical events acknowledged by Kafka (acks=all).",
                "ops",
                [_prom(f"sum by (platform) (rate(engage_events_produced_total{r}))", "{{platform}}")],
                stacked=True,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Deliveries by outcome",
                "HTTP deliveries to the gateway.",
                "reqps",
                [_prom(f"sum by (outcome) (rate(engage_gateway_deliveries_total{r}))", "{{outcome}}")],
                stacked=True,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Received, produced, ignored",
                "Events parsed from deliveries (valid or not), "
                "events acknowledged by Kafka, and signed deliveries of a kind we do not use; "
                "unmapped: signed deliveries lacking a field the adapter needs (also ignored).",
                "ops",
                [
                    _prom(f"sum(rate(engage_events_received_total{r}))", "received"),
                    _prom(f"sum(rate(engage_events_produced_total{r}))", "produced", "B"),
                    _prom(f"sum(rate(engage_gateway_ignored_total{r}))", "ignored", "C"),
                    _prom(f"sum(rate(engage_gateway_unmapped_total{r}))", "unmapped", "D"),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Rejected by reason",
                "Deliveries or events the gateway refused; "
                "bad_signature in bulk means a wrong secret or forged traffic.",
                "ops",
                [
                    _prom(
                        f"sum by (platform, reason) (rate(engage_events_rejected_total{r}))",
                        "{{platform}} {{reason}}",
                    )
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Gateway latency",
                "Request received to response sent, all platforms.",
                "s",
                _quantiles("engage_gateway_request_duration_seconds_bucket"),
                span=24,
            )
        )
        .with_row(dash.Row("Processing (workers)").id(next(ids)))
        .with_panel(
            _timeseries(
                ids,
                "Processing rate by type",
                "Valid events taken from Kafka by the workers.",
                "ops",
                [
                    _prom(f"sum by (type) (rate(engage_events_processed_total{r}))", "{{type}}"),
                    _prom(f"sum(rate(engage_events_duplicate_total{r}))", "duplicates", "B"),
                    _prom(f"sum(rate(engage_events_late_total{r}))", "late (stored, not scored)", "C"),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Consumer lag per partition",
                "Messages behind the end of each partition (max over workers: a rebalance can leave "
                "a stale copy).",
                "short",
                [
                    _prom(
                        "max by (topic, partition) (engage_consumer_lag_messages)", "{{topic}}/{{partition}}"
                    )
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "End-to-end latency",
                "An event's occurred_at to its row stored in ClickHouse "
                "(includes platform delays and replays of old events).",
                "s",
                _quantiles("engage_end_to_end_latency_seconds_bucket"),
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Pipeline latency",
                "Kafka append time to row stored in ClickHouse: what the pipeline itself adds.",
                "s",
                _quantiles("engage_pipeline_latency_seconds_bucket"),
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Dead-letter rate by reason",
                "Messages the workers could not read, sent to engagement.dlq.",
                "ops",
                [_prom(f"sum by (reason) (rate(engage_events_dlq_total{r}))", "{{reason}}")],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Scoring batch duration",
                "Time the pure scoring core spent on one batch.",
                "s",
                _quantiles("engage_scoring_batch_duration_seconds_bucket"),
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Analyst queries",
                "Queries on the worker's /v1/sql by outcome; `limit` means a time, memory or result limit stopped one.",
                "short",
                [_prom(f"sum by (outcome) (rate(engage_sql_queries_total{r}))", "{{outcome}}", "A")],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Checkpoint duration",
                "Time one checkpoint held state changes (changed communities serialized in a thread).",
                "s",
                _quantiles("engage_checkpoint_duration_seconds_bucket"),
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Batch size",
                "Events per batch taken from Kafka.",
                "short",
                [
                    _prom(
                        f"sum(rate(engage_worker_batch_events_sum{r}))"
                        f" / sum(rate(engage_worker_batch_events_count{r}))",
                        "mean events per batch",
                    )
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Tracked members",
                "Members held in each worker's scoring state.",
                "short",
                [_prom("sum by (instance) (engage_tracked_members)", "{{instance}}")],
            )
        )
        .with_row(dash.Row("Sink (ClickHouse)").id(next(ids)))
        .with_panel(
            _timeseries(
                ids,
                "Flushes by table",
                "Batches stored in ClickHouse per second.",
                "ops",
                [_prom(f"sum by (table) (rate(engage_sink_flush_duration_seconds_count{r}))", "{{table}}")],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Rows by table",
                "Rows stored in ClickHouse per second.",
                "rowsps",
                [_prom(f"sum by (table) (rate(engage_sink_rows_total{r}))", "{{table}}")],
                stacked=True,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Errors and retries by table",
                "Failed writes and retries; errors that persist fire EngageSinkErrors.",
                "ops",
                [
                    _prom(f"sum by (table) (rate(engage_sink_errors_total{r}))", "errors {{table}}"),
                    _prom(f"sum by (table) (rate(engage_sink_retries_total{r}))", "retries {{table}}", "B"),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Flush duration",
                "Time to store one batch, retries included.",
                "s",
                _quantiles("engage_sink_flush_duration_seconds_bucket"),
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Seconds since last flush",
                "Per worker; it grows while the worker has nothing "
                "to store, which is fine, and while the sink fails, which is not.",
                "s",
                [_prom("max by (instance) (engage_sink_seconds_since_last_flush)", "{{instance}}")],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Last successful flush by table",
                "Seconds since each table was last stored by any worker.",
                "s",
                [_prom("time() - max by (table) (engage_sink_last_success_timestamp_seconds)", "{{table}}")],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Sink paused",
                "1 while a worker paused consumption because ClickHouse cannot take writes.",
                "none",
                [_prom("max by (instance) (engage_sink_paused)", "{{instance}}")],
                span=24,
            )
        )
        .with_row(dash.Row("Worker health").id(next(ids)))
        .with_panel(
            _timeseries(
                ids,
                "Stalls",
                "1 while a worker has lag but made no progress for ENGAGE_STALL_SECONDS.",
                "none",
                [_prom("max by (instance) (engage_worker_stalled)", "{{instance}}")],
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Rebalances",
                "Consumer group rebalances seen by each worker.",
                "short",
                [_prom(f"sum by (instance) (increase(engage_rebalances_total{r}))", "{{instance}}")],
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "State recovery",
                "After a restart or rebalance: community snapshots restored, events re-read from the log "
                "to bring them up to date, and snapshots written; and messages Faust handed out of line "
                "with the log (redelivered: dropped; missing: read from the log in their place); "
                "table recoveries restarted after a changelog partition sent nothing for 20 s.",
                "short",
                [
                    _prom(f"sum(increase(engage_state_restored_communities_total{r}))", "restored communities", "A"),
                    _prom(f"sum(increase(engage_state_replayed_events_total{r}))", "replayed events", "B"),
                    _prom(f"sum(increase(engage_state_snapshots_total{r}))", "snapshots written", "C"),
                    _prom(
                        f"sum by (kind) (increase(engage_offsets_repaired_total{r}))", "offsets {{kind}}", "D"
                    ),
                    _prom(f"sum(increase(engage_table_recovery_restarts_total{r}))", "recoveries restarted", "E"),
                ],
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Seconds since last progress",
                "Now minus the time each worker last finished a batch.",
                "s",
                [
                    # `> 0`: every process exports the gauge, but only workers set it; the gateway's 0
                    # would plot as "56 years since last progress" and flatten the workers' lines.
                    _prom(
                        "time() - max by (instance) (engage_worker_last_progress_timestamp_seconds > 0)",
                        "{{instance}}",
                    )
                ],
                span=8,
            )
        )
        .with_row(dash.Row("Community signals").id(next(ids)))
        .with_panel(
            _timeseries(
                ids,
                "Spam flags by reason",
                "Spam flags raised per second, by signal.",
                "ops",
                [_prom(f"sum by (reason) (rate(engage_spam_flags_total{r}))", "{{reason}}")],
                span=8,
                stacked=True,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Tier transitions",
                "Members moving between tiers, per second.",
                "ops",
                [
                    _prom(
                        f"sum by (from_tier, to_tier) (rate(engage_tier_transitions_total{r}))",
                        "{{from_tier}} → {{to_tier}}",
                    )
                ],
                span=8,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Moderation decisions",
                "Moderators confirming or clearing spam flags.",
                "ops",
                [_prom(f"sum by (action) (rate(engage_moderation_decisions_total{r}))", "{{action}}")],
                span=8,
            )
        )
        .with_row(dash.Row("Access (gateway)").id(next(ids)))
        .with_panel(
            _timeseries(
                ids,
                "Refused for their token, and rate limited",
                "API requests refused with 401/403 by reason, and 429s by platform and limit "
                "(docs/security.md).",
                "reqps",
                [
                    _prom(
                        f"sum by (endpoint, reason) (rate(engage_gateway_auth_refusals_total{r}))",
                        "{{endpoint}} {{reason}}",
                    ),
                    _prom(
                        f"sum by (platform, limit) (rate(engage_gateway_rate_limited_total{r}))",
                        "429 {{platform}} {{limit}}",
                        "B",
                    ),
                ],
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "API tokens",
                "Tokens loaded from the tokens file, and failed reloads (the previous tokens stay in force).",
                "short",
                [
                    _prom("max(engage_gateway_api_tokens)", "tokens"),
                    _prom(f"sum(increase(engage_gateway_api_tokens_reload_errors_total{r}))", "reload errors", "B"),
                ],
            )
        )
    )
    return erasure_panels(_with_runtime_rows(board, ids), ids)


# --- Pipeline health: runtime rows (USE, versions, ClickHouse server) --------------------------
# Kept apart from the RED panels above so either can grow without touching the other.

CLICKHOUSE_JOB = "clickhouse"  # deploy/prometheus/prometheus.yml scrapes the server's :9363/metrics
_OURS = 'job=~"engage-.*", instance=~"$instance"'


def _instance_variable() -> dash.QueryVariable:
    return (
        dash.QueryVariable("instance")
        .label("Instance")
        .description("Gateway and worker processes shown by the Process (USE) and Versions panels.")
        .datasource(PROMETHEUS)
        .query('label_values(up{job=~"engage-.*"}, instance)')
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def _use_panels(ids: Iterator[int]) -> list[cogbuilder.Builder[dm.Panel]]:
    """Utilisation and saturation of each process, from prometheus_client's process and GC collectors."""
    r = "[$__rate_interval]"
    return [
        _timeseries(
            ids,
            "CPU",
            "CPU seconds per second of each process (1 = one core busy).",
            "percentunit",
            [_prom(f"sum by (instance) (rate(process_cpu_seconds_total{{{_OURS}}}{r}))", "{{instance}}")],
            span=6,
        ),
        _timeseries(
            ids,
            "Memory (resident)",
            "Resident memory of each process; a worker's grows with the members it tracks.",
            "bytes",
            [_prom(f"max by (instance) (process_resident_memory_bytes{{{_OURS}}})", "{{instance}}")],
            span=6,
        ),
        _timeseries(
            ids,
            "Open files (share of the limit)",
            "Open file descriptors over the process's limit: sockets to Kafka, ClickHouse and clients.",
            "percentunit",
            [
                _prom(
                    f"max by (instance) (process_open_fds{{{_OURS}}} / process_max_fds{{{_OURS}}})",
                    "{{instance}}",
                )
            ],
            span=6,
        ),
        _timeseries(
            ids,
            "Garbage collections",
            "Python GC collections per second, by generation: gen 2 climbing means pauses.",
            "ops",
            [
                _prom(
                    f"sum by (instance, generation) (rate(python_gc_collections_total{{{_OURS}}}{r}))",
                    "{{instance}} gen {{generation}}",
                )
            ],
            span=6,
        ),
        _timeseries(
            ids,
            "Versions running",
            "Processes per version and commit (engage_build_info): two at once means a rollout.",
            "short",
            [_prom(f"count by (version, commit) (engage_build_info{{{_OURS}}})", "{{version}} {{commit}}")],
            span=24,
            height=6,
        ),
    ]


def _clickhouse_server_panels(ids: Iterator[int]) -> list[cogbuilder.Builder[dm.Panel]]:
    """The ClickHouse server's own metrics (job `clickhouse`): load, inserts, memory, parts."""
    r = "[$__rate_interval]"
    ch = f'job="{CLICKHOUSE_JOB}"'
    return [
        _timeseries(
            ids,
            "ClickHouse queries",
            "Queries per second the server ran, and those that failed.",
            "ops",
            [
                _prom(f"sum(rate(ClickHouseProfileEvents_Query{{{ch}}}{r}))", "queries"),
                _prom(f"sum(rate(ClickHouseProfileEvents_FailedQuery{{{ch}}}{r}))", "failed", "B"),
            ],
            span=6,
        ),
        _timeseries(
            ids,
            "ClickHouse inserted rows",
            "Rows inserted per second (the workers' flushes, plus the rollups' materialized views).",
            "rowsps",
            [_prom(f"sum(rate(ClickHouseProfileEvents_InsertedRows{{{ch}}}{r}))", "rows")],
            span=6,
        ),
        _timeseries(
            ids,
            "ClickHouse memory",
            "Resident memory of the server.",
            "bytes",
            [_prom(f"max(ClickHouseAsyncMetrics_MemoryResident{{{ch}}})", "resident")],
            span=6,
        ),
        _timeseries(
            ids,
            "ClickHouse parts per partition (max)",
            "Most active parts in one partition: inserts outpacing merges; ClickHouse refuses inserts at 3,000.",
            "short",
            [_prom(f"max(ClickHouseAsyncMetrics_MaxPartCountForPartition{{{ch}}})", "parts")],
            span=6,
        ),
    ]


def _with_runtime_rows(board: dash.Dashboard, ids: Iterator[int]) -> dash.Dashboard:
    board = board.with_variable(_instance_variable()).with_row(dash.Row("Process (USE)").id(next(ids)))
    for panel in _use_panels(ids):
        board = board.with_panel(panel)
    board = board.with_row(dash.Row("ClickHouse server").id(next(ids)))
    for panel in _clickhouse_server_panels(ids):
        board = board.with_panel(panel)
    return board


def erasure_panels(board: dash.Dashboard, ids: Iterator[int]) -> dash.Dashboard:
    """Forget requests (docs/privacy.md): received, applied, still pending, and how long they take."""
    r = "[$__rate_interval]"
    return (
        board.with_row(dash.Row("Erasures").id(next(ids)))
        .with_panel(
            _stat(
                ids,
                "Erasures pending",
                "Forget requests on engagement.erasures not yet applied by every worker (engage_erasures_pending).",
                "short",
                [_prom("sum(engage_erasures_pending)", "pending")],
                span=6,
                red_at=1,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Erasures",
                "Forget requests received, by source, and applied per partition, by outcome.",
                "ops",
                [
                    _prom(f"sum by (source) (rate(engage_erasures_requested_total{r}))", "requested {{source}}"),
                    _prom(
                        f"sum by (outcome) (rate(engage_erasures_applied_total{r}))", "applied {{outcome}}", "B"
                    ),
                ],
                span=9,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Erasure duration",
                "Time to apply a batch of erasures (rebuild from the log + ClickHouse deletes).",
                "s",
                _quantiles("engage_erasure_duration_seconds_bucket"),
                span=9,
            )
        )
        .with_panel(
            _timeseries(
                ids,
                "Erased rows and forgotten events",
                "ClickHouse rows deleted or rewritten by erasures, by table; events of forgotten members "
                "dropped before state and storage (a forgotten member's platform still sending).",
                "ops",
                [
                    _prom(f"sum by (table) (rate(engage_erasure_rows_total{r}))", "{{table}}"),
                    _prom(f"sum(rate(engage_events_forgotten_total{r}))", "forgotten events", "B"),
                ],
                span=24,
            )
        )
    )


# --- Community engagement (ClickHouse) ---------------------------------------------------------


def community_engagement() -> dash.Dashboard:
    ids = count(1)
    share = "percentunit"
    return (
        dash.Dashboard("Engage / Community engagement")
        .uid("engage-community-engagement")
        .description(
            "Tiers against 90-9-1, critical mass, ambassadors, retention by join source, spam. "
            "Views: sinks/migrations, docs/analytics.md."
        )
        .tags(["engage", "community"])
        .editable()
        .refresh("5m")
        .time("now-180d", "now")
        .timezone("utc")
        .with_variable(
            dash.QueryVariable("community")
            .label("Community")
            .datasource(CLICKHOUSE)
            .query(CLICKHOUSE_SQL["community_variable"])
            .multi(True)
            .include_all(True)
            .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
        )
        .with_row(dash.Row("Participation: tier mix against 90-9-1").id(next(ids)))
        .with_panel(
            _timeseries(
                ids,
                "Tier mix vs 90-9-1",
                "Share of the tiered members of the selected communities in each tier, per day, next to "
                "the 90-9-1 benchmark (creating = creators + ambassadors, the 1%).",
                share,
                [ClickHouseQuery("tier_mix_over_time", time_series=True)],
                datasource=CLICKHOUSE,
            )
        )
        .with_panel(
            _table(
                ids,
                "Tier mix by community (latest day)",
                "Each community's last day in the period; gaps are share minus benchmark "
                "(positive: more than 90-9-1 expects).",
                "tier_mix_by_community",
            )
        )
        .with_row(dash.Row("Critical mass").id(next(ids)))
        .with_panel(
            _stat(
                ids,
                "Critical mass",
                "Communities selected, those at critical mass, and those with a "
                "kernel of 10+ active creators.",
                "none",
                [ClickHouseQuery("critical_mass_summary", time_series=False)],
                datasource=CLICKHOUSE,
                span=8,
                height=8,
            )
        )
        .with_panel(
            _table(
                ids,
                "Critical mass by community",
                "Critical mass: 1,000+ members with a kernel of 10+ "
                "active creators. Size bands: 8-16 and 1,000+ work best.",
                "critical_mass",
                span=16,
            )
        )
        .with_row(dash.Row("Ambassadors").id(next(ids)))
        .with_panel(
            _table(
                ids,
                "Ambassadors",
                "Eligible creators in the top 1% of their community by creation: the members "
                "to find, recruit and nurture. Scores are decayed to the community clock (_now).",
                "ambassadors",
                height=10,
            )
        )
        .with_panel(
            _table(
                ids,
                "Near-ambassadors",
                "The rest of the top 10% by creation at the community clock: members who would "
                "contribute more with a little help.",
                "near_ambassadors",
                height=10,
            )
        )
        .with_row(dash.Row("Retention by join source").id(next(ids)))
        .with_panel(
            _timeseries(
                ids,
                "Retained in week 4, by join source",
                "Share of each weekly join cohort active in its 4th week (of those whose week 4 has "
                "ended); promotions bring members who do not stay.",
                share,
                [ClickHouseQuery("retention_w4_by_source", time_series=True)],
                datasource=CLICKHOUSE,
            )
        )
        .with_panel(
            _table(
                ids,
                "Retention by join source",
                "Members who joined in the period, and the share active in week 1, 4 and 12 after "
                "joining (of those whose week has ended).",
                "retention_by_source",
            )
        )
        .with_row(dash.Row("Activity and spam").id(next(ids)))
        .with_panel(
            _timeseries(
                ids,
                "Spam flags over time",
                "Spam flags raised per day.",
                "short",
                [ClickHouseQuery("spam_flags_over_time", time_series=True)],
                datasource=CLICKHOUSE,
            )
        )
        .with_panel(
            _table(
                ids,
                "Spam flags by community",
                "Which communities a spam wave hits: flags raised in the period, and per join.",
                "spam_flags_by_community",
            )
        )
        .with_panel(spam_review_panel(ids))
        .with_panel(
            _timeseries(
                ids,
                "Daily activity",
                "Joins, likes, shares, comments, active members and new creators per day.",
                "short",
                [ClickHouseQuery("daily_activity", time_series=True)],
                datasource=CLICKHOUSE,
                span=24,
            )
        )
    )


# --- Spam review queue (weak-evidence flags waiting for a moderator, docs/spam.md) ---------------

CLICKHOUSE_SQL["spam_review_queue"] = f"""SELECT
    community_id,
    member_id,
    latest_status AS Status,
    latest_flagged_at AS `Flagged at`,
    latest_score AS Score,
    arrayStringConcat(latest_reasons, ', ') AS Reasons
FROM
(
    SELECT
        community_id,
        member_id,
        argMax(status, version) AS latest_status,
        argMax(flagged_at, version) AS latest_flagged_at,
        argMax(score, version) AS latest_score,
        argMax(reasons, version) AS latest_reasons
    FROM engagement.spam_flags FINAL
    WHERE $__dateFilter(flagged_at) AND {_COMMUNITY}
    GROUP BY community_id, member_id
)
WHERE latest_status IN ('review', 'flagged')
ORDER BY latest_status = 'review' DESC, latest_flagged_at DESC
LIMIT 200"""


def spam_review_panel(ids: Iterator[int]) -> table.Panel:
    """The members a moderator should look at: weak evidence (review) first, then automatic flags."""
    return _table(
        ids,
        "Spam flags to review",
        "Each member's latest flag revision still waiting for a moderator: status review (weak evidence, "
        "still counted in the scores) first, then flagged (excluded until cleared), with score and reasons. "
        "Confirm or clear with POST /v1/moderation (docs/spam.md).",
        "spam_review_queue",
        span=24,
        height=10,
    )


# --- output and query extraction ---------------------------------------------------------------


def _plain(obj: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(obj, cls=JSONEncoder))
    return data


def build() -> dict[str, dict[str, Any]]:
    """Every dashboard as plain JSON data, by file stem (deploy/grafana/dashboards/<stem>.json)."""
    return {
        "pipeline-health": _plain(pipeline_health().build()),
        "community-engagement": _plain(community_engagement().build()),
    }


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _targets(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in data.get("panels", []):
        yield from panel.get("targets", [])
        for inner in panel.get("panels", []):  # collapsed rows hold their panels
            yield from inner.get("targets", [])


def _alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS_FILE.read_text())
    return [str(rule["expr"]).strip() for group in rules["groups"] for rule in group["rules"]]


def render_promql(expr: str) -> str:
    """A dashboard expression as Prometheus runs it: Grafana's $__ macros replaced."""
    for macro, value in _GRAFANA_PROMQL_MACROS.items():
        expr = expr.replace(macro, value)
    return expr


def promql_expressions(raw: bool = False) -> list[str]:
    """Every PromQL expression of the dashboards and of alerts.yml, deduplicated, in order.

    raw=False (the default) replaces Grafana's macros so each can go to Prometheus as is.
    """
    found: list[str] = []
    for data in build().values():
        for target in _targets(data):
            if target.get("datasource", {}).get("type") == "prometheus" and target.get("expr"):
                found.append(target["expr"] if raw else render_promql(target["expr"]))
    found.extend(_alert_expressions())
    return list(dict.fromkeys(found))


def render_clickhouse_sql(sql: str) -> str:
    """A panel's SQL as ClickHouse runs it for "All communities", any date."""
    sql = re.sub(r"\$__conditionalAll\((.*?), \$community\)", r"\1", sql)
    sql = sql.replace("${community:singlequote}", "SELECT community_id FROM engagement.v_critical_mass")
    return re.sub(
        r"\$__dateFilter\((\w+)\)", r"\1 >= toDate('1970-01-01') AND \1 <= toDate('2100-01-01')", sql
    )


def clickhouse_panel_sql(raw: bool = False) -> list[str]:
    """Every ClickHouse query of the dashboards (panels and the community variable).

    raw=False (the default) expands the Grafana macros so each runs on ClickHouse as is.
    """
    found: list[str] = []
    for data in build().values():
        for target in _targets(data):
            if target.get("datasource", {}).get("type") == CLICKHOUSE_PLUGIN:
                found.append(target["rawSql"])
        for variable in data.get("templating", {}).get("list", []):
            if variable.get("datasource", {}).get("type") == CLICKHOUSE_PLUGIN:
                found.append(str(variable["query"]))
    unique = list(dict.fromkeys(found))
    return unique if raw else [render_clickhouse_sql(sql) for sql in unique]


def main(argv: list[str] | None = None) -> int:
    """Write every dashboard's JSON; `--check` only reports stale files (exit 1)."""
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stale = []
    for stem, data in build().items():
        path = OUT_DIR / f"{stem}.json"
        text = render_json(data)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not check:
            path.write_text(text)
    for path in stale:
        verb = "is stale" if check else "written"
        print(f"{path} {verb}", file=sys.stderr)
    if check and stale:
        print("regenerate with: .venv/bin/python deploy/grafana/dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
