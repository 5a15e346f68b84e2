"""The worker restarts a Faust table recovery that waits on a changelog partition sending nothing.

Held on Faust's own `Recovery` (an app that never connects): the watch reads only the
bookkeeping Faust keeps while it recovers, so a Faust upgrade that renames it fails here.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TP

from streams.worker.app import stalled_changelogs

CHANGELOG = "engage-worker-scoring-snapshots-changelog"


def _recovery(highwaters: dict[int, int], offsets: dict[int, int]) -> Any:
    app = faust.App("watch-test", broker="kafka://127.0.0.1:1", store="memory://")
    tables: Any = app.tables
    recovery = tables.recovery
    for p, hw in highwaters.items():
        recovery.active_highwaters[TP(CHANGELOG, p)] = hw
        recovery.active_offsets[TP(CHANGELOG, p)] = offsets[p]
    recovery._set_recovery_started()
    return recovery


def test_a_partition_still_needed_that_sent_nothing_for_the_threshold_is_stalled() -> None:
    # Faust's highwater is a partition's last offset; 2 has been read to it, 6 and 7 not at all
    recovery = _recovery({6: 2, 7: 21, 2: 13}, {6: -1, 7: -1, 2: 13})
    started = recovery._recovery_started_at
    assert stalled_changelogs(recovery, started + 19.0, 20.0) == []  # not yet
    assert stalled_changelogs(recovery, started + 21.0, 20.0) == [TP(CHANGELOG, 6), TP(CHANGELOG, 7)]


def test_events_arriving_or_recovery_over_is_not_a_stall() -> None:
    recovery = _recovery({6: 300}, {6: -1})
    started = recovery._recovery_started_at
    recovery._active_events_received_at[TP(CHANGELOG, 6)] = started + 15.0  # a slow but moving partition
    assert stalled_changelogs(recovery, started + 30.0, 20.0) == []
    assert stalled_changelogs(recovery, started + 36.0, 20.0) == [TP(CHANGELOG, 6)]  # then silent for 21 s
    recovery._set_recovery_ended()
    assert stalled_changelogs(recovery, started + 100.0, 20.0) == []


def test_unreadable_recovery_state_is_never_a_stall() -> None:
    assert stalled_changelogs(object(), 1e9, 20.0) == []


def test_the_watch_restarts_a_stalled_recovery_as_a_rebalance_would() -> None:
    import asyncio
    import time

    from streams import metrics
    from streams.worker.app import RecoveryWatch

    recovery = _recovery({6: 2}, {6: -1})
    recovery._recovery_started_at = time.monotonic() - 25.0  # silent for 25 s
    before = metrics.RECOVERY_RESTARTS._value.get()  # type: ignore[attr-defined]

    async def go() -> bool:
        watch = RecoveryWatch(recovery.app, every=0.01)
        watch.start()
        try:
            for _ in range(100):
                if recovery.signal_recovery_start.is_set():
                    await asyncio.sleep(0.05)  # and no second restart while this one is pending
                    return True
                await asyncio.sleep(0.01)
            return False
        finally:
            watch.stop()

    assert asyncio.run(go())
    assert metrics.RECOVERY_RESTARTS._value.get() - before == 1  # type: ignore[attr-defined]
