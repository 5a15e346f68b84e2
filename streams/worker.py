"""The Faust worker: consumes `engagement.events`, stores batches in ClickHouse.

The agent is thin: take a batch, let `BatchProcessor` turn it into rows and
dead letters, send the dead letters, store the rows (off the event loop, since
chDB has no async client), then let `take()` acknowledge the batch. Offsets are
therefore committed only after ClickHouse accepted the rows.

In embedded mode this process owns the chDB store, so it also serves read-only
SQL over HTTP (`POST /v1/sql`) for `engage query` and analysts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import REGISTRY

from schemas.outputs import ModerationDecision
from sinks.batch_writer import Backoff, BatchWriter
from sinks.clickhouse import connect, read_only_sql
from sinks.migrate import migrate
from sinks.tables import MODERATION_COLUMNS, ts
from streams import metrics
from streams.batch_processor import BatchProcessor, Incoming
from streams.config import (
    TOPIC_DLQ,
    TOPIC_EVENTS,
    TOPIC_MODERATION,
    TOPIC_SPAM_FLAGS,
    TOPIC_TIER_CHANGES,
    Settings,
)
from streams.embedded_sql import write_owner_file
from streams.scoring import ScoringConfig
from streams.shutdown import StopDeadline
from streams.snapshots import SnapshotStore, replay_tail
from streams.spam.config import SpamConfig
from streams.stall import StallDetector
from streams.state_registry import Outputs, StateRegistry

log = logging.getLogger(__name__)


class ClickHouseAccess:
    """One ClickHouse client shared by the writer and the SQL endpoint, used one call at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dsn = settings.dsn
        self.migrated = False
        self.fault_file = Path(settings.fault_clickhouse_file) if settings.fault_clickhouse_file else None
        self.lock = threading.Lock()
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.dsn)
            if self.settings.embedded:
                # This process owns the embedded store from now on: readers must come through us.
                write_owner_file(self.settings, os.getpid())
        return self._client

    def raw_insert(self, table: str, column_names: Any, insert_block: bytes, fmt: str) -> Any:
        if self.fault_file is not None and self.fault_file.exists():
            raise ConnectionError(f"ClickHouse write refused: fault injected while {self.fault_file} exists")
        with self.lock:
            return self.client().raw_insert(table, column_names, insert_block=insert_block, fmt=fmt)

    def raw_query(self, sql: str, fmt: str) -> bytes:
        with self.lock:
            result = self.client().raw_query(read_only_sql(sql), fmt=fmt)
            return bytes(result)

    def migrate(self) -> list[str]:
        with self.lock:
            applied = migrate(self.client())
        self.migrated = True
        return applied


def create_app(settings: Settings) -> faust.App:
    (settings.data_path / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.worker_host,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        web_in_thread=False,
        datadir=str(settings.data_path / "faust"),
        broker_commit_interval=1.0,
    )
    events_topic = app.topic(TOPIC_EVENTS, value_type=bytes, key_type=bytes, partitions=settings.partitions)
    dlq_topic = app.topic(TOPIC_DLQ, value_type=bytes, key_type=bytes, partitions=1)
    moderation_topic = app.topic(
        TOPIC_MODERATION, value_type=bytes, key_type=bytes, partitions=settings.partitions
    )
    tier_topic = app.topic(
        TOPIC_TIER_CHANGES, value_type=bytes, key_type=bytes, partitions=settings.partitions
    )
    flags_topic = app.topic(
        TOPIC_SPAM_FLAGS, value_type=bytes, key_type=bytes, partitions=settings.partitions
    )
    snapshots = app.Table(
        "scoring-snapshots", key_type=bytes, value_type=bytes, partitions=settings.partitions
    )  # the app's serializers are raw: keys and values are bytes

    ch = ClickHouseAccess(settings)
    stopping = threading.Event()
    writer = BatchWriter(
        lambda: ch, backoff=Backoff(max_s=settings.sink_max_retry_seconds), should_stop=stopping.is_set
    )
    stall = StallDetector(settings.stall_seconds)
    registry = StateRegistry(
        ScoringConfig(
            half_life_days=settings.scoring_half_life_days,
            lateness_seconds=settings.scoring_lateness_days * 86400,
            dedup_window_seconds=max(settings.scoring_lateness_days, 7.0) * 86400,
        ),
        # the spam core may forget a quiet member only once no late event can reach into its past
        SpamConfig(forget_seconds=max(SpamConfig().forget_seconds, settings.scoring_lateness_days * 86400)),
    )
    processor = BatchProcessor(writer, decay_rate=registry.scoring.decay_rate)
    store = SnapshotStore(
        snapshots.data,
        lambda p, k, v: snapshots.send_changelog(p, k, v, value_serializer="raw"),
    )
    ready: set[int] = set()  # partitions whose state is restored in this process
    partition_offset: dict[int, int] = {}
    init_lock = asyncio.Lock()
    last_snapshot = [time.monotonic()]
    setup_prometheus_sensors(app, pattern="/metrics", registry=REGISTRY, name_prefix="faust")

    async def ensure_state(partition: int, first_offset: int | None) -> None:
        """Restore a partition's snapshots and replay the log tail up to `first_offset`."""
        if partition in ready:
            return
        async with init_lock:
            if partition in ready:
                return
            before = len(registry.communities)
            marker = store.restore_partition(registry, partition)
            metrics.STATE_RESTORED.inc(len(registry.communities) - before)
            end = first_offset if first_offset is not None else await _committed(settings, partition)
            replayed = await replay_tail(
                settings.bootstrap, TOPIC_EVENTS, partition, marker + 1, end, registry
            )
            metrics.STATE_REPLAYED.inc(replayed)
            if replayed:
                log.info(
                    "partition %d: restored snapshots at offset %d, replayed %d events",
                    partition,
                    marker,
                    replayed,
                )
            partition_offset[partition] = max(marker, end - 1)
            ready.add(partition)

    async def publish(outputs: Outputs) -> None:
        for t in outputs.tier_changes:
            await tier_topic.send(key=t.community_id.encode(), value=orjson.dumps(t._asdict()))
        for f in outputs.flags:
            await flags_topic.send(key=f.community_id.encode(), value=orjson.dumps(f.to_json()))

    in_batch = [False]  # a batch applied to state but not yet stored must never be checkpointed

    def maybe_snapshot() -> None:
        if in_batch[0] or time.monotonic() - last_snapshot[0] < settings.snapshot_seconds:
            return
        for p in sorted(ready):
            metrics.STATE_SNAPSHOTS.inc(store.write_partition(registry, p, partition_offset.get(p, -1)))
        last_snapshot[0] = time.monotonic()

    @app.task  # type: ignore[untyped-decorator]
    async def _migrate_on_start() -> None:
        applied = await asyncio.to_thread(ch.migrate)
        if applied:
            log.info("applied ClickHouse migrations: %s", ", ".join(applied))

    @app.agent(events_topic)
    async def process_events(stream: Any) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.flush_seconds):
            incoming = [
                Incoming(e.message.value, e.message.partition, e.message.offset, e.message.timestamp)
                for e in batch
            ]
            firsts: dict[int, int] = {}
            for m in incoming:
                firsts.setdefault(m.partition, m.offset)
                partition_offset[m.partition] = m.offset
            for p, first in firsts.items():
                await ensure_state(p, first)
            in_batch[0] = True
            metrics.BATCH_SIZE.observe(len(incoming))
            prepared = processor.prepare(incoming)
            started = time.perf_counter()
            outputs = registry.apply(prepared.records)
            metrics.SCORING_BATCH_DURATION.observe(time.perf_counter() - started)
            processor.add_state(prepared, outputs)
            for dl in prepared.dead_letters:
                fut = await dlq_topic.send(
                    value=dl.value,
                    headers=[
                        ("reason", dl.reason.encode()),
                        ("error", dl.detail.encode()[:4000]),
                        ("source_topic", TOPIC_EVENTS.encode()),
                        ("source_partition", str(dl.partition).encode()),
                        ("source_offset", str(dl.offset).encode()),
                    ],
                )
                await fut  # the dead letter is durable before the batch is acknowledged
            await asyncio.to_thread(processor.store, prepared)
            await publish(outputs)
            metrics.TRACKED_MEMBERS.set(registry.tracked_members())
            in_batch[0] = False
            maybe_snapshot()
            stall.progress()

    @app.agent(moderation_topic)
    async def process_moderation(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                decision = ModerationDecision.model_validate_json(msg.value)
            except Exception as exc:
                await dlq_topic.send(
                    value=msg.value or b"",
                    headers=[
                        ("reason", b"invalid"),
                        ("error", str(exc).encode()[:4000]),
                        ("source_topic", TOPIC_MODERATION.encode()),
                    ],
                )
                metrics.EVENTS_DLQ.labels("invalid").inc()
                continue
            await ensure_state(msg.partition, None)
            outputs = registry.moderate(decision, msg.partition)
            prepared = processor.prepare([])
            prepared.tables.pop("events", None)
            processor.add_state(prepared, outputs)
            now = time.time()
            prepared.tables["moderation"] = (
                MODERATION_COLUMNS,
                [
                    [
                        decision.decision_id or "",
                        decision.community_id,
                        decision.member_id,
                        decision.action.value,
                        decision.moderator,
                        decision.reason,
                        decision.decided_at.timestamp(),
                        ts(now),
                    ]
                ],
            )
            await asyncio.to_thread(processor.store, prepared)
            await publish(outputs)
            metrics.MODERATION_DECISIONS.labels(decision.action.value).inc()
            # a decision is rare and not in the events log: snapshot its partition at once
            # (unless a batch is half done: then the next checkpoint, moments later, takes it)
            if not in_batch[0]:
                store.write_partition(registry, msg.partition, partition_offset.get(msg.partition, -1))

    @app.timer(interval=max(0.5, settings.snapshot_seconds / 2))  # type: ignore[untyped-decorator]
    async def _checkpoint_when_idle() -> None:
        # batches checkpoint as they finish; this covers a worker that has gone quiet
        maybe_snapshot()

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def _watch_lag() -> None:
        lag = await _consumer_lag(app)
        stall.observe_lag(sum(lag.values()))

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        ok, why = stall.healthy()
        return web.json({"ok": ok, "reason": why}, status=200 if ok else 503)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        if not ch.migrated:
            return web.json({"ok": False, "clickhouse": "migrations not applied yet"}, status=503)
        try:
            await asyncio.to_thread(ch.raw_query, "SELECT 1", "TSV")
        except Exception as exc:
            return web.json({"ok": False, "clickhouse": str(exc)[:300]}, status=503)
        return web.json({"ok": True, "instance": settings.instance_id})

    class SqlView(faust.web.View):
        """POST read-only SQL as the body; `?format=` any ClickHouse output format."""

        async def post(self, request: Any) -> Any:
            query = (await request.read()).decode("utf-8", "replace")
            fmt = request.query.get("format", "TabSeparatedWithNames")
            try:
                body = await asyncio.to_thread(ch.raw_query, query, fmt)
            except Exception as exc:
                return self.bytes(str(exc).encode()[:4000], content_type="text/plain", status=400)
            return self.bytes(body, content_type="text/plain")

    app.page("/v1/sql")(SqlView)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        # The next owner restores from the snapshots and replays the tail; drop ours.
        metrics.REBALANCES.inc()
        for tp in revoked:
            if tp.topic != TOPIC_EVENTS:
                continue
            # a partition we no longer own must not keep reporting its old lag
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
            if tp.partition in ready:
                ready.discard(tp.partition)
                registry.drop_partition(tp.partition)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _stop_retrying(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # a flush retrying against a ClickHouse that is down gives up, so shutdown is prompt;
        # its batch was not acknowledged, so the next owner takes it again
        stopping.set()
    return app


async def _consumer_lag(app: faust.App) -> dict[tuple[str, int], int]:
    """Messages behind the end, per assigned partition of the events topic."""
    lag: dict[tuple[str, int], int] = {}
    try:
        consumer: Any = app.consumer
        for tp in consumer.assignment():
            if tp.topic != TOPIC_EVENTS:
                continue
            high = consumer.highwater(tp)
            pos = await consumer.position(tp)
            if high is None or pos is None:
                continue
            behind = max(0, int(high) - int(pos))
            lag[(tp.topic, tp.partition)] = behind
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(behind)
    except Exception as exc:  # the consumer may be mid-rebalance
        log.debug("lag not available: %s", exc)
    return lag


def run_worker(settings: Settings, loglevel: str = "warning") -> None:
    """Run the worker until SIGINT/SIGTERM."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # a stop request must end the process within shutdown_seconds, even with Kafka gone
    StopDeadline("worker", settings.shutdown_seconds).install_after(worker, "install_signal_handlers")
    metrics.WORKER_LAST_PROGRESS.set(time.time())
    worker.execute_from_commandline()


async def _committed(settings: Settings, partition: int) -> int:
    """The group's committed offset of one events partition (0 when none)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, group_id=settings.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(TOPIC_EVENTS, partition)
        consumer.assign([tp])
        committed = await consumer.committed(tp)
        return int(committed) if committed is not None else 0
    finally:
        await consumer.stop()
