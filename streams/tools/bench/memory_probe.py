"""Resident bytes per tracked member of the worker's state, in a process of its own.

Usage: python -m streams.tools.bench.memory_probe MEMBERS COMMUNITIES SPREAD_SECONDS
Each community's members join over SPREAD_SECONDS of event time and like once; prints JSON.
Counts the growth of the resident set from an empty registry to the state after the events
(ids, columns, indexes, dedup hashes, the allocator's slack), not the events fed in.
"""

from __future__ import annotations

import gc
import json
import resource
import sys

from streams.config import Settings
from streams.event_record import EventRecord
from streams.state_registry import StateRegistry


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def main(members: int, communities: int, spread: float) -> dict[str, float]:
    settings = Settings()
    reg = StateRegistry(settings.scoring(), settings.spam())
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
        del batch, like  # the input is not state: the last community's events must not be counted
    gc.collect()
    after = rss()
    n = reg.tracked_members()
    return {"members": n, "bytes_per_member": (after - before) / max(1, n)}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))))
