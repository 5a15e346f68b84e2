"""Every Prometheus metric the pipeline exposes, in one place (documented in docs/metrics.md).

Base units (seconds, bytes), `_total` on counters, and bounded labels only:
platform, outcome, reason, type, tier, table, topic and partition. Never a
member or community id.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from schemas.outputs import ModerationAction, Tier
from streams.webhooks.config import PLATFORMS as WEBHOOK_PLATFORMS

# `platform` label values: the canonical API, each webhook platform, the moderation and erasure APIs
PLATFORMS = ("canonical", *WEBHOOK_PLATFORMS, "moderation", "erasures")
DELIVERY_OUTCOMES = ("accepted", "rejected", "ignored", "handshake", "unavailable")
# The gateway's own reasons and streams.webhooks.results.REASONS that reach a metric.
REJECT_REASONS = (
    "invalid", "too_large", "not_json", "bad_signature", "stale_timestamp", "no_secret", "kafka_unavailable"
)
DLQ_REASONS = ("not_utf8", "not_json", "invalid")  # streams.decode.DeadLetter.reason
SINK_TABLES = ("events", "member_state", "tier_changes", "community_state", "spam_flags", "moderation")

# --- gateway -----------------------------------------------------------------
GATEWAY_DELIVERIES = Counter(
    "engage_gateway_deliveries_total",
    "HTTP deliveries to the gateway, by platform and outcome "
    "(accepted, rejected, ignored, handshake, unavailable).",
    ["platform", "outcome"],
)
EVENTS_RECEIVED = Counter(
    "engage_events_received_total", "Events parsed from deliveries, valid or not.", ["platform"]
)
EVENTS_REJECTED = Counter(
    "engage_events_rejected_total",
    "Deliveries or events refused by the gateway, by reason "
    "(invalid, too_large, not_json, bad_signature, stale_timestamp, no_secret, kafka_unavailable).",
    ["platform", "reason"],
)
EVENTS_PRODUCED = Counter(
    "engage_events_produced_total", "Canonical events acknowledged by Kafka (acks=all).", ["platform"]
)
GATEWAY_IGNORED = Counter(
    "engage_gateway_ignored_total", "Signed, well-formed deliveries of a kind we do not use.", ["platform"]
)
GATEWAY_UNMAPPED = Counter(
    "engage_gateway_unmapped_total",
    "Signed deliveries in a shape the adapter cannot map (a required field absent), answered 200 and ignored.",
    ["platform", "field"],  # field: a path spelled in the adapters' code, so bounded
)
GATEWAY_LATENCY = Histogram(
    "engage_gateway_request_duration_seconds",
    "Time from request received to response sent.",
    ["platform"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0),
)

# --- worker --------------------------------------------------------------------
EVENTS_PROCESSED = Counter(
    "engage_events_processed_total", "Valid events taken from Kafka by the worker.", ["type"]
)
EVENTS_DLQ = Counter(
    "engage_events_dlq_total",
    "Messages sent to the dead-letter topic, by reason (not_utf8, not_json, invalid).",
    ["reason"],
)
EVENTS_DUPLICATE = Counter(
    "engage_events_duplicate_total", "Events whose event_id was already scored within the dedup window."
)
EVENTS_LATE = Counter(
    "engage_events_late_total", "Events older than the allowed lateness: stored, but not scored."
)
END_TO_END_LATENCY = Histogram(
    "engage_end_to_end_latency_seconds",
    "From an event's occurred_at to its row being stored in ClickHouse.",
    # From sub-second (live webhooks) to a day (platform retries, replays of old logs).
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
)
PIPELINE_LATENCY = Histogram(
    "engage_pipeline_latency_seconds",
    "From the Kafka append time of an event to its row being stored in ClickHouse.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300),
)
SCORING_BATCH_DURATION = Histogram(
    "engage_scoring_batch_duration_seconds",
    "Time the pure scoring core spent on one batch.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_SIZE = Histogram(
    "engage_worker_batch_events",
    "Events per batch taken from Kafka.",
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000),
)
TIER_TRANSITIONS = Counter(
    "engage_tier_transitions_total", "Tier transitions, by from and to tier.", ["from_tier", "to_tier"]
)
SPAM_FLAGS = Counter("engage_spam_flags_total", "Spam flags raised, by reason (signal).", ["reason"])
MODERATION_DECISIONS = Counter(
    "engage_moderation_decisions_total", "Moderation decisions applied, by action.", ["action"]
)
TRACKED_MEMBERS = Gauge("engage_tracked_members", "Members held in this worker's scoring state.")

# --- sink ------------------------------------------------------------------------
SINK_ROWS = Counter("engage_sink_rows_total", "Rows stored in ClickHouse, by table.", ["table"])
SINK_FLUSH_DURATION = Histogram(
    "engage_sink_flush_duration_seconds",
    "Time to store one batch in ClickHouse, retries included.",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SINK_ERRORS = Counter("engage_sink_errors_total", "Failed ClickHouse writes, by table.", ["table"])
SINK_RETRIES = Counter("engage_sink_retries_total", "ClickHouse write retries, by table.", ["table"])
SINK_LAST_SUCCESS = Gauge(
    "engage_sink_last_success_timestamp_seconds", "Unix time of the last successful flush.", ["table"]
)
SINK_SECONDS_SINCE_FLUSH = Gauge(
    "engage_sink_seconds_since_last_flush",
    "Seconds since the last successful flush of any table (0 before the first).",
)
SINK_PAUSED = Gauge(
    "engage_sink_paused", "1 while consumption is paused because ClickHouse cannot take writes."
)

# --- consumer health -----------------------------------------------------------
CONSUMER_LAG = Gauge(
    "engage_consumer_lag_messages",
    "Messages behind the end of each assigned partition.",
    ["topic", "partition"],
)
WORKER_STALLED = Gauge(
    "engage_worker_stalled", "1 when the worker has made no progress for too long while it has lag."
)
WORKER_LAST_PROGRESS = Gauge(
    "engage_worker_last_progress_timestamp_seconds", "Unix time the worker last finished a batch."
)
REBALANCES = Counter("engage_rebalances_total", "Consumer group rebalances seen by this worker.")



def count_rejected(platform: str, reason: str, events: int = 1, outcome: str = "rejected") -> None:
    """A refused request: its events by reason, and the delivery by outcome."""
    EVENTS_REJECTED.labels(platform, reason).inc(events)
    GATEWAY_DELIVERIES.labels(platform, outcome).inc()

def _preinitialise() -> None:
    """Create every bounded label combination at 0, before the first event.

    A series born at 1 has no earlier sample, so rate() and increase() miss its first
    increment (the first bad signature, the first sink error) and panels read "No data";
    a histogram born during one scrape interval has a p99 of NaN until the next request.
    """
    for platform in PLATFORMS:
        EVENTS_RECEIVED.labels(platform)
        EVENTS_PRODUCED.labels(platform)
        for outcome in DELIVERY_OUTCOMES:
            GATEWAY_DELIVERIES.labels(platform, outcome)
        for reason in REJECT_REASONS:
            EVENTS_REJECTED.labels(platform, reason)
    for platform in ("canonical", *WEBHOOK_PLATFORMS):
        GATEWAY_LATENCY.labels(platform)
    for platform in WEBHOOK_PLATFORMS:
        GATEWAY_IGNORED.labels(platform)
    for reason in DLQ_REASONS:
        EVENTS_DLQ.labels(reason)
    for before in Tier:
        for after in Tier:
            if before != after:
                TIER_TRANSITIONS.labels(before.value, after.value)
    for action in ModerationAction:
        MODERATION_DECISIONS.labels(action.value)
    for table in SINK_TABLES:
        SINK_ROWS.labels(table)
        SINK_ERRORS.labels(table)
        SINK_RETRIES.labels(table)
        SINK_FLUSH_DURATION.labels(table)


_preinitialise()


def observe_many(histogram: Histogram, values: Iterable[float]) -> None:
    """Observe many values at once: one bucket increment per bucket, not per value.

    Uses prometheus_client's (long-stable) internals: `_upper_bounds`, `_buckets`, `_sum`.
    """
    h: Any = histogram
    bounds: list[float] = h._upper_bounds
    v = np.maximum(np.fromiter(values, np.float64), 0.0)
    if not len(v):
        return
    # a value goes to the first bucket whose upper bound is >= it, as Histogram.observe does
    counts = np.bincount(np.searchsorted(bounds, v, side="left"), minlength=len(bounds))
    for i in np.flatnonzero(counts).tolist():
        h._buckets[i].inc(int(counts[i]))
    total = float(v.sum())
    if total:
        h._sum.inc(total)


_started = time.time()
_last_flush: float = 0.0


def mark_flush(table: str, now: float | None = None) -> None:
    """Record a successful flush of `table`."""
    global _last_flush
    _last_flush = time.time() if now is None else now
    SINK_LAST_SUCCESS.labels(table).set(_last_flush)


def _seconds_since_flush() -> float:
    return 0.0 if not _last_flush else max(0.0, time.time() - _last_flush)


SINK_SECONDS_SINCE_FLUSH.set_function(_seconds_since_flush)


class SinkMetrics:
    """The ClickHouse writers' metrics on this process's registry (sinks.batch_writer.WriterMetrics)."""

    def write_failed(self, table: str) -> None:
        SINK_ERRORS.labels(table).inc()
        SINK_PAUSED.set(1)

    def retrying(self, table: str) -> None:
        SINK_RETRIES.labels(table).inc()

    def stored(self, table: str, rows: int, seconds: float) -> None:
        SINK_PAUSED.set(0)
        SINK_ROWS.labels(table).inc(rows)
        SINK_FLUSH_DURATION.labels(table).observe(seconds)
        mark_flush(table)


SINK = SinkMetrics()

# --- recovery ------------------------------------------------------------------
STATE_RESTORED = Counter(
    "engage_state_restored_communities_total", "Community snapshots restored from the changelog-backed table."
)
STATE_REPLAYED = Counter(
    "engage_state_replayed_events_total", "Events re-read from the log to bring restored state up to date."
)
OFFSET_REPAIRS = ("redelivered", "missing", "stuck")
OFFSETS_REPAIRED = Counter(
    "engage_offsets_repaired_total",
    "Events-log messages Faust handed out of line with the partition's log: redelivered (in state and "
    "stored already: dropped), missing (read from the log and processed in their place) or stuck (never "
    "handed while the agent idled: the consumer is sought back to them).",
    ["kind"],
)
for _kind in OFFSET_REPAIRS:  # born at 0 (see _preinitialise)
    OFFSETS_REPAIRED.labels(_kind)
RECOVERY_RESTARTS = Counter(
    "engage_table_recovery_restarts_total",
    "Faust table recoveries the worker restarted: a changelog partition they still needed sent nothing for 20 s.",
)
STATE_SNAPSHOTS = Counter("engage_state_snapshots_total", "Community snapshots written to the changelog.")
CHECKPOINT_DURATION = Histogram(
    "engage_checkpoint_duration_seconds",
    "Time one checkpoint held state changes: copying changed communities as JSON (compressed and written to "
    "the changelog afterwards, beside the next batch).",
    buckets=(0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# --- access: tokens, rate limits, event-time bounds (docs/security.md) ---------
AUTH_ENDPOINTS = ("events", "moderation", "sql", "erasures")
AUTH_REASONS = ("missing_token", "unknown_token", "wrong_scope", "wrong_community")
RATE_LIMITS = ("token", "community")
# Reasons of engage_events_rejected_total added by the access checks.
ACCESS_REJECT_REASONS = ("unauthorized", "forbidden", "rate_limited", "event_time_future", "event_time_before_floor")

GATEWAY_AUTH_REFUSED = Counter(
    "engage_gateway_auth_refusals_total",
    "API requests refused for their token: 401 missing_token or unknown_token, 403 wrong_scope or "
    "wrong_community.",
    ["endpoint", "reason"],
)
GATEWAY_RATE_LIMITED = Counter(
    "engage_gateway_rate_limited_total",
    "Requests answered 429, by platform and the limit hit (token or community).",
    ["platform", "limit"],
)
API_TOKENS = Gauge("engage_gateway_api_tokens", "API tokens loaded from the tokens file.")
API_TOKENS_RELOAD_ERRORS = Counter(
    "engage_gateway_api_tokens_reload_errors_total",
    "Times the tokens file could not be read; the previous tokens stay in force.",
)


def _preinitialise_access() -> None:
    for endpoint in AUTH_ENDPOINTS:
        for reason in AUTH_REASONS:
            GATEWAY_AUTH_REFUSED.labels(endpoint, reason)
    for platform in PLATFORMS:
        for limit in RATE_LIMITS:
            GATEWAY_RATE_LIMITED.labels(platform, limit)
        for reason in ACCESS_REJECT_REASONS:
            EVENTS_REJECTED.labels(platform, reason)


_preinitialise_access()

SQL_QUERIES = Counter(
    "engage_sql_queries_total",
    "Analyst queries on the worker's /v1/sql, by outcome: ok, refused (not read-only, bad SQL), "
    "limit (stopped by a time, memory or result limit).",
    ["outcome"],
)
for _outcome in ("ok", "refused", "limit"):
    SQL_QUERIES.labels(_outcome)

# --- build -----------------------------------------------------------------------
# One series per process (labels bounded by construction): which version and commit it runs,
# for dashboards to show and for comparing instances during a rollout.
BUILD_INFO = Gauge(
    "engage_build_info",
    "Always 1; the labels say which version and commit this process runs, and whether its hot path is compiled.",
    ["version", "commit", "hot_path"],
)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("engage")
    except PackageNotFoundError:
        return "unknown"


def _source_commit() -> str:
    """The commit of the source checkout this module runs from (git's files, no subprocess), else
    ENGAGE_BUILD_COMMIT as an image build sets it, else "unknown"."""
    import os
    from pathlib import Path

    baked = os.environ.get("ENGAGE_BUILD_COMMIT", "").strip()
    dot_git = Path(__file__).resolve().parents[1] / ".git"
    try:
        git_dir = dot_git
        if dot_git.is_file():  # a worktree: "gitdir: <path>"
            git_dir = Path(dot_git.read_text().split(":", 1)[1].strip())
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        common = git_dir / "commondir"
        roots = [git_dir, (git_dir / common.read_text().strip()).resolve()] if common.exists() else [git_dir]
        for root in roots:
            if (root / ref).exists():
                return (root / ref).read_text().strip()
            packed = root / "packed-refs"
            if packed.exists():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split(" ", 1)[0]
    except (OSError, IndexError):
        pass
    return baked or "unknown"


def set_build_info(version: str, commit: str) -> None:
    from streams import native

    BUILD_INFO.clear()
    # "compiled" or "python": the reason for python is in native.mode (and the process's stderr)
    BUILD_INFO.labels(version, commit, native.mode.split(" ", 1)[0]).set(1)


set_build_info(_package_version(), _source_commit())
# --- erasures (docs/privacy.md) ----------------------------------------------------
ERASURE_SOURCES = ("cli", "api", "webhook:slack", "webhook:discourse", "webhook:github", "webhook:bettermode")
ERASURE_OUTCOMES = ("rebuilt", "unchanged")  # state rebuilt without the member; nothing of theirs was held
ERASURE_TABLES = (
    "events", "member_state", "tier_changes", "community_state", "spam_flags", "moderation",
    "daily_events", "member_days", "member_joins",
)
EVENTS_FORGOTTEN = Counter(
    "engage_events_forgotten_total", "Events of forgotten members dropped before state and storage."
)
ERASURES_REQUESTED = Counter(
    "engage_erasures_requested_total",
    "Forget requests written to engagement.erasures, by source (cli, api, webhook:<platform>).",
    ["source"],
)
ERASURES_APPLIED = Counter(
    "engage_erasures_applied_total",
    "Erasures applied to one partition's state and ClickHouse rows, by outcome (rebuilt, unchanged).",
    ["outcome"],
)
ERASURES_PENDING = Gauge(
    "engage_erasures_pending",
    "Erasures received on engagement.erasures and not yet fully applied by this worker.",
)
ERASURE_DURATION = Histogram(
    "engage_erasure_duration_seconds",
    "Time to apply one batch of erasures: rebuilding state from the log and deleting ClickHouse rows.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
ERASURE_ROWS = Counter(
    "engage_erasure_rows_total", "ClickHouse rows deleted or rewritten by erasures, by table.", ["table"]
)
for _source in ERASURE_SOURCES:
    ERASURES_REQUESTED.labels(_source)
for _outcome in ERASURE_OUTCOMES:
    ERASURES_APPLIED.labels(_outcome)
for _table in ERASURE_TABLES:
    ERASURE_ROWS.labels(_table)
