"""The Faust app a Faust user would write, run by `engage bench` as a process of its own.

mode "record": one event at a time, a Faust Record per event, one table update per event;
mode "take": Faust's own ceiling, batches taken with `take_events` and thrown away.
Usage: python -m streams.tools.bench.faust_baseline BOOTSTRAP TOPIC N DONE_FILE APP_ID DATADIR MODE
"""

from __future__ import annotations

import sys
import time
from typing import Any

import faust

bootstrap, topic, n_text, done_file, app_id, datadir, mode = sys.argv[1:8]
n = int(n_text)


class Event(faust.Record, serializer="json"):
    event_id: str
    type: str
    community_id: str
    member_id: str
    occurred_at: str
    source: str
    target_id: str | None = None
    target_author_id: str | None = None
    join_source: str | None = None
    content_fingerprint: int | None = None
    link_count: int = 0


WEIGHTS = {"join": 0.0, "like": 1.0, "share": 2.0, "comment": 3.0}
app = faust.App(
    app_id,
    broker="kafka://" + bootstrap,
    store="memory://",
    datadir=datadir,
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    topic_replication_factor=1,
)
events = (
    app.topic(topic, value_type=Event)
    if mode == "record"
    else app.topic(topic, value_type=bytes, value_serializer="raw")
)
scores = app.Table("scores", default=float, partitions=8)
state: dict[str, float] = {"n": 0, "t0": 0.0}


def done(rate: float) -> None:
    with open(done_file, "w") as fh:
        fh.write(str(rate))


@app.agent(events)
async def score(stream: Any) -> None:
    if mode == "take":
        first = 0  # the first batch's events: timing starts when it arrives, so they are not counted
        async for batch in stream.take_events(100, within=0.05):
            events = sum(e.message.value.count(b"\n") + 1 for e in batch)  # events in the envelopes
            if not state["t0"]:
                state["t0"] = time.perf_counter()
                first = events
            state["n"] += events
            if state["n"] >= n:
                done((state["n"] - first) / max(time.perf_counter() - state["t0"], 1e-9))
        return
    async for ev in stream:
        if not state["t0"]:
            state["t0"] = time.perf_counter()
        scores[ev.community_id + "/" + ev.member_id] += WEIGHTS[ev.type]
        state["n"] += 1
        if state["n"] == n:
            done(n / (time.perf_counter() - state["t0"]))


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()
