"""Fault drills on the real local stack: `engage chaos` and tests/e2e/test_chaos.py.

Each scenario feeds a simulated community (streams/tools/simulate.py) through the gateway, with
re-sent duplicates and events out of order, injects its fault while events flow, lets the
pipeline settle (the group's committed offsets reach the end of every events partition),
and then checks what ClickHouse holds against what the gateway accepted and against a
replay of the same log into empty state (`Reference`). A tool: the runtime never imports it.

Stores: in embedded mode each worker process owns its own chDB store, so a scenario with
two workers reads each store through its worker's `POST /v1/sql` and combines them
(`Stores`): events as the union of ids, member rows by their highest `version` (the
newest write wins, as ReplacingMergeTree does in one store), rollups store by store.
docs/reliability.md describes the guarantees, the scenarios and one run's figures.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from sinks.batch_writer import BatchWriter
from streams import metrics
from streams.config import TOPIC_EVENTS, TOPIC_MODERATION, Settings
from streams.embedded_sql import QueryError, owner_url, query
from streams.shutdown import EXIT_FAILURE
from streams.state_registry import Outputs, StateRegistry
from streams.tools.local_stack import LocalStack, free_port, free_port_pair, http_ok
from streams.tools.simulate import simulate
from streams.worker import moderation
from streams.worker.pipeline import Incoming, Pipeline

SCENARIOS = ("kill9", "kafka-restart", "two-workers", "moderation-kill", "clickhouse-outage")
REL_TOL = 1e-9


# ---------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """Sizes and durations of one run (the test shortens the faults; `engage chaos` keeps the issue's)."""

    events: int = 3000  # about how many distinct events a scenario sends
    seed: int = 1
    feed_seconds: float = 40.0  # a scenario's events are spread over this long
    broker_down_seconds: float = 30.0
    clickhouse_down_seconds: float = 60.0
    settle_timeout_seconds: float = 180.0
    duplicate_share: float = 0.05  # events sent a second time, a little later
    shuffle_window: int = 12  # events reordered within windows of this many


@dataclass
class Result:
    scenario: str
    accepted: int = 0  # distinct events the gateway answered 2xx for
    sent: int = 0  # events sent, duplicates and retries included
    retried_requests: int = 0  # requests answered 503 (or not at all) and sent again
    stored: int = 0  # distinct events in engagement.events (every store)
    stored_final: int = 0  # count() FINAL, summed over stores
    stored_raw_uniq: int = 0  # uniqExact(event_id) of the raw rows, summed over stores
    lost: int = 0
    doubled: int = 0
    state_matches_replay: bool = False
    rollups_match: bool = False
    members_compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    recovery_s: float = 0.0  # the slowest recovery: fault over -> everything accepted by then is stored
    recoveries_s: list[float] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and self.state_matches_replay and self.rollups_match

    def to_json(self) -> str:
        doc = asdict(self)
        doc["ok"] = self.ok
        doc["mismatches"] = self.mismatches[:20]
        return json.dumps(doc)


# ---------------------------------------------------------------------------------------------- feed


def community_feed(plan: Plan, seed: int, now: float | None = None) -> list[dict[str, Any]]:
    """A simulated community, ending an hour ago (the worker refuses events from the future)."""
    end = datetime.fromtimestamp(now if now is not None else time.time(), UTC) - timedelta(hours=1)
    days = 2.0
    members = max(40, plan.events // 7)
    events, _labels = simulate(
        seed=seed,
        communities=2,
        members_per_community=members,
        days=days,
        start=end - timedelta(days=days),
        spam_profiles_per_community=3,
        history_days=10,
    )
    return list(events)


def with_faults_of_senders(events: list[dict[str, Any]], plan: Plan, seed: int) -> list[dict[str, Any]]:
    """The order the events are sent in: reordered within small windows, some sent twice later on."""
    rng = random.Random(seed)
    out = list(events)
    w = plan.shuffle_window
    for i in range(0, len(out), w):
        chunk = out[i : i + w]
        rng.shuffle(chunk)
        out[i : i + w] = chunk
    for _ in range(int(len(events) * plan.duplicate_share)):
        j = rng.randrange(len(out))
        out.insert(min(len(out), j + rng.randint(5, 300)), out[j])
    return out


class Sender:
    """Posts events to the gateway in batches, as a platform would: retries on 503 after Retry-After."""

    def __init__(self, settings: Settings, batch: int = 100, max_wait_s: float = 5.0) -> None:
        self.url = f"{settings.gateway_url}/v1/events"
        self.token = settings.api_token
        self.batch = batch
        self.max_wait_s = max_wait_s
        self.accepted_ids: set[str] = set()
        self.sent = 0
        self.retried = 0
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def post(self, events: list[dict[str, Any]], give_up_s: float = 300.0) -> None:
        body = orjson.dumps(events)
        deadline = time.monotonic() + give_up_s
        while True:
            wait = 0.5
            req = urllib.request.Request(self.url, data=body, method="POST", headers=self.headers())
            try:
                with urllib.request.urlopen(req, timeout=15) as resp:
                    resp.read()
                with self.lock:
                    self.sent += len(events)
                    self.accepted_ids.update(e["event_id"] for e in events)
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    raise RuntimeError(f"gateway refused a batch: {exc.code} {exc.read()[:300]!r}") from exc
                with contextlib.suppress(ValueError, TypeError):
                    wait = float(exc.headers.get("Retry-After", wait))
            except (urllib.error.URLError, OSError):
                pass  # the gateway itself is unreachable: try again
            with self.lock:
                self.retried += 1
                self.sent += len(events)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway kept refusing a batch for {give_up_s:.0f}s")
            time.sleep(min(wait, self.max_wait_s))

    def send(self, events: Sequence[dict[str, Any]], seconds: float) -> None:
        """Send `events` spread over about `seconds` (blocking)."""
        n = max(1, math.ceil(len(events) / self.batch))
        started = time.monotonic()
        for k in range(n):
            self.post(list(events[k * self.batch : (k + 1) * self.batch]))
            ahead = started + seconds * (k + 1) / n - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def start(self, events: Sequence[dict[str, Any]], seconds: float) -> None:
        def run() -> None:
            try:
                self.send(events, seconds)
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=run, name="chaos-sender", daemon=True)
        self._thread.start()

    def join(self, timeout_s: float = 600.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError("the sender did not finish in time")
        if self.error is not None:
            raise RuntimeError(f"the sender failed: {self.error}") from self.error

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def accepted(self) -> int:
        with self.lock:
            return len(self.accepted_ids)


def moderate(settings: Settings, community_id: str, member_id: str, action: str) -> dict[str, Any]:
    body = orjson.dumps(
        {
            "community_id": community_id,
            "member_id": member_id,
            "action": action,
            "reason": "fault drill",
            "decided_at": datetime.now(UTC).isoformat(),
        }
    )
    headers = {"Content-Type": "application/json"}
    if settings.api_token:
        headers["Authorization"] = f"Bearer {settings.api_token}"
    req = urllib.request.Request(f"{settings.gateway_url}/v1/moderation", data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=15) as resp:
        doc: dict[str, Any] = orjson.loads(resp.read())
        return doc


# ---------------------------------------------------------------------------------------------- Kafka


class Log:
    """The events log as Kafka has it: end offsets, the group's committed offsets, every message."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _consumer(self, group: str | None) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            request_timeout_ms=10_000,
            consumer_timeout_ms=2_000,
        )

    def _tps(self, consumer: Any, topic: str) -> list[Any]:
        from kafka import TopicPartition

        parts = consumer.partitions_for_topic(topic) or set()
        return [TopicPartition(topic, p) for p in sorted(parts)]

    def lag(self) -> int:
        """Messages of engagement.events the group has not committed yet (its work not yet stored)."""
        consumer = self._consumer(self.settings.app_id)
        try:
            tps = self._tps(consumer, TOPIC_EVENTS)
            ends = consumer.end_offsets(tps)
            return sum(max(0, ends[tp] - (consumer.committed(tp) or 0)) for tp in tps)
        finally:
            consumer.close()

    def end(self) -> dict[int, int]:
        consumer = self._consumer(None)
        try:
            tps = self._tps(consumer, TOPIC_EVENTS)
            return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        finally:
            consumer.close()

    def committed(self, partitions: list[int]) -> dict[int, int | None]:
        consumer = self._consumer(self.settings.app_id)
        try:
            from kafka import TopicPartition

            return {p: consumer.committed(TopicPartition(TOPIC_EVENTS, p)) for p in partitions}
        finally:
            consumer.close()

    def committed_reach(self, ends: dict[int, int]) -> bool:
        committed = self.committed(list(ends))
        return all((committed[p] or 0) >= e for p, e in ends.items())

    def read(self, topic: str) -> Iterator[tuple[int, int, float, bytes | None]]:
        """(partition, offset, Kafka time in s, value) of every message, partition by partition."""
        consumer = self._consumer(None)
        try:
            tps = self._tps(consumer, topic)
            ends = consumer.end_offsets(tps)
            for tp in tps:
                if ends[tp] == 0:
                    continue
                consumer.assign([tp])
                consumer.seek_to_beginning(tp)
                position = 0
                while position < ends[tp]:
                    polled = consumer.poll(timeout_ms=2000, max_records=2000)
                    if not polled:
                        raise RuntimeError(f"{topic}[{tp.partition}] stopped at {position} of {ends[tp]}")
                    for msg in polled.get(tp, []):
                        if msg.offset >= ends[tp]:
                            break
                        position = msg.offset + 1
                        yield tp.partition, msg.offset, msg.timestamp / 1000, msg.value
        finally:
            consumer.close()


# ---------------------------------------------------------------------------------------------- stores


class Stores:
    """Every worker's ClickHouse store, read through the process that owns it (never opened here)."""

    def __init__(self, settings: Sequence[Settings]) -> None:
        self.settings = list(settings)

    def rows(self, s: Settings, sql: str) -> list[dict[str, Any]]:
        if s.embedded and owner_url(s) is None:
            # opening the store here would lock its worker out of it
            raise QueryError(f"no live worker owns the store in {s.data_path}")
        out = query(s, sql, "JSONEachRow")
        return [orjson.loads(line) for line in out.splitlines() if line.strip()]

    def each(self, sql: str) -> list[list[dict[str, Any]]]:
        return [self.rows(s, sql) for s in self.settings]


def _in(communities: Sequence[str]) -> str:
    return "community_id IN (" + ",".join(f"'{c}'" for c in communities) + ")"


# ---------------------------------------------------------------------------------------------- reference


class _NoStore:
    def raw_insert(self, table: str, column_names: Sequence[str], insert_block: bytes, fmt: str) -> None:
        raise AssertionError("the reference replay stores nothing")


MemberKey = tuple[str, str]


def reference(settings: Settings, communities: set[str]) -> dict[MemberKey, dict[str, Any]]:
    """Replay both topics from the beginning into empty state, as a new consumer group would, and
    return the member rows it would store (the last one written per member wins).

    The events log is read in order; decisions sit in it where the live worker's sequencer put
    them. Then the moderation topic: a rebuild copies each decision into the log again, after
    everything, and the copy is ignored when the decision was applied already. Reading the
    moderation topic first would change nothing: it never changes state by itself.
    """
    registry = StateRegistry(settings.scoring(), settings.spam())
    pipeline = Pipeline(
        registry,
        BatchWriter(_NoStore, metrics.SINK),
        clock_skew_s=settings.event_time_max_skew_seconds,
        time_floor=settings.event_time_floor_ts,
    )
    rows: dict[MemberKey, dict[str, Any]] = {}

    def keep(outputs: Outputs) -> None:
        for key, (row, status) in outputs.member_rows().items():
            if key[0] in communities:
                rows[key] = {"row": row, "spam_status": status}

    log = Log(settings)
    chunk: list[Incoming] = []

    def flush() -> None:
        for part in moderation.split(chunk):
            if isinstance(part, moderation.Sequenced):
                if part.decision is not None:
                    d = part.decision
                    keep(registry.moderate(d, part.partition, moderation.decision_key(d)))
                continue
            decoded = pipeline.decode(part)
            keep(pipeline.state(decoded))
        chunk.clear()

    last_partition = -1
    for partition, offset, ts, value in log.read(TOPIC_EVENTS):
        if partition != last_partition or len(chunk) >= 200:
            flush()
            last_partition = partition
        chunk.append(Incoming(value, partition, offset, ts))
    flush()
    for partition, _offset, _ts, value in log.read(TOPIC_MODERATION):
        with contextlib.suppress(ValueError):
            from schemas.outputs import ModerationDecision

            d = ModerationDecision.model_validate_json(value or b"")
            keep(registry.moderate(d, partition, moderation.decision_key(d)))
    pipeline.close()
    return rows


# ---------------------------------------------------------------------------------------------- checks


MEMBER_SQL = (
    "SELECT community_id, member_id, tier, creation, curation, received, "
    "toUnixTimestamp64Milli(as_of) AS as_of_ms, events_counted, spam_status, version, decay_rate "
    "FROM engagement.member_state FINAL WHERE {where}"
)


def check(
    result: Result, settings: Settings, stores: Stores, communities: list[str], accepted: dict[str, dict[str, Any]]
) -> None:
    """Fill in stored, lost, doubled, rollups and the comparison with the replay."""
    where = _in(communities)
    ids: set[str] = set()
    for s in stores.settings:
        [counts] = stores.rows(
            s,
            f"SELECT (SELECT count() FROM engagement.events FINAL WHERE {where}) AS final, "
            f"uniqExact(event_id) AS uniq, count() AS raw FROM engagement.events WHERE {where}",
        )
        result.stored_final += int(counts["final"])
        result.stored_raw_uniq += int(counts["uniq"])
        # a row twice after FINAL would be a double count no merge removes
        result.doubled += max(0, int(counts["final"]) - int(counts["uniq"]))
        ids |= {r["event_id"] for r in stores.rows(s, f"SELECT DISTINCT event_id FROM engagement.events WHERE {where}")}
    result.stored = len(ids)
    result.lost += len(set(accepted) - ids)
    unexpected = ids - set(accepted)
    if unexpected:
        result.mismatches.append(f"{len(unexpected)} stored events were never accepted")

    # rollups: in each store the views count what its raw events say, and together what was accepted
    result.rollups_match = True
    union: dict[tuple[str, str, str], set[str]] = {}
    for s in stores.settings:
        raw = stores.rows(
            s,
            "SELECT community_id, toString(toDate(occurred_at)) AS day, type, groupUniqArray(event_id) AS ids "
            f"FROM engagement.events WHERE {where} GROUP BY community_id, day, type",
        )
        recount = {(r["community_id"], r["day"], r["type"]): len(r["ids"]) for r in raw}
        for r in raw:
            union.setdefault((r["community_id"], r["day"], r["type"]), set()).update(r["ids"])
        daily = stores.rows(
            s,
            "SELECT community_id, toString(day) AS day, joins, likes, shares, comments "
            f"FROM engagement.v_daily WHERE {where}",
        )
        rollup: Counter[tuple[str, str, str]] = Counter()
        for r in daily:
            for kind, col in (("join", "joins"), ("like", "likes"), ("share", "shares"), ("comment", "comments")):
                if int(r[col]):
                    rollup[(r["community_id"], r["day"], kind)] = int(r[col])
        for key in set(rollup) | set(recount):
            got, want = rollup.get(key, 0), recount.get(key, 0)
            if got != want:
                result.rollups_match = False
                result.mismatches.append(f"rollup {key}: view {got}, raw events {want}")
                result.doubled += max(0, got - want)
    expected: Counter[tuple[str, str, str]] = Counter(
        (e["community_id"], e["occurred_at"][:10], e["type"]) for e in accepted.values()
    )
    for key in set(expected) | set(union):
        if len(union.get(key, ())) != expected.get(key, 0):
            result.rollups_match = False
            result.mismatches.append(f"events {key}: stored {len(union.get(key, ()))}, accepted {expected[key]}")

    # member_state: the newest row of each member over every store, against the replay
    live: dict[MemberKey, dict[str, Any]] = {}
    for s in stores.settings:
        for r in stores.rows(s, MEMBER_SQL.format(where=where)):
            member = (r["community_id"], r["member_id"])
            if member not in live or int(r["version"]) > int(live[member]["version"]):
                live[member] = r
    counted = sum(int(r["events_counted"]) for r in live.values())
    if counted != len(ids):
        result.mismatches.append(f"members count {counted} events, {len(ids)} are stored")
    result.doubled += max(0, counted - len(ids))
    result.lost += max(0, len(ids) - counted)
    ref = reference(settings, set(communities))
    result.members_compared = len(live)
    result.mismatches.extend(compare(live, ref, settings.scoring().decay_rate))
    result.state_matches_replay = not any(m.startswith("member") for m in result.mismatches) and len(live) > 0


def compare(
    live: dict[MemberKey, dict[str, Any]], ref: dict[MemberKey, dict[str, Any]], decay_rate: float
) -> list[str]:
    """Differences between stored member rows and the replay's: identical tiers, statuses and counts,
    scores within 1e-9 relative once both are decayed to the same instant."""
    out: list[str] = []
    for key in sorted(set(live) ^ set(ref)):
        out.append(f"member {key}: {'only stored' if key in live else 'only in the replay'}")
    horizon = max([r["as_of_ms"] for r in live.values()] + [r["row"].as_of * 1000 for r in ref.values()] + [0])
    for key in sorted(set(live) & set(ref)):
        a, b = live[key], ref[key]
        row = b["row"]
        for name, x, y in (
            ("tier", a["tier"], row.tier),
            ("events_counted", int(a["events_counted"]), row.events_counted),
            ("spam_status", a["spam_status"], b["spam_status"]),
        ):
            if x != y:
                out.append(f"member {key} {name}: stored {x!r}, replay {y!r}")
        for col in ("creation", "curation", "received"):
            x = float(a[col]) * math.exp(-decay_rate * (horizon - int(a["as_of_ms"])) / 1000.0)
            y = float(getattr(row, col)) * math.exp(-decay_rate * (horizon - row.as_of * 1000) / 1000.0)
            if not math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-12):
                out.append(f"member {key} {col}: stored {x!r}, replay {y!r}")
    return out


# ---------------------------------------------------------------------------------------------- the drills


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, every: float = 0.25) -> float:
    """Seconds it took; raises when `check` is still false after `timeout_s`."""
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except (QueryError, OSError, RuntimeError):
            pass  # a worker restarting, a broker coming back
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every)


def answers(stores: Stores, s: Settings) -> bool:
    return bool(stores.rows(s, "SELECT 1 AS one"))


class Drill:
    """Runs scenarios on one local stack (Kafka, a worker, the gateway) that it is handed."""

    def __init__(self, stack: LocalStack, plan: Plan, say: Callable[[str], None] = lambda _m: None) -> None:
        self.stack = stack
        # senders use the stack's own token unless one was given (ENGAGE_API_TOKEN)
        self.settings = stack.settings if stack.settings.api_token else stack.settings.with_(api_token=stack.api_token)
        self.plan = plan
        self.say = say
        self.log = Log(self.settings)
        self.kill_file = Path(self.settings.fault_kill_file) if self.settings.fault_kill_file else None
        self.extra: list[LocalStack] = []  # more workers (two-workers)

    # --- processes -------------------------------------------------------------------

    def worker(self, stack: LocalStack | None = None) -> subprocess.Popen[bytes]:
        for name, proc in (stack or self.stack).children:
            if name == "worker":
                return proc
        raise RuntimeError("no worker running")

    def kill9(self, stack: LocalStack | None = None) -> None:
        """SIGKILL the worker (its whole process group), as the OOM killer would."""
        st = stack or self.stack
        proc = self.worker(st)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._reaped(st, proc)

    def _reaped(self, st: LocalStack, proc: subprocess.Popen[bytes]) -> None:
        proc.wait(timeout=30)
        st.children[:] = [(n, p) for n, p in st.children if p is not proc]

    def start_worker(self, stack: LocalStack | None = None) -> None:
        st = stack or self.stack
        st.spawn("worker", "worker")
        st.wait_until("the worker", lambda: http_ok(f"{st.settings.worker_url}/readyz"), 120)

    def drill_kill(self, point: str, timeout_s: float = 30.0) -> bool:
        """Arm the worker's kill switch at `point`; True once it died there (False: killed from outside).
        `fail:POINT`: it fails there and must stop by itself with exit status 1."""
        if self.kill_file is None:
            self.kill9()
            return False
        proc = self.worker()
        self.kill_file.write_text(point)
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.kill_file.unlink(missing_ok=True)
        if proc.poll() is None:
            self.kill9()
            return False
        self._reaped(self.stack, proc)
        return proc.returncode == (EXIT_FAILURE if point.startswith("fail:") else -signal.SIGKILL)

    def settle(self, stores: Stores, started: float | None = None) -> float:
        """Wait until the group has committed every message of the events log (so all of it is stored)."""
        t0 = started if started is not None else time.monotonic()
        ends = self.log.end()
        try:
            wait_for(lambda: self.log.committed_reach(ends), self.plan.settle_timeout_seconds, "the group to catch up")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; {self.behind(ends)}") from None
        for s in stores.settings:  # every store answers
            wait_for(partial(answers, stores, s), 60, f"the store in {s.data_path}")
        return time.monotonic() - t0

    def recovered(self, since: float) -> float:
        """Seconds from `since` until the group committed everything in the log at this moment."""
        ends = self.log.end()
        try:
            wait_for(lambda: self.log.committed_reach(ends), self.plan.settle_timeout_seconds, "recovery", every=0.2)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; {self.behind(ends)}") from None
        return time.monotonic() - since

    # --- scenarios -------------------------------------------------------------------

    def run(self, scenario: str, index: int = 0) -> Result:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
        seed = self.plan.seed * 100 + index
        events = community_feed(self.plan, seed)
        order = with_faults_of_senders(events, self.plan, seed)
        communities = sorted({e["community_id"] for e in events})
        result = Result(scenario)
        sender = Sender(self.settings)
        stores = Stores([self.settings])
        started = time.monotonic()
        try:
            getattr(self, "_" + scenario.replace("-", "_"))(result, sender, order, stores, communities)
            sender.join()
            self.settle(stores)
            accepted = {e["event_id"]: e for e in events if e["event_id"] in sender.accepted_ids}
            result.accepted = len(accepted)
            result.sent = sender.sent
            result.retried_requests = sender.retried
            if len(accepted) != len(events):
                result.mismatches.append(f"{len(events) - len(accepted)} events were never accepted")
            check(result, self.settings, stores, communities, accepted)
        finally:
            self._cleanup()  # a second worker never outlives its scenario
        result.recovery_s = round(max(result.recoveries_s, default=0.0), 2)
        result.recoveries_s = [round(x, 2) for x in result.recoveries_s]
        result.seconds = round(time.monotonic() - started, 1)
        return result

    def _cleanup(self) -> None:
        for st in self.extra:
            st.stop()
        self.extra.clear()

    def _kill9(self, result: Result, sender: Sender, order: list[dict[str, Any]], stores: Stores,
               communities: list[str]) -> None:
        # a quarter of the events flows during each kill, so the worker is busy when it dies
        points = ("write", "checkpoint", "batch", "fail:write", "random")
        quarter = math.ceil(len(order) / len(points))
        rng = random.Random(self.plan.seed)
        for i, point in enumerate(points):
            sender.start(order[i * quarter : (i + 1) * quarter], self.plan.feed_seconds / len(points))
            time.sleep(rng.uniform(0.5, 2.0))
            if point == "random":
                self.kill9()
                how = "kill -9 at a random moment"
            else:
                there = self.drill_kill(point)
                if point.startswith("fail:"):
                    outcome = "stopped with exit status 1" if there else "killed from outside"
                    how = f"failure at {point[5:]}: {outcome}"
                else:
                    how = f"SIGKILL {'at' if there else 'near'} {point}"
            killed = time.monotonic()
            result.faults.append(how)
            self.say(f"  {how}; restarting the worker")
            self.start_worker()
            result.recoveries_s.append(self.recovered(killed))
            sender.join()

    def _kafka_restart(self, result: Result, sender: Sender, order: list[dict[str, Any]], stores: Stores,
                       communities: list[str]) -> None:
        worker = self.worker()
        sender.start(order, self.plan.feed_seconds + self.plan.broker_down_seconds)
        time.sleep(self.plan.feed_seconds * 0.3)
        self.say(f"  stopping Kafka for {self.plan.broker_down_seconds:.0f}s while events flow")
        self.stack.stop_kafka()
        refused_before = sender.retried
        time.sleep(self.plan.broker_down_seconds)
        self.stack.start_kafka()
        back = time.monotonic()
        result.faults.append(
            f"Kafka stopped {self.plan.broker_down_seconds:.0f}s; {sender.retried - refused_before} requests "
            "answered 503 and retried"
        )
        result.recoveries_s.append(self.recovered(back))
        if worker.poll() is not None:
            result.mismatches.append(f"the worker exited ({worker.returncode}) while Kafka was down")
        else:
            result.faults.append(f"the worker (pid {worker.pid}) resumed without a restart")

    def _two_workers(self, result: Result, sender: Sender, order: list[dict[str, Any]], stores: Stores,
                     communities: list[str]) -> None:
        second = self.second_worker()
        stores.settings.append(second.settings)
        seconds = self.plan.feed_seconds
        sender.start(order, seconds)
        time.sleep(seconds * 0.25)
        self.say("  a second worker joins the group mid-stream")
        self.start_worker(second)
        joined = time.monotonic()
        wait_for(lambda: len(self.assigned(second)) > 0, 60, "the second worker's partitions")
        result.recoveries_s.append(self.recovered(joined))
        result.faults.append(f"second worker joined; took partitions {self.assigned(second)}")
        time.sleep(seconds * 0.2)
        self.say("  kill -9 of the first worker")
        self.kill9()
        killed = time.monotonic()
        result.faults.append("first worker killed -9; the second takes every partition")
        wait_for(lambda: len(self.assigned(second)) == self.settings.partitions, 60, "the survivor to own all")
        result.recoveries_s.append(self.recovered(killed))
        sender.join()
        self.say("  the first worker comes back (its store holds what it wrote)")
        self.start_worker()
        wait_for(lambda: self._owned_once(second), 60, "partitions to be split again")
        self.settle(stores)
        owners = self._owned_once(second)
        result.faults.append(f"afterwards each partition owned once: {owners}")
        if not owners:
            result.mismatches.append("a partition is owned by two workers or by none")

    def second_worker(self) -> LocalStack:
        data = Path(tempfile.mkdtemp(prefix="engage-chaos-worker2-", dir=self.settings.data_path))
        settings = self.settings.with_(data_dir=str(data), worker_port=free_port(), clickhouse_dsn="")
        st = LocalStack(settings, log_dir=data / "logs", quiet=True)
        self.extra.append(st)
        return st

    def behind(self, ends: dict[int, int]) -> str:
        """What a timed-out wait saw: the partitions whose commit is short of the end, and what
        each worker says of them."""
        committed = self.log.committed(list(ends))
        short = {p: (committed.get(p), e) for p, e in ends.items() if (committed.get(p) or 0) < e}
        said = []
        for st in [self.stack, *self.extra]:
            try:
                said.append(orjson.dumps(self.ownership(st)).decode())
            except OSError as exc:
                said.append(f"{st.settings.worker_url}: {exc}")
        return f"committed/end short: {short}; workers: {' | '.join(said)}; {self.worker_warnings()}"

    def worker_warnings(self, limit: int = 25) -> str:
        """The last warnings and errors of the workers' logs (what a CI failure keeps of them)."""
        out = []
        for st in [self.stack, *self.extra]:
            path = st.log_dir / "worker.log"
            with contextlib.suppress(OSError):
                lines = path.read_text("utf-8", "replace").splitlines()
                picked = [ln for ln in lines if any(w in ln for w in ("WARNING", "ERROR", "CRITICAL"))]
                out.append(f"{path}: " + " / ".join(ln[-300:] for ln in picked[-limit:]))
        return "worker logs: " + (" | ".join(out) or "none")

    def ownership(self, stack: LocalStack) -> dict[str, Any]:
        with urllib.request.urlopen(f"{stack.settings.worker_url}/v1/partitions", timeout=5) as resp:
            doc: dict[str, Any] = orjson.loads(resp.read())
            return doc

    def assigned(self, stack: LocalStack) -> list[int]:
        return list(self.ownership(stack)["assigned"])

    def _owned_once(self, second: LocalStack) -> bool:
        """Every partition assigned to one worker, and no partition's state held by both."""
        one, two = self.ownership(self.stack), self.ownership(second)
        a, b = set(one["assigned"]), set(two["assigned"])
        held_by_both = set(one["ready"]) & set(two["ready"])
        return not (a & b) and len(a | b) == self.settings.partitions and bool(a) and bool(b) and not held_by_both

    def _moderation_kill(self, result: Result, sender: Sender, order: list[dict[str, Any]], stores: Stores,
                         communities: list[str]) -> None:
        sender.send(order, self.plan.feed_seconds / 2)
        self.settle(stores)
        flagged = stores.rows(
            self.settings,
            "SELECT community_id, member_id FROM engagement.member_state FINAL "
            f"WHERE {_in(communities)} AND spam_status = 'flagged' ORDER BY community_id, member_id",
        )
        if len(flagged) < 2:
            flagged += stores.rows(
                self.settings,
                "SELECT community_id, member_id FROM engagement.member_state FINAL "
                f"WHERE {_in(communities)} AND spam_status = 'none' ORDER BY member_id LIMIT 2",
            )
        decisions = [(flagged[0], "clear"), (flagged[1], "confirm")]
        for who, action in decisions:
            moderate(self.settings, who["community_id"], who["member_id"], action)
        time.sleep(0.3)  # within a second of the decisions
        self.kill9()
        killed = time.monotonic()
        result.faults.append(
            f"cleared {flagged[0]['member_id']} and confirmed {flagged[1]['member_id']}, kill -9 0.3 s later"
        )
        self.start_worker()
        want = {"clear": "cleared", "confirm": "confirmed"}

        def decided() -> bool:
            for who, action in decisions:
                got = stores.rows(
                    self.settings,
                    "SELECT spam_status FROM engagement.member_state FINAL WHERE "
                    f"community_id = '{who['community_id']}' AND member_id = '{who['member_id']}'",
                )
                if not got or got[0]["spam_status"] != want[action]:
                    return False
            return True

        wait_for(decided, 120, "the decisions after the restart")
        result.recoveries_s.append(time.monotonic() - killed)
        result.faults.append("both decisions in member_state after the restart")

    def _clickhouse_outage(self, result: Result, sender: Sender, order: list[dict[str, Any]], stores: Stores,
                           communities: list[str]) -> None:
        fault = Path(self.settings.fault_clickhouse_file)
        seconds = self.plan.feed_seconds
        sender.start(order, seconds)
        time.sleep(seconds * 0.2)
        self.say(f"  ClickHouse refuses writes for {self.plan.clickhouse_down_seconds:.0f}s")
        fault.touch()
        try:
            time.sleep(self.plan.clickhouse_down_seconds)
        finally:
            fault.unlink(missing_ok=True)
        back = time.monotonic()
        result.faults.append(f"ClickHouse refused writes for {self.plan.clickhouse_down_seconds:.0f}s")
        result.recoveries_s.append(self.recovered(back))


# ---------------------------------------------------------------------------------------------- command


def drill_settings(data_dir: Path, base: Settings) -> Settings:
    """A stack of its own on free ports, tuned to fail fast: short batches, frequent checkpoints."""
    kafka_port = free_port_pair()
    return base.with_(
        data_dir=str(data_dir),
        kafka_port=kafka_port,
        kafka_bootstrap="",
        clickhouse_dsn="",
        gateway_port=free_port(),
        worker_port=free_port(),
        batch_size=2000,
        flush_seconds=0.3,
        snapshot_seconds=2.0,
        sink_max_retry_seconds=1.0,
        fault_clickhouse_file=str(data_dir / "fail-clickhouse"),
        fault_kill_file=str(data_dir / "kill-worker"),
        kafka_session_timeout_seconds=6.0,
    )


def table(results: Sequence[Result]) -> str:
    head = ("scenario", "accepted", "sent", "503s", "stored", "final", "raw uniq", "lost", "doubled",
            "state=replay", "rollups", "recovery s", "ok")
    lines = [head]
    for r in results:
        lines.append(
            (r.scenario, str(r.accepted), str(r.sent), str(r.retried_requests), str(r.stored), str(r.stored_final),
             str(r.stored_raw_uniq), str(r.lost), str(r.doubled), "yes" if r.state_matches_replay else "NO",
             "yes" if r.rollups_match else "NO", f"{r.recovery_s:.1f}", "ok" if r.ok else "FAIL")
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in lines
    )


def chaos_command(
    base: Settings, scenarios: Sequence[str], plan: Plan, as_json: bool, keep: bool = False
) -> int:
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        print(f"chaos: unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    data = Path(tempfile.mkdtemp(prefix="engage-chaos-"))
    settings = drill_settings(data, base)

    def say(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    results: list[Result] = []
    with LocalStack(settings, log_dir=data / "logs", quiet=True) as stack:
        say(f"chaos: a stack of its own in {data} (Kafka {settings.bootstrap})")
        drill = Drill(stack, plan, say)
        try:
            for i, name in enumerate(scenarios):
                say(f"{name}:")
                r = drill.run(name, i)
                results.append(r)
                if as_json:
                    print(r.to_json(), flush=True)
                say(f"  {'ok' if r.ok else 'FAILED'}: {r.accepted} accepted, {r.stored} stored, {r.lost} lost, "
                    f"{r.doubled} doubled, recovery {r.recovery_s:.1f}s ({r.seconds:.0f}s)")
                for m in r.mismatches[:10]:
                    say(f"  ! {m}")
        finally:
            drill._cleanup()
    if not as_json:
        print(table(results))
    if not keep:
        import shutil

        shutil.rmtree(data, ignore_errors=True)
    return 0 if all(r.ok for r in results) else 1
