"""Run a command that gets SIGTERM when its parent dies:
`python -m streams.tools.die_with_parent PARENT_PID -- CMD ARG...`.

The local stack starts Kafka, the worker and the gateway through this, so that a
parent killed without warning (SIGKILL, the OOM killer, a closed terminal) leaves
nothing behind. It sets Linux's parent-death signal (`prctl(PR_SET_PDEATHSIG,
SIGTERM)`), checks the parent is still the one it was started by (it may have
died before the call), and replaces itself with the command: the setting survives
`exec`, so the command itself (a JVM, bash that execs a JVM, Python) is what dies
with the parent. See streams/tools/local_stack.py for why this rather than a pipe.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1
EXIT_PARENT_GONE = 75
EXIT_USAGE = 2


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this process when the thread that forked it exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print("usage: python -m streams.tools.die_with_parent PARENT_PID -- COMMAND [ARG...]", file=sys.stderr)
        return EXIT_USAGE
    parent, command = int(argv[0]), list(argv[2:])
    if sys.platform.startswith("linux"):
        set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the kernel could watch it
        return EXIT_PARENT_GONE
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"die_with_parent: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    raise AssertionError("unreachable")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
