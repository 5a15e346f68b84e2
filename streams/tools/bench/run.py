"""`engage bench`: what the hot path does on this machine, side by side, in one run.

1. a bare aiokafka consumer reading and discarding, on a one-event-per-message topic;
2. the same on the envelope topic (`engagement.events`, JSON Lines envelopes);
3. the naive Faust agent (a Record and a table update per event) on one-event messages;
4. Faust `take_events` with no work, on envelopes;
5. engage end to end: envelopes -> worker -> member_state stored in ClickHouse;
6. p50/p99 from Kafka append to stored, at half of (5);
7. resident bytes per tracked member at 1,000,000 members, joins within hours and over 60 days;
8. how the cost grows: (5) again with 10x the members and with 10x the communities.

Numbers are printed, never asserted. Every part runs on the local Apache Kafka broker;
run it alone (on two cores anything beside it halves the figures).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams import native
from streams.config import TOPIC_EVENTS, Settings
from streams.tools.bench.load import fill, paced

SINGLE_TOPIC = "bench.one-event-per-message"


async def raw_ceiling(bootstrap: str, topic: str, n: int) -> float:
    """A bare aiokafka consumer: events/s read and thrown away (an envelope counts its lines)."""
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
            seen += sum(m.value.count(b"\n") + 1 for msgs in batches.values() for m in msgs)
    finally:
        await consumer.stop()
    return n / (time.perf_counter() - t0)


def faust_baseline(
    bootstrap: str, topic: str, n: int, workdir: Path, mode: str = "record", timeout_s: float = 900
) -> float:
    """mode "record": one event at a time, a Record each, a table update each; "take": Faust's ceiling."""
    done = workdir / f"baseline-{mode}.done"
    app_id = f"bench-baseline-{mode}-{uuid.uuid4().hex[:6]}"
    with open(workdir / f"baseline-{mode}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.tools.bench.faust_baseline", bootstrap, topic, str(n), str(done), app_id,
             str(workdir / f"faust-{mode}"), mode],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not done.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"baseline app exited {proc.returncode}; see {workdir}/baseline-{mode}.log")
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
            proc.wait()


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



def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False



@dataclass
class PipelineResult:
    events_per_s: float
    p50_s: float
    p99_s: float
    latency_rate: float


def pipeline(
    settings: Settings, n: int, members: int, communities: int, workdir: Path, latency: bool = True
) -> PipelineResult:
    """Our worker from a pre-filled envelope topic to member_state in ClickHouse, then latency at half that rate."""
    from streams.embedded_sql import query
    from streams.tools.local_stack import LocalStack

    stack = LocalStack(settings, log_dir=workdir / "logs", quiet=True)
    stack.spawn("worker", "worker")
    try:
        stack.wait_until("the worker", lambda: _ok(f"{settings.worker_url}/readyz"), 120)
        metrics_url = f"{settings.worker_url}/metrics"
        # Polled once a second: a scrape of /metrics holds the worker's GIL ~50 ms on the slow VM,
        # and twice a second it took a tenth of the worker (py-spy; Prometheus scrapes every 15 s).
        # The rate counts the events processed after the first poll that saw progress, up to the
        # last batch's own time.
        t0 = None
        done0 = 0.0
        while True:
            done = _metric(metrics_url, "engage_events_processed_total")
            if done > 0 and t0 is None:
                t0, done0 = time.time(), done
            if done >= n:
                break
            stack.check_children("waiting for the worker")
            time.sleep(1.0)
        assert t0 is not None
        t_end = _metric(metrics_url, "engage_worker_last_progress_timestamp_seconds")
        # "processed" counts once a batch is stored; member_state rows go in the same batch
        expected = int(query(settings, "SELECT uniqExact(community_id, member_id) FROM engagement.events", "TSV"))
        stored = int(query(settings, "SELECT count() FROM engagement.member_state FINAL", "TSV"))
        if stored < expected:
            raise RuntimeError(f"member_state holds {stored:,} members of {expected:,} after every event was processed")
        rate = (n - done0) / max(t_end - t0, 1e-9) if done0 < n else float("nan")
        if not latency:
            return PipelineResult(rate, float("nan"), float("nan"), 0.0)
        half = max(100.0, rate / 2)
        seconds = 15.0
        before = _histogram(metrics_url, "engage_pipeline_latency_seconds")
        sent = asyncio.run(paced(settings.bootstrap, TOPIC_EVENTS, half, seconds, communities, members))
        deadline = time.monotonic() + 120
        while _metric(metrics_url, "engage_events_processed_total") < n + sent and time.monotonic() < deadline:
            time.sleep(1.0)
        after = _histogram(metrics_url, "engage_pipeline_latency_seconds")
        return PipelineResult(rate, quantile(0.5, before, after), quantile(0.99, before, after), half)
    finally:
        stack.stop()


def _with_broker(settings: Settings, workdir: Path) -> Any:
    from streams.tools.local_stack import LocalStack
    from streams.topics import ensure_topics

    stack = LocalStack(settings, log_dir=workdir / "logs", quiet=True)
    if stack.kafka_running():
        raise SystemExit(f"a broker already runs on {settings.bootstrap}; pick another --kafka-port")
    stack.kafka("start")
    stack.started_kafka = True
    ensure_topics(settings)
    return stack


def scaled(settings: Settings, n: int, members: int, communities: int) -> float:
    """(5) alone on a fresh broker and store: events/s end to end."""
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-scale-"))
    s = settings.with_(data_dir=str(workdir / "data"))
    stack = _with_broker(s, workdir)
    try:
        asyncio.run(fill(s.bootstrap, TOPIC_EVENTS, n, communities, members, envelopes=True))
        return pipeline(s, n, members, communities, workdir, latency=False).events_per_s
    finally:
        stack.stop()


def _probe(module: str, *args: object) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def memory_per_member(members: int = 1_000_000, communities: int = 100, spread_days: float = 0.1) -> float:
    """Resident bytes per member; each community's members join over `spread_days` of event time."""
    probe = _probe("streams.tools.bench.memory_probe", members, communities, spread_days * 86400)
    return float(probe["bytes_per_member"])


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(
    n: int, members: int, communities: int, baseline_n: int, settings: Settings, scale: bool = True
) -> dict[str, Any]:
    from streams.topics import admin_client

    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-"))
    s = settings.with_(data_dir=str(workdir / "data"))
    results: dict[str, Any] = {"events": n, "members": members, "communities": communities}
    stack = _with_broker(s, workdir)
    try:
        from kafka.admin import NewTopic

        admin = admin_client(s)
        admin.create_topics([NewTopic(SINGLE_TOPIC, s.partitions, 1)])
        admin.close()
        say(f"producing {n:,} events ({members:,} members, {communities:,} communities), twice ...")
        results["produce_events_per_s"] = asyncio.run(
            fill(s.bootstrap, SINGLE_TOPIC, n, communities, members, envelopes=False)
        )
        results["produce_envelopes_events_per_s"] = asyncio.run(
            fill(s.bootstrap, TOPIC_EVENTS, n, communities, members, envelopes=True)
        )
        say("1/8 raw aiokafka consumer, one event per message ...")
        results["raw_events_per_s"] = asyncio.run(raw_ceiling(s.bootstrap, SINGLE_TOPIC, n))
        say("2/8 raw aiokafka consumer, envelopes ...")
        results["raw_envelope_events_per_s"] = asyncio.run(raw_ceiling(s.bootstrap, TOPIC_EVENTS, n))
        say(f"3/8 naive Faust agent (one event at a time, first {baseline_n:,} events) ...")
        results["baseline_events_per_s"] = faust_baseline(s.bootstrap, SINGLE_TOPIC, baseline_n, workdir)
        say("4/8 Faust take_events(), no work, envelopes ...")
        results["faust_take_events_per_s"] = faust_baseline(s.bootstrap, TOPIC_EVENTS, n, workdir, "take")
        say("5/8 engage end to end, and 6/8 latency at half of it ...")
        p = pipeline(s, n, members, communities, workdir)
        results.update(
            pipeline_events_per_s=p.events_per_s,
            latency_rate=p.latency_rate,
            latency_p50_s=p.p50_s,
            latency_p99_s=p.p99_s,
        )
    finally:
        stack.stop()
    say("   the cores and the batch steps in one process, no Kafka or Faust ...")
    results.update(_probe("streams.tools.bench.cores_probe", min(n, 200_000), members, communities))
    say("7/8 memory per member with 1,000,000 members ...")
    results["bytes_per_member"] = memory_per_member(spread_days=0.1)  # everyone is a newcomer
    results["bytes_per_member_spread"] = memory_per_member(spread_days=60)  # a community two months old
    if scale:
        say("8/8 (5) with 10x the members, then with 10x the communities ...")
        results["pipeline_10x_members_events_per_s"] = scaled(s, n, members * 10, communities)
        results["pipeline_10x_communities_events_per_s"] = scaled(s, n, members, communities * 10)
    results["machine"] = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, hot path {native.mode}"
    return results


def report(r: dict[str, Any]) -> str:
    raw, base, ours = r["raw_events_per_s"], r["baseline_events_per_s"], r["pipeline_events_per_s"]
    lines = [
        f"engage bench: {r['events']:,} events, {r['members']:,} members, {r['communities']:,} communities",
        f"  machine: {r['machine']}",
        f"  1. raw aiokafka, one event per message   {raw:>12,.0f} events/s",
        f"  2. raw aiokafka, envelopes               {r['raw_envelope_events_per_s']:>12,.0f} events/s",
        f"  3. naive Faust agent                     {base:>12,.0f} events/s",
        f"  4. Faust take_events(), no work, envelopes {r['faust_take_events_per_s']:>10,.0f} events/s",
        f"  5. engage end to end, topic -> ClickHouse {ours:>11,.0f} events/s = {ours / base:.1f}x naive"
        " (targets: 100,000 and 30x)",
        f"  6. latency append -> stored at {r['latency_rate']:,.0f} events/s: p50 {r['latency_p50_s'] * 1000:.0f} ms,"
        f" p99 {r['latency_p99_s'] * 1000:.0f} ms (target p99 1 s)",
        f"     in one process, no Kafka or Faust: scoring core {r['scoring_core_events_per_s']:,.0f}, spam core "
        f"{r['spam_core_events_per_s']:,.0f}, batch work {r['in_process_events_per_s']:,.0f} events/s"
        f" ({r['in_process_sequential_events_per_s']:,.0f} with the steps one after another)",
        "     batch steps per event: " + ", ".join(f"{k} {v:.1f} us" for k, v in r["in_process_us_per_event"].items()),
        f"  7. resident memory per member (1M), joins within hours {r['bytes_per_member']:>6,.0f} bytes (target 300)",
        f"     same, joins spread over 60 days                  {r['bytes_per_member_spread']:>6,.0f} bytes",
    ]
    if "pipeline_10x_members_events_per_s" in r:
        m10, c10 = r["pipeline_10x_members_events_per_s"], r["pipeline_10x_communities_events_per_s"]
        lines.append(
            f"  8. (5) with 10x members {m10:,.0f} events/s ({m10 / ours:.0%} of 5), with 10x communities"
            f" {c10:,.0f} ({c10 / ours:.0%}); target within 25%"
        )
    return "\n".join(lines)
