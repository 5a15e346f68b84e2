"""Every Prometheus metric the pipeline exposes, in one place (documented in docs/metrics.md).

Base units (seconds, bytes), `_total` on counters, and bounded labels only:
platform, outcome, reason, type, tier, table, topic and partition. Never a
member or community id.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from schemas.outputs import ModerationAction, Tier

PLATFORMS = ("canonical", "slack", "discourse", "github", "bettermode", "moderation")
WEBHOOK_PLATFORMS = ("slack", "discourse", "github", "bettermode")
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
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
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
    counts = [0] * len(bounds)
    total = 0.0
    for v in values:
        v = max(0.0, v)
        counts[bisect_left(bounds, v)] += 1
        total += v
    for i, n in enumerate(counts):
        if n:
            h._buckets[i].inc(n)
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

# --- recovery ------------------------------------------------------------------
STATE_RESTORED = Counter(
    "engage_state_restored_communities_total", "Community snapshots restored from the changelog-backed table."
)
STATE_REPLAYED = Counter(
    "engage_state_replayed_events_total", "Events re-read from the log to bring restored state up to date."
)
STATE_SNAPSHOTS = Counter("engage_state_snapshots_total", "Community snapshots written to the changelog.")
