"""The Faust worker: the only module that knows Faust (topics, table, agents, timers, signals).

Agents are thin. The events agent takes a batch of envelopes and hands it to
`EventsAgent.handle`, whose numbered steps are the commit order; everything between
bytes and ClickHouse is `Pipeline.process` (streams/worker/pipeline.py), and the
partitions' state is owned by `Partitions` (streams/worker/recovery.py).

In embedded mode this process owns the chDB store, so it also serves read-only SQL
over HTTP (`POST /v1/sql`, streams/worker/http.py) for `engage query` and analysts.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from schemas.outputs import ModerationDecision
from sinks.access import ClickHouseAccess
from sinks.batch_writer import Backoff, BatchWriter
from streams import metrics
from streams.api_tokens import TokenStore
from streams.config import (
    TOPIC_DLQ,
    TOPIC_ERASURES,
    TOPIC_EVENTS,
    TOPIC_MODERATION,
    TOPIC_SPAM_FLAGS,
    TOPIC_TIER_CHANGES,
    Settings,
)
from streams.embedded_sql import write_owner_file
from streams.envelopes import partition_for
from streams.shutdown import EXIT_FAILURE, StopDeadline
from streams.snapshots import SnapshotStore
from streams.stall import StallDetector
from streams.state_registry import StateRegistry
from streams.worker import erasures as erasure_step
from streams.worker import http, moderation, published
from streams.worker.faults import KillSwitch
from streams.worker.pipeline import BatchResult, DeadLetterOut, Incoming, Pipeline
from streams.worker.recovery import Filled, Partitions
from streams.worker.stuck import StuckWatch

log = logging.getLogger(__name__)


class EventsAgent:
    """One batch of `engagement.events` from Kafka to ClickHouse, in commit order."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        partitions: Partitions,
        pipeline: Pipeline,
        stopping: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.stopping = stopping or threading.Event()  # set once the worker shuts down
        self.partitions = partitions
        self.pipeline = pipeline
        self.stall = StallDetector(settings.stall_seconds)
        self.dlq = app.topic(TOPIC_DLQ, value_type=bytes, key_type=bytes, partitions=1)
        # declared here so Faust creates them; records go out as record batches (published.Publisher)
        app.topic(TOPIC_TIER_CHANGES, value_type=bytes, key_type=bytes, partitions=settings.partitions)
        app.topic(TOPIC_SPAM_FLAGS, value_type=bytes, key_type=bytes, partitions=settings.partitions)
        # Faust's producer is aiokafka's underneath; its batch API is what a batch of records needs
        self.publisher = published.Publisher(lambda: _aiokafka_producer(app), settings.partitions)
        self.step = ("idle", time.monotonic())  # what `handle` is doing, since when (GET /v1/partitions)

    def doing(self, what: str) -> None:
        self.step = (what, time.monotonic())

    async def handle(self, events: list[Any]) -> None:
        if self.pipeline.kill_switch.lost("handover"):  # drills only (streams/worker/faults.py)
            keep_unacknowledged(events)
            return
        batch = [
            Incoming(e.message.value, e.message.partition, e.message.offset, e.message.timestamp) for e in events
        ]
        # 1. Restore state of partitions seen for the first time (snapshots + log tail up to
        #    the commit Faust sought to: waited for here, without the lock a rebalance needs).
        seen = list(dict.fromkeys(m.partition for m in batch))
        new = [p for p in seen if p not in self.partitions.ready]
        self.doing(f"asking where partitions {new} resume" if new else "waiting for the state lock")
        committed = await self.partitions.commits(new) if new else {}
        self.doing("waiting for the state lock")
        async with self.partitions.lock:
            self.doing(f"restoring partitions {new}" if new else "processing")
            await self.partitions.ensure_all(seen, committed)
            self.doing("processing")
            finishing: asyncio.Future[None] | None = None  # steps 4-5 of the piece before
            try:
                # 2. Each partition's log exactly once, in order: messages applied already are
                #    dropped, messages missing before one are read from the log (recovery.py).
                async with contextlib.aclosing(self.partitions.contiguous(batch)) as runs:
                    async for run in runs:
                        for piece in pieces(run, self.settings.batch_max_events):
                            # 3. Decode, score, store the raw events, start storing the derived
                            #    rows (off the event loop, while steps 4-5 of the piece before run).
                            result = await asyncio.to_thread(self.pipeline.begin, piece)
                            self.partitions.applied(piece)
                            if finishing is not None:
                                await finishing  # pieces publish in log order
                            finishing = asyncio.ensure_future(self.finish(result))
                if finishing is not None:
                    await finishing
            except BaseException as exc:  # the batch is not acknowledged: it is processed again
                if finishing is not None:  # the piece before is done or cancelled before the lock goes
                    finishing.cancel()
                    (before,) = await asyncio.gather(finishing, return_exceptions=True)
                    if isinstance(before, Exception) and before is not exc:
                        log.error("publishing the piece before failed too: %r", before, exc_info=before)
                if not isinstance(exc, asyncio.CancelledError) or self.stopping.is_set():
                    keep_unacknowledged(events)
                raise
            # 6. A checkpoint when due: only here, between batches, so never a half-stored batch;
            #    the most overdue partition only, copied now and written while the next batch runs.
            if self.partitions.checkpoint_due():
                self.doing("checkpointing")
                await self.partitions.checkpoint(self.partitions.overdue(1), wait=False)
        self.doing("idle")
        metrics.TRACKED_MEMBERS.set(self.partitions.registry.tracked_members())
        # 7. Returning lets take() acknowledge the batch; Faust commits the offsets.

    async def finish(self, result: BatchResult) -> None:
        """Steps 4 and 5 of one piece of a batch."""
        # 4. Dead letters are durable before the batch is acknowledged.
        await self.send_dead_letters(result.dead_letters)
        # 5. Tier changes and flags for downstream consumers (at least once), while ClickHouse
        #    stores the derived rows of step 3; then those rows are stored too.
        await self.publisher.outputs(TOPIC_TIER_CHANGES, TOPIC_SPAM_FLAGS, result.outputs)
        await asyncio.wrap_future(result.stored)
        self.pipeline.kill_switch.at("batch")  # drills only (streams/worker/faults.py)
        self.stall.progress()

    async def send_dead_letters(self, dead: list[DeadLetterOut]) -> None:
        futures = [
            await self.dlq.send(
                value=dl.value,
                headers=[
                    ("reason", dl.reason.encode()),
                    ("error", dl.detail.encode()[:4000]),
                    ("source_topic", TOPIC_EVENTS.encode()),
                    ("source_partition", str(dl.partition).encode()),
                    ("source_offset", str(dl.offset).encode()),
                    ("source_line", str(dl.line).encode()),
                ],
            )
            for dl in dead
        ]
        for fut in futures:
            await fut


def keep_unacknowledged(events: list[Any]) -> None:
    """Keep a failed batch's offsets from being committed, so it is read again.

    Faust's `take_events` acks a batch's events in a `finally`, even when the agent raised
    (or was cancelled by a stop), and a stopping worker commits what is acked: a batch whose
    rows were never stored would be skipped by the next owner. A message marked acked here,
    without telling the consumer, is never acked to it, so its offset stays uncommitted."""
    for event in events:
        event.message.acked = True


def pieces(batch: list[Incoming], max_events: int) -> list[list[Incoming]]:
    """`batch` cut, in order and between messages, into runs of at most `max_events` events
    (an envelope's lines; a message larger than that is a run of its own)."""
    out: list[list[Incoming]] = [[]]
    events = 0
    for msg in batch:
        n = msg.value.count(b"\n") + 1 if msg.value else 1
        if out[-1] and events + n > max_events:
            out.append([])
            events = 0
        out[-1].append(msg)
        events += n
    return out if out[-1] else []


def _aiokafka_producer(app: faust.App) -> published.BatchProducer:
    producer: Any = app.producer  # faust.transport.drivers.aiokafka.Producer
    kafka: published.BatchProducer = producer._ensure_producer()
    return kafka


class Failure:
    """The events agent failed: the worker stops, with `EXIT_FAILURE`, instead of going on.

    Faust's supervisor would restart the agent on state that has run ahead of what is
    stored and published (a batch applied, its rows or records not written), and a later
    checkpoint would make that permanent. So the state is dropped (nothing checkpoints it),
    the process stops as on SIGTERM (bounded by its stop deadline), and the next start
    restores from the snapshots and the log and takes the unacknowledged batch again."""

    def __init__(self) -> None:
        self.reason: BaseException | None = None

    def stop(self, exc: BaseException, partitions: Partitions) -> None:
        if self.reason is None:
            self.reason = exc
            log.critical("the events agent failed; stopping the worker: %r", exc, exc_info=exc)
        partitions.revoke(set(partitions.ready))
        os.kill(os.getpid(), signal.SIGTERM)


def create_app(settings: Settings, failure: Failure | None = None) -> faust.App:
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
        # A batch's tier changes go out as record batches (published.Publisher) of up to this
        # many bytes: with aiokafka's 16 KiB, 14,000 changes were ~200 batches, sent one per
        # partition per round trip (most of a busy batch's time). Under the request limit (1 MB).
        producer_max_batch_size=512 * 1024,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.worker_host,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        web_in_thread=False,
        datadir=str(settings.data_path / "faust"),
        broker_commit_interval=1.0,
        # a worker killed without a goodbye is given up on (its partitions move) after this
        broker_session_timeout=settings.kafka_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_seconds / 4),
    )
    events_topic = app.topic(TOPIC_EVENTS, value_type=bytes, key_type=bytes, partitions=settings.partitions)
    moderation_topic = app.topic(TOPIC_MODERATION, value_type=bytes, key_type=bytes, partitions=settings.partitions)
    snapshot_table = app.Table(
        "scoring-snapshots", key_type=bytes, value_type=bytes, partitions=settings.partitions
    )  # the app's serializers are raw: keys and values are bytes

    ch = ClickHouseAccess(
        settings.dsn,
        settings.fault_clickhouse_file,
        on_open=(lambda: write_owner_file(settings, os.getpid())) if settings.embedded else (lambda: None),
        limits=settings.sql_limits(),
    )
    tokens = TokenStore(settings.tokens_path)
    stopping = threading.Event()
    writer = BatchWriter(
        lambda: ch, metrics.SINK, backoff=Backoff(max_s=settings.sink_max_retry_seconds), should_stop=stopping.is_set
    )
    failure = failure or Failure()
    registry = StateRegistry(settings.scoring(), settings.spam())
    kill_switch = KillSwitch(settings.fault_kill_file)
    pipeline = Pipeline(
        registry,
        writer,
        clock_skew_s=settings.event_time_max_skew_seconds,
        time_floor=settings.event_time_floor_ts,
        kill_switch=kill_switch,
    )
    snapshots = SnapshotStore(
        snapshot_table.data,
        lambda p, k, v: snapshot_table.send_changelog(p, k, v, value_serializer="raw"),
    )

    async def committed(partitions: Sequence[int]) -> dict[int, int]:
        return await _committed(settings, partitions)

    partitions = Partitions(settings, registry, pipeline, snapshots, committed, kill_switch=kill_switch)
    partitions.filled = _consumer_gap(app)
    agent = EventsAgent(app, settings, partitions, pipeline, stopping)
    erasures = erasure_step.Erasures(settings, partitions, pipeline, ch, writer)
    partitions.erasures = erasures
    erasures_topic = app.topic(
        TOPIC_ERASURES, value_type=bytes, key_type=bytes, partitions=settings.partitions, compacting=True
    )

    @app.task  # type: ignore[untyped-decorator]
    async def _migrate_on_start() -> None:
        applied = await asyncio.to_thread(ch.migrate)
        if applied:
            log.info("applied ClickHouse migrations: %s", ", ".join(applied))

    @app.agent(events_topic)
    async def process_events(stream: Any) -> None:
        try:
            async for batch in stream.take_events(settings.batch_size, within=settings.flush_seconds):
                await agent.handle(batch)
        except Exception as exc:
            failure.stop(exc, partitions)
            raise

    @app.agent(moderation_topic)
    async def process_moderation(stream: Any) -> None:
        # A decision is not applied here: it is copied into its community's events partition
        # and applied there, at one place in the log that every replay meets (streams/worker/moderation.py).
        async for event in stream.events():
            msg = event.message
            try:
                decision = ModerationDecision.model_validate_json(msg.value)
            except Exception as exc:
                await agent.dlq.send(
                    value=msg.value or b"",
                    headers=[
                        ("reason", b"invalid"),
                        ("error", str(exc).encode()[:4000]),
                        ("source_topic", TOPIC_MODERATION.encode()),
                    ],
                )
                metrics.EVENTS_DLQ.labels("invalid").inc()
                continue
            sent = await events_topic.send(
                value=moderation.encode(decision),
                partition=partition_for(decision.community_id, settings.partitions),
                headers=moderation.HEADERS,
            )
            await sent  # in the log before this message is acknowledged

    @app.agent(erasures_topic)
    async def process_erasures(stream: Any) -> None:
        async for batch in stream.take_events(100, within=1.0):
            bad = await erasures.handle([(e.message.value, e.message.partition) for e in batch])
            for value, why in bad:
                await agent.dlq.send(
                    value=value,
                    headers=[
                        ("reason", b"invalid"),
                        ("error", why.encode()),
                        ("source_topic", TOPIC_ERASURES.encode()),
                    ],
                )

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def _watch_erasures() -> None:
        metrics.ERASURES_PENDING.set(await erasure_step.pending(app.consumer, erasures.in_flight))

    idle_after = max(0.5, settings.snapshot_seconds / 2)

    @app.timer(interval=idle_after)  # type: ignore[untyped-decorator]
    async def _checkpoint_when_idle() -> None:
        # batches checkpoint as they finish, a partition at a time; this covers a worker that
        # has gone quiet (not one between two busy batches: that would stall the next one)
        if partitions.checkpoint_due() and not partitions.lock.locked() and partitions.quiet_for() >= idle_after:
            async with partitions.lock:
                await partitions.checkpoint(partitions.overdue())

    stuck = StuckWatch(STUCK_SECONDS)

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def _watch_stuck() -> None:
        try:
            await _unstick(app, agent, partitions, stuck)
        except Exception:  # the watch goes on; the worker never depends on it
            log.exception("stuck-partition watch failed")

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def _watch_lag() -> None:
        lag = await _consumer_lag(app)
        agent.stall.observe_lag(sum(lag.values()))

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        status, body = http.health(agent.stall)
        return web.json(body, status=status)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # per-batch metrics of our own; Faust's per-message sensor costs more than a batch of work
        return web.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        status, body = await http.readiness(ch, settings.instance_id)
        return web.json(body, status=status)

    @app.page("/v1/partitions")
    async def partitions_page(web: Any, request: Any) -> Any:
        # who owns what, for drills and operators: assigned by the group, and restored in this process
        consumer: Any = app.consumer
        assigned = sorted(tp.partition for tp in consumer.assignment() if tp.topic == TOPIC_EVENTS)
        return web.json(
            {
                "assigned": assigned,
                "ready": sorted(partitions.ready),
                "communities": len(registry.communities),
                # newest offset applied to state, and the commit Faust sought to, per partition
                "applied": {str(p): o for p, o in sorted(partitions.offsets.items()) if p in partitions.ready},
                "sought": {str(p): o for p, o in sorted(partitions.seeked.items())},
                "acks": _ack_state(consumer),
                # Faust's flow (off while it rebalances) and whether its recovery of this assignment is done
                "flow": bool(getattr(consumer, "flow_active", False)),
                "agent": {"doing": agent.step[0], "for_s": round(time.monotonic() - agent.step[1], 1)},
                "state_lock_held": partitions.lock.locked(),
                "recovered": _recovered(app),
            }
        )

    class SqlView(faust.web.View):
        """POST read-only SQL as the body; `?format=` any ClickHouse output format."""

        async def post(self, request: Any) -> Any:
            refused = http.sql_caller_allowed(request.remote, request.headers.get("Authorization"), tokens)
            if refused is not None:
                return self.bytes(refused[1].encode(), content_type="text/plain", status=refused[0])
            query = (await request.read()).decode("utf-8", "replace")
            status, body = await http.sql(ch, query, request.query.get("format", "TabSeparatedWithNames"))
            return self.bytes(body, content_type="text/plain", status=status)

    app.page("/v1/sql")(SqlView)

    watch = RecoveryWatch(app)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        _report_seeks(app, partitions)
        watch.start()  # at the first assignment: Faust's timers start only once the first recovery is done

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        _report_seeks(app, partitions)  # also here: the first join revokes before it assigns
        partitions.unassigned({tp.partition for tp in revoked if tp.topic == TOPIC_EVENTS})
        metrics.REBALANCES.inc()
        gone = set()
        for tp in revoked:
            if tp.topic != TOPIC_EVENTS:
                continue
            # a partition we no longer own must not keep reporting its old lag
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
            gone.add(tp.partition)
        async with partitions.lock:
            await partitions.settle()  # snapshots taken while we owned them are written first
            partitions.revoke(gone)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _stop_retrying(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # a flush retrying against a ClickHouse that is down gives up, so shutdown is prompt;
        # its batch was not acknowledged, so the next owner takes it again
        stopping.set()
        pipeline.close()
        watch.stop()

    return app


RECOVERY_STALL_SECONDS = 20.0
STUCK_SECONDS = 15.0  # streams/worker/stuck.py


async def _unstick(app: faust.App, agent: EventsAgent, partitions: Partitions, watch: StuckWatch) -> None:
    """Seek each events partition `watch` finds stuck back to where the group resumes it."""
    consumer: Any = app.consumer  # faust.transport.consumer.Consumer
    tps = [tp for tp in consumer.assignment() if tp.topic == TOPIC_EVENTS]
    if not tps:
        return
    ends = {tp.partition: int(o) for tp, o in (await consumer.highwaters(*tps)).items() if o is not None}
    resume = {}
    for tp in tps:
        committed = consumer._committed_offset.get(tp)
        applied = partitions.offsets.get(tp.partition) if tp.partition in partitions.ready else None
        resume[tp.partition] = max(committed or 0, -1 if applied is None else applied + 1)
    what, since = agent.step
    idle = what == "idle" and consumer.flow_active and _recovered(app) and not partitions.lock.locked()
    for p in watch.check(time.monotonic(), resume, ends, since if idle else None):
        tp = TP(TOPIC_EVENTS, p)
        says = _ack_state(consumer).get(str(p), {})
        log.warning(
            "%s[%d]: %d messages past offset %d and none handed to the agent for %.0f s while it was idle; "
            "seeking the consumer back to %d (it says: %s)",
            TOPIC_EVENTS, p, ends[p] - resume[p], resume[p], STUCK_SECONDS, resume[p], says,
        )
        metrics.OFFSETS_REPAIRED.labels("stuck").inc(ends[p] - resume[p])
        if says.get("paused"):  # by Faust or in the client: flow and recovery say it should not be
            consumer.resume_partitions({tp})
        await consumer.seek(tp, resume[p])


def stalled_changelogs(recovery: Any, now: float, after: float) -> list[Any]:
    """Changelog partitions Faust's table recovery still needs events of and has had none of for
    `after` seconds (its `Recovery`'s own bookkeeping; monotonic time).

    After a restart with rebalances in flight, a recovery has waited for ever on changelog
    partitions that were readable to the end (Faust logs "No event received for active tp"
    every 5 s, and the worker never becomes ready); restarting it, as the next rebalance would,
    seeks and fetches them again."""
    try:
        if not recovery.in_recovery or recovery._recovery_started_at is None:
            return []
        started = recovery._recovery_started_at
        received = recovery._active_events_received_at
        return sorted(
            (
                tp
                for tp, left in recovery.active_remaining().items()
                if left > 0 and now - received.get(tp, started) >= after
            ),
            key=lambda tp: (tp.topic, tp.partition),
        )
    except Exception:  # Faust's internals, best effort: no restart
        log.debug("table recovery state not readable", exc_info=True)
        return []


class RecoveryWatch:
    """Restarts a table recovery stalled on a changelog partition (`stalled_changelogs`)."""

    def __init__(self, app: faust.App, every: float = 5.0) -> None:
        self.app = app
        self.every = every
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        tables: Any = self.app.tables  # faust.tables.manager.TableManager
        while not self.app.should_stop:
            await asyncio.sleep(self.every)
            try:
                self.check(tables.recovery)
            except Exception:  # the watch goes on; the worker never depends on it
                log.exception("table recovery watch failed")

    @staticmethod
    def check(recovery: Any) -> None:
        if recovery.signal_recovery_start.is_set():  # a restart (or a rebalance) is on its way
            return
        stuck = stalled_changelogs(recovery, time.monotonic(), RECOVERY_STALL_SECONDS)
        if stuck:
            log.warning(
                "table recovery: no changelog event for %.0f s from %s, which it still needs; restarting it",
                RECOVERY_STALL_SECONDS,
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in stuck),
            )
            metrics.RECOVERY_RESTARTS.inc()
            recovery.signal_recovery_start.set()  # what a rebalance does: highwaters, seeks, fetches anew


def _ack_state(consumer: Any) -> dict[str, dict[str, Any]]:
    """Faust's commit bookkeeping per events partition (for drills and operators: why a commit
    does not move): what it committed last, read last, and the acked offsets it holds."""
    out: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(Exception):  # Faust's internals, best effort
        client: Any = consumer._thread._ensure_consumer()  # aiokafka's consumer, in Faust's consumer thread
        states = client._subscription.subscription.assignment
        active = consumer._active_partitions or set()
        for tp in sorted(consumer.assignment()):
            if tp.topic != TOPIC_EVENTS:
                continue
            acked = sorted(consumer._acked.get(tp, ()))
            state = states.state_value(tp)
            out[str(tp.partition)] = {
                "committed": consumer._committed_offset.get(tp),
                "read": consumer._read_offset.get(tp),
                "acked": len(acked),
                "acked_first": acked[:3],
                "gaps": len(consumer._gap.get(tp, ())),
                # where the client fetches next, and whether Faust or the client holds it paused
                "position": state.position if state is not None and state.has_valid_position else None,
                "fetched": tp in active,
                "paused": tp in consumer._paused_partitions or bool(state is not None and state.paused),
            }
    return out


def _recovered(app: faust.App) -> bool | None:
    with contextlib.suppress(Exception):  # Faust's internals, best effort
        tables: Any = app.tables
        return bool(tables.recovery.completed.is_set())
    return None


def _consumer_gap(app: faust.App) -> Filled:
    """Offsets `Partitions.contiguous` read from the log (Faust never handed them over) are
    added to the consumer's gap bookkeeping, which is how Faust itself skips offsets a fetch
    jumped over: the commit then moves past them once the message after them is acknowledged."""

    async def filled(partition: int, first: int, last: int) -> None:
        consumer: Any = app.consumer  # faust.transport.consumer.Consumer
        try:
            await consumer._add_gap(TP(TOPIC_EVENTS, partition), first, last)
        except Exception:  # Faust's internals: the events are processed; only the commit may wait
            log.exception(
                "%s[%d]: could not tell the consumer offsets %d-%d are done", TOPIC_EVENTS, partition, first, last
            )

    return filled


def _report_seeks(app: faust.App, partitions: Partitions) -> None:
    """Tell `partitions` the committed offsets Faust seeks the events partitions to (once per
    consumer: its `seek_to_committed` is wrapped). Faust seeks after every assignment, from
    its recovery, and `Partitions.commits` waits for it."""
    consumer: Any = app.consumer
    if getattr(consumer, "_engage_reports_seeks", False):
        return
    seek_to_committed = consumer.seek_to_committed

    async def reporting() -> Any:
        offsets = await seek_to_committed()
        partitions.faust_seeked({tp.partition: o for tp, o in offsets.items() if tp.topic == TOPIC_EVENTS})
        return offsets

    consumer.seek_to_committed = reporting
    consumer._engage_reports_seeks = True


async def _consumer_lag(app: faust.App) -> dict[tuple[str, int], int]:
    """Messages behind the end, per assigned partition of the events topic: from the group's
    commit, or from the fetch position where that is behind it (a message fetched is not yet
    processed, and one Faust never hands the agent is never committed: streams/worker/stuck.py)."""
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
            committed = consumer._committed_offset.get(tp)
            start = int(pos) if committed is None else min(int(pos), int(committed))
            behind = max(0, int(high) - start)
            lag[(tp.topic, tp.partition)] = behind
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(behind)
    except Exception as exc:  # the consumer may be mid-rebalance
        log.debug("lag not available: %s", exc)
    return lag


def tune_interpreter() -> None:
    """The collector set for a process that holds large state and makes
    short-lived objects by the hundred thousand a second.

    With CPython's defaults (a young collection every 700 net allocations) a busy worker
    ran ~50 young and 4 full collections a second; each full one walks every tracked
    object the state holds (~200 ms): 5 of 60 s in the collector, and pauses that were
    the tail of the latency. Objects alive when it runs (modules, the app and its agents;
    not the worker's services started later, nor restored state) are frozen out of
    collections altogether.

    A young collection comes after 1,000,000 net allocations of tracked objects. At
    50,000, a catching-up worker still ran one every ~0.6 s, and each took ~45 ms (it walks
    the live batch's records, rows and heap entries, and the young lists they sit in):
    ~9% of the GIL. Net allocations only reach 1,000,000 when the state itself grows
    (a batch's temporaries are freed by reference counting as it ends), so collections
    become rare; cyclic garbage waits longer, at most ~1,000,000 objects of it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(1_000_000, 20, 10)


def run_worker(settings: Settings, loglevel: str = "warning") -> None:
    """Run the worker until SIGINT/SIGTERM."""
    failure = Failure()
    app = create_app(settings, failure)
    tune_interpreter()
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG (to spin on every record), so every
    # aiokafka send built a debug LogRecord: a tenth of a busy worker's time. No spinner, no DEBUG.
    worker.spinner = None
    # a stop request must end the process within shutdown_seconds, even with Kafka gone
    StopDeadline("worker", settings.shutdown_seconds).install_after(worker, "install_signal_handlers")
    metrics.WORKER_LAST_PROGRESS.set(time.time())
    try:
        worker.execute_from_commandline()
    finally:
        if failure.reason is not None:
            print(f"engage worker: stopped after a failure: {failure.reason!r}", file=sys.stderr)
            raise SystemExit(EXIT_FAILURE)


async def _committed(settings: Settings, partitions: Sequence[int]) -> dict[int, int]:
    """Where the group resumes each events partition: its committed offset, or the log's start
    offset where it has none (recovery.Committed)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap, group_id=settings.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC_EVENTS, p) for p in partitions]
        consumer.assign(tps)
        out = {}
        for tp in tps:
            committed = await consumer.committed(tp)
            if committed:
                out[tp.partition] = int(committed)
        uncommitted = [tp for tp in tps if tp.partition not in out]
        if uncommitted:
            starts = await consumer.beginning_offsets(uncommitted)
            out.update({tp.partition: int(start) for tp, start in starts.items()})
        return out
    finally:
        await consumer.stop()
