"""The pure cores and the worker's batch work in one process, without Kafka or Faust.

Usage: python -m streams.tools.bench.cores_probe EVENTS MEMBERS COMMUNITIES; prints JSON: each core's
events/s, and the pipeline's steps in microseconds per event into embedded ClickHouse.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from typing import Any

import orjson

from sinks.access import ClickHouseAccess
from sinks.batch_writer import BatchWriter
from streams import metrics
from streams.config import Settings
from streams.decode import Decoded, decode
from streams.envelopes import envelope
from streams.spam.detector import SpamDetector
from streams.state_registry import StateRegistry
from streams.tools.bench.load import event_line
from streams.tools.bench.scoring import bench_scoring
from streams.tools.simulate import simulate
from streams.worker.app import tune_interpreter
from streams.worker.pipeline import Incoming, Pipeline

BATCH_EVENTS = 20_000


def spam_core_rate(settings: Settings) -> float:
    """The spam core alone on simulated communities (realistic comment/like mix, planted spam)."""
    events, _ = simulate(seed=7, communities=4, members_per_community=3000, days=14)
    by_community: dict[str, list[Any]] = {}
    for e in events:
        rec = decode(orjson.dumps(e))
        assert isinstance(rec, Decoded)
        by_community.setdefault(e["community_id"], []).append(rec.record)
    total = sum(len(v) for v in by_community.values())
    t0 = time.perf_counter()
    for cid, recs in by_community.items():
        det = SpamDetector(cid, settings.spam())
        for i in range(0, len(recs), 10000):
            det.observe(recs[i : i + 10000])
    return total / (time.perf_counter() - t0)


def main(n: int, members: int, communities: int) -> dict[str, Any]:
    settings = Settings()

    def new_pipeline() -> Pipeline:
        registry = StateRegistry(settings.scoring(), settings.spam())
        return Pipeline(registry, BatchWriter(lambda: ch, metrics.SINK), 300.0, settings.event_time_floor_ts)

    out: dict[str, Any] = {
        "scoring_core_events_per_s": bench_scoring(n, members, measure_memory=False)["events_per_second"],
        "spam_core_events_per_s": spam_core_rate(settings),
    }
    ch = ClickHouseAccess(f"chdb://{tempfile.mkdtemp()}/ch")
    ch.migrate()
    rnd = random.Random(1)
    start = time.time() - 3 * 86400
    lines = [event_line(i, communities, members, start, 3 * 86400 / n, rnd)[1] for i in range(n)]
    messages = [Incoming(envelope(lines[k : k + 1000]), 0, k, time.time()) for k in range(0, n, 1000)]
    per_batch = BATCH_EVENTS // 1000

    # the steps one after another, to see what each costs
    pipeline = new_pipeline()
    parts = {"decode": 0.0, "state": 0.0, "store_events": 0.0, "store_state": 0.0}
    for k in range(0, len(messages), per_batch):
        t0 = time.perf_counter()
        decoded = pipeline.decode(messages[k : k + per_batch])
        t1 = time.perf_counter()
        outputs = pipeline.state(decoded)
        t2 = time.perf_counter()
        pipeline.store_events(decoded, time.time())
        t3 = time.perf_counter()
        pipeline.store_state(outputs)
        t4 = time.perf_counter()
        for name, d in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[name] += d
    out["in_process_us_per_event"] = {k: 1e6 * v / n for k, v in parts.items()}
    out["in_process_sequential_events_per_s"] = n / sum(parts.values())

    # and as the worker runs them: raw events stored while the batch is scored
    ch.client().command("TRUNCATE TABLE engagement.events")
    pipeline = new_pipeline()
    t0 = time.perf_counter()
    for k in range(0, len(messages), per_batch):
        pipeline.process(messages[k : k + per_batch])
    out["in_process_events_per_s"] = n / (time.perf_counter() - t0)
    pipeline.close()
    return out


if __name__ == "__main__":
    tune_interpreter()  # as the worker process is (collector thresholds)
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
