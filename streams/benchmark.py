"""`engage bench`: what the hot path does on this machine, side by side, in one run.

1. raw ceiling: a bare aiokafka consumer reading the topic and discarding it;
2. the baseline a Faust user would write: one event at a time, a Faust Record
   per event, one table update per event;
3. our pipeline end to end: topic -> worker -> member_state stored in ClickHouse,
   and produce-to-stored latency at half of that rate;
4. resident memory per tracked member, with 1 million members.

Numbers are printed, never asserted. Each part runs on its own fresh broker
topic or process, on the local Apache Kafka broker.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.config import TOPIC_EVENTS, Settings

TYPES = ("like", "like", "like", "share", "comment", "join")


def event_bytes(
    i: int, communities: int, members: int, start: float, spread_s: float, rnd: random.Random
) -> tuple[bytes, bytes]:
    """One canonical event as JSON bytes (built by hand: generating must not be the bottleneck)."""
    c = rnd.randrange(communities)
    m = rnd.randrange(members)
    t = TYPES[rnd.randrange(len(TYPES))]
    ts = start + spread_s * i / max(1, members)
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
    extra = ""
    if t == "join":
        extra = ',"join_source":"organic"'
    elif t == "comment":
        extra = (
            f',"target_id":"p{rnd.randrange(1000)}","target_author_id":"m{rnd.randrange(members)}",'
            f'"content_fingerprint":{rnd.getrandbits(64)},"link_count":0'
        )
    else:
        extra = f',"target_id":"p{rnd.randrange(1000)}","target_author_id":"m{rnd.randrange(members)}"'
    community = f"c{c}"
    body = (
        f'{{"event_id":"b{i}","type":"{t}","community_id":"{community}","member_id":"m{m}",'
        f'"occurred_at":"{iso}","source":"bench"{extra}}}'
    )
    return community.encode(), body.encode()


async def produce(bootstrap: str, topic: str, n: int, communities: int, members: int, seed: int = 1) -> float:
    """Fill `topic` with n events; return events/s of producing."""
    from aiokafka import AIOKafkaProducer

    rnd = random.Random(seed)
    start_ts = time.time() - 3 * 86400
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=50, max_batch_size=1 << 20, max_request_size=1 << 21
    )
    await producer.start()
    t0 = time.perf_counter()
    try:
        pending = []
        for i in range(n):
            key, value = event_bytes(i, communities, members, start_ts, 3 * 86400 * members / max(n, 1), rnd)
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return n / (time.perf_counter() - t0)


async def raw_ceiling(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=32 << 20,
    )
    await consumer.start()
    seen = 0
    t0 = 0.0
    try:
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=20000)
            if batches and not t0:
                t0 = time.perf_counter()
            seen += sum(len(v) for v in batches.values())
    finally:
        await consumer.stop()
    return n / (time.perf_counter() - t0)


BASELINE_APP = textwrap.dedent(
    """
    import sys, time, faust
    bootstrap, topic, n, done_file, app_id, datadir, mode = sys.argv[1:8]
    n = int(n)

    class Event(faust.Record, serializer="json"):
        event_id: str
        type: str
        community_id: str
        member_id: str
        occurred_at: str
        source: str
        target_id: str = None
        target_author_id: str = None
        join_source: str = None
        content_fingerprint: int = None
        link_count: int = 0

    WEIGHTS = {"join": 0.0, "like": 1.0, "share": 2.0, "comment": 3.0}
    app = faust.App(app_id, broker="kafka://" + bootstrap, store="memory://", datadir=datadir,
                    web_enabled=False, consumer_auto_offset_reset="earliest", topic_replication_factor=1)
    events = app.topic(topic, value_type=Event) if mode == "record" else app.topic(topic, value_type=bytes,
                                                                                 value_serializer="raw")
    scores = app.Table("scores", default=float, partitions=8)
    state = {"n": 0, "t0": 0.0}

    @app.agent(events)
    async def score(stream):
        if mode == "take":
            # Faust's own ceiling: batches taken and thrown away, no decoding, no state
            async for batch in stream.take_events(10000, within=0.5):
                if not state["t0"]:
                    state["t0"] = time.perf_counter()
                state["n"] += len(batch)
                if state["n"] >= n:
                    with open(done_file, "w") as fh:
                        fh.write(str(state["n"] / (time.perf_counter() - state["t0"])))
            return
        async for ev in stream:
            if not state["t0"]:
                state["t0"] = time.perf_counter()
            scores[ev.community_id + "/" + ev.member_id] += WEIGHTS[ev.type]
            state["n"] += 1
            if state["n"] == n:
                with open(done_file, "w") as fh:
                    fh.write(str(n / (time.perf_counter() - state["t0"])))

    if __name__ == "__main__":
        sys.argv = [sys.argv[0], "worker", "-l", "warn"]
        app.main()
    """
)


def faust_baseline(
    bootstrap: str, topic: str, n: int, workdir: Path, mode: str = "record", timeout_s: float = 900
) -> float:
    """mode "record": one event at a time, a Record each, a table update each; "take": Faust's ceiling."""
    script = workdir / "baseline_app.py"
    script.write_text(BASELINE_APP)
    done = workdir / f"baseline-{mode}.done"
    app_id = f"bench-baseline-{mode}-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen(
        [sys.executable, str(script), bootstrap, topic, str(n), str(done), app_id, str(workdir / f"faust-{mode}"),
         mode],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "baseline.log", "wb"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not done.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"baseline app exited {proc.returncode}; see {workdir / 'baseline.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("baseline did not finish in time")
            time.sleep(0.5)
        time.sleep(0.2)
        return float(done.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _metric(url: str, name: str) -> float:
    total = 0.0
    with urllib.request.urlopen(url, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
    return total


def _histogram(url: str, name: str) -> dict[float, float]:
    buckets: dict[float, float] = {}
    with urllib.request.urlopen(url, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + "_bucket{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """histogram_quantile over the difference of two cumulative bucket snapshots."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_b, prev_c = 0.0, 0.0
    for b, c in zip(bounds, counts, strict=True):
        if c >= rank:
            if b == float("inf"):
                return prev_b
            return prev_b + (b - prev_b) * (rank - prev_c) / max(c - prev_c, 1e-12)
        prev_b, prev_c = b, c
    return bounds[-1]


@dataclass
class PipelineResult:
    events_per_s: float
    p50_s: float
    p99_s: float
    latency_rate: float


def pipeline(settings: Settings, n: int, members: int, communities: int, workdir: Path) -> PipelineResult:
    """Our worker from a pre-filled topic to member_state in ClickHouse, then latency at half that rate."""
    from streams.embedded_sql import query
    from streams.local_stack import LocalStack

    stack = LocalStack(settings, log_dir=workdir / "logs", quiet=True)
    stack.spawn("worker", "worker")
    try:
        stack.wait_until("the worker", lambda: _ok(f"{settings.worker_url}/readyz"), 120)
        metrics_url = f"{settings.worker_url}/metrics"
        t0 = None
        while True:
            done = _metric(metrics_url, "engage_events_processed_total")
            if done > 0 and t0 is None:
                t0 = time.perf_counter()
            if done >= n:
                break
            stack.wait_until("progress", lambda: True, 1)
            time.sleep(0.2)
        assert t0 is not None
        # "processed" counts at decode; wait until the last batch is stored too, or its old
        # events would land in the latency window below
        while _metric(metrics_url, 'engage_sink_rows_total{table="events"}') < n:
            time.sleep(0.2)
        # member_state rows are stored in the same flush as the batch's events: wait for the last ones
        expected = int(
            query(settings, "SELECT uniqExact(community_id, member_id) FROM engagement.events", "TSV")
        )
        while int(query(settings, "SELECT count() FROM engagement.member_state FINAL", "TSV")) < expected:
            time.sleep(0.2)
        rate = n / (time.perf_counter() - t0)
        # latency at half of the measured rate, for ~15 s
        half = max(100.0, rate / 2)
        before = _histogram(metrics_url, "engage_pipeline_latency_seconds")
        asyncio.run(_paced(settings.bootstrap, TOPIC_EVENTS, half, 15.0, communities, members))
        target = n + int(half * 15.0) - 1
        deadline = time.monotonic() + 120
        while _metric(metrics_url, "engage_events_processed_total") < target and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)
        after = _histogram(metrics_url, "engage_pipeline_latency_seconds")
        return PipelineResult(rate, quantile(0.5, before, after), quantile(0.99, before, after), half)
    finally:
        stack.stop()


async def _paced(
    bootstrap: str, topic: str, rate: float, seconds: float, communities: int, members: int
) -> None:
    from aiokafka import AIOKafkaProducer

    rnd = random.Random(99)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    await producer.start()
    try:
        total = int(rate * seconds)
        t0 = time.perf_counter()
        for i in range(total):
            key, value = event_bytes(10_000_000 + i, communities, members, time.time(), 0.0, rnd)
            await producer.send(topic, value=value, key=key)
            lag = (i + 1) / rate - (time.perf_counter() - t0)
            if lag > 0.005:
                await asyncio.sleep(lag)
        await producer.flush()
    finally:
        await producer.stop()


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


MEMORY_PROBE = textwrap.dedent(
    """
    import gc, json, sys, resource
    from streams.scoring import ScoringConfig
    from streams.spam.config import SpamConfig
    from streams.state_registry import StateRegistry
    from streams.event_record import EventRecord

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()

    members, communities, spread = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    reg = StateRegistry(ScoringConfig(), SpamConfig())
    gc.collect()
    before = rss()
    per = members // communities
    t = 1_767_225_600.0
    offset = 0
    step = spread / per  # seconds between joins in a community
    for c in range(communities):
        cid = f"c{c}"
        batch = []
        for m in range(per):
            offset += 1
            mid = f"member-{m:07d}"
            batch.append((EventRecord(f"j{offset}", 0, cid, mid, t + m * step, 0, None, None, 2, None, 0), 0, offset))
            offset += 1
            author = f"member-{(m * 7) % per:07d}"
            like = EventRecord(f"l{offset}", 1, cid, mid, t + m * step + 0.5, 0, "p1", author, 0, None, 0)
            batch.append((like, 0, offset))
        reg.apply(batch, outputs=False)
    gc.collect()
    after = rss()
    n = reg.tracked_members()
    print(json.dumps({"members": n, "bytes_per_member": (after - before) / max(1, n)}))
    """
)


CORES_PROBE = textwrap.dedent(
    '''
    import json, random, sys, tempfile, time
    from datetime import UTC, datetime
    from sinks.batch_writer import BatchWriter
    from sinks.clickhouse import connect
    from sinks.migrate import migrate
    from streams.batch_processor import BatchProcessor, Incoming
    from streams.benchmark import event_bytes
    from streams.decode import Decoded, decode
    from streams.event_record import EventRecord
    from streams.scoring import ScoringConfig
    from streams.scoring.bench import bench_scoring
    from streams.simulate import simulate
    from streams.spam.config import SpamConfig
    from streams.spam.detector import SpamDetector
    from streams.state_registry import StateRegistry
    import orjson

    n, members, communities = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    out = {"scoring_core_events_per_s": bench_scoring(n, members, measure_memory=False)["events_per_second"]}

    # spam core alone, on a simulated community (realistic comment/like mix, planted spam)
    events, _ = simulate(seed=7, communities=4, members_per_community=3000, days=14)
    by_community = {}
    for e in events:
        rec = decode(orjson.dumps(e))
        assert isinstance(rec, Decoded)
        by_community.setdefault(e["community_id"], []).append(rec.record)
    total = sum(len(v) for v in by_community.values())
    t0 = time.perf_counter()
    for cid, recs in by_community.items():
        det = SpamDetector(cid, SpamConfig())
        for i in range(0, len(recs), 10000):
            det.observe(recs[i : i + 10000])
    out["spam_core_events_per_s"] = total / (time.perf_counter() - t0)

    # the worker's whole per-batch work without Kafka and Faust, into embedded ClickHouse
    client = connect(f"chdb://{tempfile.mkdtemp()}/ch")
    migrate(client)
    cfg = ScoringConfig()
    proc = BatchProcessor(BatchWriter(lambda: client), decay_rate=cfg.decay_rate)
    reg = StateRegistry(cfg, SpamConfig())
    rnd = random.Random(1)
    start = time.time() - 3 * 86400
    msgs = [Incoming(event_bytes(i, communities, members, start, 3 * 86400 * members / n, rnd)[1], 0, i, 0.0)
            for i in range(n)]
    parts = {"decode": 0.0, "score_and_spam": 0.0, "rows": 0.0, "insert": 0.0}
    for k in range(0, n, 10000):
        t0 = time.perf_counter(); p = proc.prepare(msgs[k : k + 10000])
        t1 = time.perf_counter(); o = reg.apply(p.records)
        t2 = time.perf_counter(); proc.add_state(p, o)
        t3 = time.perf_counter(); proc.store(p)
        t4 = time.perf_counter()
        for name, d in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            parts[name] += d
    out["in_process_events_per_s"] = n / sum(parts.values())
    out["in_process_us_per_event"] = {k: 1e6 * v / n for k, v in parts.items()}
    print(json.dumps(out))
    '''
)


def cores(n: int, members: int, communities: int) -> dict[str, Any]:
    """The pure cores and the worker's per-batch work in one process, without Kafka and Faust."""
    out = subprocess.run(
        [sys.executable, "-c", CORES_PROBE, str(n), str(members), str(communities)],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def memory_per_member(members: int = 1_000_000, communities: int = 100, spread_days: float = 0.1) -> float:
    """Resident bytes per member; each community's members join over `spread_days` of event time."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(members), str(communities), str(spread_days * 86400)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["bytes_per_member"])


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(n: int, members: int, communities: int, baseline_n: int, settings: Settings) -> dict[str, Any]:
    from streams.local_stack import LocalStack
    from streams.topics import ensure_topics

    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-"))
    bench_settings = settings.with_(data_dir=str(workdir / "data"), batch_size=settings.batch_size)
    results: dict[str, Any] = {"events": n, "members": members, "communities": communities}
    stack = LocalStack(bench_settings, log_dir=workdir / "logs", quiet=True)
    try:
        if stack.kafka_running():
            raise SystemExit(
                f"a broker already runs on {bench_settings.bootstrap} for {workdir}; pick another --kafka-port"
            )
        stack.kafka("start")
        stack.started_kafka = True
        ensure_topics(bench_settings)
        say(f"producing {n} events ({members} members, {communities} communities) ...")
        results["produce_events_per_s"] = asyncio.run(
            produce(bench_settings.bootstrap, TOPIC_EVENTS, n, communities, members)
        )
        say("1/4 raw aiokafka consumer ...")
        results["raw_events_per_s"] = asyncio.run(raw_ceiling(bench_settings.bootstrap, TOPIC_EVENTS, n))
        say(f"2/4 Faust baseline (one event at a time, first {baseline_n} events) ...")
        results["baseline_events_per_s"] = faust_baseline(
            bench_settings.bootstrap, TOPIC_EVENTS, baseline_n, workdir
        )
        say("   Faust take() ceiling (batches thrown away) ...")
        results["faust_take_events_per_s"] = faust_baseline(bench_settings.bootstrap, TOPIC_EVENTS, n, workdir, "take")
        say("3/4 our pipeline end to end ...")
        p = pipeline(bench_settings, n, members, communities, workdir)
        results.update(
            pipeline_events_per_s=p.events_per_s,
            latency_rate=p.latency_rate,
            latency_p50_s=p.p50_s,
            latency_p99_s=p.p99_s,
        )
    finally:
        stack.stop()
    say("   the cores and the batch work in one process, no Kafka or Faust ...")
    results.update(cores(min(n, 200_000), members, communities))
    say("4/4 memory per member with 1,000,000 members ...")
    results["bytes_per_member"] = memory_per_member(spread_days=0.1)  # everyone is a newcomer
    results["bytes_per_member_spread"] = memory_per_member(spread_days=60)  # a community two months old
    results["machine"] = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    return results


def report(r: dict[str, Any]) -> str:
    raw, base, ours = r["raw_events_per_s"], r["baseline_events_per_s"], r["pipeline_events_per_s"]
    lines = [
        f"engage bench: {r['events']:,} events, {r['members']:,} members, {r['communities']:,} communities",
        f"  machine: {r['machine']}",
        f"  produce (aiokafka, acks=1)              {r['produce_events_per_s']:>12,.0f} events/s",
        f"  1. raw ceiling (aiokafka, discard)      {raw:>12,.0f} events/s",
        f"  2. Faust baseline (1 event at a time)   {base:>12,.0f} events/s",
        f"     Faust take() ceiling, no work       {r['faust_take_events_per_s']:>12,.0f} events/s",
        f"  3. engage pipeline, topic -> ClickHouse {ours:>12,.0f} events/s"
        f"   = {ours / base:.1f}x baseline (target 10x), {100 * ours / raw:.0f}% of raw (target 50%),"
        f" target 100,000",
        f"     latency produce -> stored at {r['latency_rate']:,.0f} events/s: p50 {r['latency_p50_s'] * 1000:.0f} ms,"
        f" p99 {r['latency_p99_s'] * 1000:.0f} ms",
        f"     in one process, no Kafka or Faust: scoring core {r['scoring_core_events_per_s']:,.0f}, spam core "
        f"{r['spam_core_events_per_s']:,.0f}, whole batch work {r['in_process_events_per_s']:,.0f} events/s",
        "     batch work per event: "
        + ", ".join(f"{k} {v:.1f} us" for k, v in r["in_process_us_per_event"].items()),
        f"  4. resident memory per member (1M)      {r['bytes_per_member']:>12,.0f} bytes (target 300),"
        " all joined within hours",
        f"     same, joins spread over 60 days     {r['bytes_per_member_spread']:>12,.0f} bytes",
    ]
    return "\n".join(lines)
