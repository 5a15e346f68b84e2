"""Stall detection: Faust consumers are known to stop silently.

A worker is stalled when it has lag but has finished no batch for `limit_s`
seconds. `/healthz` then fails so an orchestrator restarts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from streams import metrics


class StallDetector:
    def __init__(self, limit_s: float, clock: Callable[[], float] = time.time) -> None:
        self.limit_s = limit_s
        self._clock = clock
        self._last_progress = clock()
        self._lag = 0
        metrics.WORKER_STALLED.set(0)

    def progress(self) -> None:
        self._last_progress = self._clock()
        metrics.WORKER_LAST_PROGRESS.set(self._last_progress)
        self._update()

    def observe_lag(self, lag: int) -> None:
        self._lag = lag
        self._update()

    def stalled(self) -> bool:
        return self._lag > 0 and self._clock() - self._last_progress > self.limit_s

    def _update(self) -> None:
        metrics.WORKER_STALLED.set(1 if self.stalled() else 0)

    def healthy(self) -> tuple[bool, str]:
        self._update()
        if self.stalled():
            idle = self._clock() - self._last_progress
            return False, f"no batch finished for {idle:.0f}s while {self._lag} messages wait"
        return True, "ok"
