"""Fault injection for drills (`engage chaos`): the worker kills itself with SIGKILL at a named point.

While the file `ENGAGE_FAULT_KILL_FILE` names a point, the worker deletes the file and
sends itself SIGKILL when it reaches that point, as the OOM killer or a lost node would:
no handler runs, nothing is flushed. Points: `write` (raw events stored, derived rows
not yet), `batch` (a batch stored and published, not yet acknowledged), `checkpoint`
(one partition's snapshots written, the others not). Off (one `stat` per point) unless the
setting names a file.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)

POINTS = ("write", "batch", "checkpoint")


class KillSwitch:
    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None

    def armed(self, point: str) -> bool:
        if self.path is None:
            return False
        try:
            return self.path.read_text().strip() == point
        except OSError:
            return False

    def at(self, point: str) -> None:
        """SIGKILL this process if the drill file names `point` (the file is removed first)."""
        if not self.armed(point):
            return
        assert self.path is not None
        self.path.unlink(missing_ok=True)
        log.warning("fault drill: SIGKILL at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)
