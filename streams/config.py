"""Configuration, read once from `ENGAGE_*` variables (and CLI flags) and passed down.

Nothing else in the code base reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from sinks.clickhouse import QueryLimits
from streams.envelopes import EnvelopeLimits
from streams.event_time import parse_floor
from streams.scoring.config import ScoringConfig
from streams.spam.config import SpamConfig

TOPIC_EVENTS = "engagement.events"
TOPIC_DLQ = "engagement.dlq"
TOPIC_TIER_CHANGES = "engagement.tier-changes"
TOPIC_SPAM_FLAGS = "engagement.spam-flags"
TOPIC_MODERATION = "engagement.moderation"
TOPIC_ERASURES = "engagement.erasures"  # forget requests, compacted (docs/privacy.md)


def _env_name(name: str) -> str:
    return "ENGAGE_" + name.upper()


@dataclass(frozen=True)
class Settings:
    """Every knob of the pipeline; each field `x` is read from `ENGAGE_X`."""

    data_dir: str = ".engage-data"
    kafka_port: int = 9092
    kafka_bootstrap: str = ""  # default: 127.0.0.1:{kafka_port}
    partitions: int = 8
    clickhouse_dsn: str = ""  # default: chdb://{data_dir}/clickhouse
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    worker_host: str = "127.0.0.1"
    worker_port: int = 6066
    app_id: str = "engage-worker"
    # The worker takes up to batch_size Kafka messages (envelopes of up to envelope_max_events each)
    # or whatever arrived within flush_seconds, whichever comes first, and runs them through the
    # pipeline in pieces of at most batch_max_events events (whole envelopes): a worker catching up
    # on small envelopes gets big pieces, one catching up on full envelopes no giant one.
    batch_size: int = 300
    batch_max_events: int = 50_000
    flush_seconds: float = 0.1  # a batch waits this long for more (p99 at 10k events/s: 1.49 s, 1.71 with 0.25)
    max_request_bytes: int = 1 << 20
    max_batch_events: int = 1000
    # Envelopes on engagement.events (streams/envelopes.py): a partition's buffer is sent at
    # whichever comes first.
    envelope_max_events: int = 1000
    envelope_max_bytes: int = 256 * 1024
    envelope_linger_ms: float = 20.0
    stall_seconds: float = 120.0
    snapshot_seconds: float = 10.0
    sink_max_retry_seconds: float = 30.0
    # While this file exists every ClickHouse write fails at the client boundary:
    # for outage drills and the outage test. Empty: off.
    fault_clickhouse_file: str = ""
    # While this file names a point (write, batch, checkpoint), the worker SIGKILLs itself there,
    # once: for kill -9 drills (`engage chaos`, streams/worker/faults.py). Empty: off.
    fault_kill_file: str = ""
    # A worker that stops heartbeating (kill -9, a lost node) loses its partitions after this.
    kafka_session_timeout_seconds: float = 10.0
    # Clients of the gateway (`engage chaos`, senders) send it as `Authorization: Bearer`; empty: none.
    api_token: str = ""
    webhook_secrets_file: str = ""
    pseudonymize_key: str = ""
    community_granularity: str = (
        "platform"  # or "channel": finer communities (Slack channel, Discourse category)
    )
    # Limits of every analyst query on the worker's /v1/sql (the compose analyst profile has the same).
    sql_max_execution_seconds: float = 30.0
    sql_max_memory_bytes: int = 2_000_000_000
    sql_max_result_rows: int = 1_000_000
    scoring_half_life_days: float = 14.0
    scoring_lateness_days: float = 7.0
    # Who may write (docs/security.md). Empty tokens file: {data_dir}/api-tokens.json.
    api_tokens_file: str = ""
    api_rate_per_token: float = 2000.0  # events/s a token may send, sustained ...
    api_burst_per_token: int = 60_000  # ... and at once
    webhook_rate_per_community: float = 100.0  # events/s one platform community may send ...
    webhook_burst_per_community: int = 30_000  # ... and at once (Slack's hourly cap per workspace)
    # occurred_at at most this far ahead of our clock (the gateway's; for the worker, the
    # message's Kafka time), and never before the floor; the worker sends such events to the DLQ
    event_time_max_skew_seconds: float = 300.0
    event_time_floor: str = "2000-01-01T00:00:00+00:00"  # and never before this
    # The local stack's own: its Kafka controller listener (0: kafka_port + 1), the id its children
    # answer /readyz with (so a process left over on the same port is never taken for ours), and how
    # long the worker and the gateway take at most to stop before abandoning work.
    kafka_controller_port: int = 0
    instance_id: str = ""
    shutdown_seconds: float = 10.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(_env_name(f.name))
            if raw is None or raw == "":
                continue
            kind = type(getattr(cls(), f.name))
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise SystemExit(
                    f"{_env_name(f.name)}={raw!r} is not a valid {kind.__name__}: {exc}"
                ) from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        extra = {k: v for k, v in env.items() if k.startswith("ENGAGE_WEBHOOK_SECRET_")}
        return cls(**values, extra=extra)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def scoring(self) -> ScoringConfig:
        return ScoringConfig(
            half_life_days=self.scoring_half_life_days,
            lateness_seconds=self.scoring_lateness_days * 86400,
            dedup_window_seconds=max(self.scoring_lateness_days, 7.0) * 86400,
        )

    def spam(self) -> SpamConfig:
        # the spam core may forget a quiet member only once no late event can reach into its past
        return SpamConfig(forget_seconds=max(SpamConfig().forget_seconds, self.scoring_lateness_days * 86400))

    def sql_limits(self) -> QueryLimits:
        return QueryLimits(self.sql_max_execution_seconds, self.sql_max_memory_bytes, self.sql_max_result_rows)

    def envelope_limits(self) -> EnvelopeLimits:
        return EnvelopeLimits(self.envelope_max_events, self.envelope_max_bytes, self.envelope_linger_ms / 1000)

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def controller_port(self) -> int:
        return self.kafka_controller_port or self.kafka_port + 1

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{self.data_path / 'clickhouse'}"

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    @property
    def worker_url(self) -> str:
        return f"http://{self.worker_host}:{self.worker_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"

    @property
    def tokens_path(self) -> Path:
        return Path(self.api_tokens_file).resolve() if self.api_tokens_file else self.data_path / "api-tokens.json"

    @property
    def event_time_floor_ts(self) -> float:
        try:
            return parse_floor(self.event_time_floor)
        except ValueError as exc:
            raise SystemExit(f"ENGAGE_EVENT_TIME_FLOOR: {exc}") from exc
