"""Bounded shutdown: once a long-running process (worker, gateway) is asked to stop, it exits within its grace period.

A stop request (SIGINT, SIGTERM or SIGHUP) starts a clock on a thread of its own.
The process shuts down as usual (the framework's own signal handling still runs);
if it has not exited when the clock runs out, it writes one line on stderr and
exits with `EXIT_ABANDONED`. A second stop request while stopping exits at once.

Why a thread and `os._exit`: with Kafka gone, mode's `Worker.stop_and_shutdown`
awaits aiokafka's metadata synchroniser, which retries a refused connection in a
tight loop; the event loop stays busy but nothing in it will ever finish, and
mode ignores every further signal. A thread is scheduled by the interpreter
whatever the loop does, and `os._exit` waits neither for the loop, nor for
executor threads, nor for exit hooks that may block on the same dead broker.

Giving up loses nothing acknowledged: offsets are committed only after ClickHouse
stored the rows, and the gateway answers 202 only after Kafka acknowledged, so a
batch in flight is read again by the next owner and a request in flight is retried
by its sender.

Exit codes: `EXIT_OK` (0) a clean stop; `EXIT_FAILURE` (1) the process failed;
`EXIT_ABANDONED` (75, sysexits' EX_TEMPFAIL: the work is left for the next owner)
the stop deadline passed, or a second stop request came, with work in flight.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_ABANDONED = 75

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

Handler = Callable[[int, FrameType | None], Any] | int | None


class StopDeadline:
    """Starts a clock at the first stop request; exits the process with EXIT_ABANDONED when it runs out."""

    def __init__(
        self,
        name: str,
        grace_s: float,
        exit_now: Callable[[int], object] = os._exit,
        stderr: TextIO | None = None,
    ) -> None:
        self.name = name
        self.grace_s = grace_s
        self._exit_now = exit_now
        self._stderr = stderr
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._requested_at: float | None = None
        self._previous: dict[int, Handler] = {}
        self._forwarded: set[int] = set()

    @property
    def requested(self) -> bool:
        return self._requested_at is not None

    def request(self, why: str) -> bool:
        """Start the clock (once); True when this was the first request."""
        with self._lock:
            if self._requested_at is not None:
                return False
            self._requested_at = time.monotonic()
            self._timer = threading.Timer(self.grace_s, self._expire, args=(why,))
            self._timer.daemon = True
            self._timer.name = f"{self.name}-stop-deadline"
            self._timer.start()
            return True

    def cancel(self) -> None:
        """Stop the clock (the process finished stopping by itself; for tests and embedders)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()

    def _say(self, line: str) -> None:
        out = self._stderr or sys.stderr
        with contextlib.suppress(OSError, ValueError):
            out.write(f"{self.name}: {line}\n")
            out.flush()

    def _expire(self, why: str) -> None:
        self._say(
            f"still stopping {self.grace_s:g}s after {why}; exiting with {EXIT_ABANDONED}, "
            "work in flight is left for the next owner (nothing acknowledged is lost)"
        )
        self._exit_now(EXIT_ABANDONED)

    def install_signal_handlers(self) -> None:
        """Chain a handler for SIGINT, SIGTERM and SIGHUP in front of whatever handles them now.

        Call it after the framework installed its own: asyncio's `loop.add_signal_handler`
        is still reached (through its wake-up fd) and a Python-level handler is still called.
        A signal with no handler of its own (SIGHUP under mode) is passed on as SIGTERM, so it
        stops the process the same graceful way; with no SIGTERM handler either, it does what
        it would have done without us.
        """
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)

    def install_after(self, owner: Any, method: str) -> None:
        """Install the handlers right after `owner.method()` runs (a framework's own install step)."""
        original = getattr(owner, method)

        def install_then_chain(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            self.install_signal_handlers()
            return result

        setattr(owner, method, install_then_chain)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum in self._forwarded:
            self._forwarded.discard(signum)  # our own SIGHUP -> SIGTERM: not a second request
        elif not self.request(signal.Signals(signum).name):
            self._say(f"{signal.Signals(signum).name} while stopping; exiting now with {EXIT_ABANDONED}")
            self._exit_now(EXIT_ABANDONED)
            return
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
            return
        if previous == signal.SIG_IGN:
            return
        term = self._previous.get(signal.SIGTERM)
        if signum != signal.SIGTERM and (callable(term) and term is not signal.default_int_handler):
            self._forwarded.add(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
            return
        # nothing would have caught it: its default action (terminate), as without us
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
