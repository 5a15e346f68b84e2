"""Fault injection for drills (`engage chaos`): the worker kills itself with SIGKILL at a named point.

While the file `ENGAGE_FAULT_KILL_FILE` names a point, the worker deletes the file and
sends itself SIGKILL when it reaches that point, as the OOM killer or a lost node would:
no handler runs, nothing is flushed. `fail:POINT` raises `DrillFailure` there instead, as
a bug would: the worker must stop with exit status 1 and lose nothing (app.Failure).
Points: `write` (raw events stored, derived rows not yet), `batch` (a batch stored and
published, not yet acknowledged), `checkpoint` (one partition's snapshots written, the
others not). `lose:handover` makes the events agent act as if Faust never handed it its next
batch: neither processed nor acknowledged, as in the hand-over the stuck-partition watch repairs
(streams/worker/stuck.py). Off (one `stat` per point) unless the setting names a file.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)

POINTS = ("write", "batch", "checkpoint")


class DrillFailure(RuntimeError):
    """Raised at a point named `fail:POINT`."""


class KillSwitch:
    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None

    def _named(self) -> str:
        if self.path is None:
            return ""
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def armed(self, point: str) -> bool:
        return self._named() == point

    def lost(self, point: str) -> bool:
        """True, once, if the drill file names `lose:point` (the file is removed)."""
        if self._named() != f"lose:{point}":
            return False
        assert self.path is not None
        self.path.unlink(missing_ok=True)
        log.warning("fault drill: %s lost", point)
        return True

    def at(self, point: str) -> None:
        """SIGKILL this process if the drill file names `point`, raise `DrillFailure` if it names
        `fail:point` (the file is removed first)."""
        named = self._named()
        if named not in (point, f"fail:{point}"):
            return
        assert self.path is not None
        self.path.unlink(missing_ok=True)
        if named != point:
            log.warning("fault drill: failure at %s", point)
            raise DrillFailure(f"fault drill: failure at {point}")
        log.warning("fault drill: SIGKILL at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)
