"""streams/shutdown.py: a stop request starts a clock that ends the process; signals still reach the framework."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from streams.shutdown import EXIT_ABANDONED, STOP_SIGNALS, StopDeadline


class Exits:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_the_clock_exits_abandoned_after_the_grace_period() -> None:
    exits, err = Exits(), io.StringIO()
    deadline = StopDeadline("worker", 0.2, exit_now=exits, stderr=err)
    started = time.monotonic()
    assert deadline.request("SIGTERM") is True
    assert exits.called.wait(5)
    assert exits.codes == [EXIT_ABANDONED]
    assert 0.15 < time.monotonic() - started < 3
    assert err.getvalue().count("\n") == 1 and "worker: still stopping 0.2s after SIGTERM" in err.getvalue()


def test_only_the_first_request_starts_the_clock_and_cancel_stops_it() -> None:
    exits = Exits()
    deadline = StopDeadline("gateway", 0.3, exit_now=exits, stderr=io.StringIO())
    assert deadline.request("SIGTERM") and not deadline.request("SIGINT")
    deadline.cancel()
    assert not exits.called.wait(0.6)


def test_a_signal_starts_the_clock_and_still_reaches_the_python_handler(restore_signals: None) -> None:
    seen: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    exits = Exits()
    deadline = StopDeadline("worker", 30, exit_now=exits, stderr=io.StringIO())
    deadline.install_signal_handlers()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)  # Python runs the handler at the next bytecode boundary
    assert seen == [signal.SIGTERM] and deadline.requested and exits.codes == []
    deadline.cancel()


def test_a_second_signal_while_stopping_exits_at_once(restore_signals: None) -> None:
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    exits, err = Exits(), io.StringIO()
    deadline = StopDeadline("worker", 30, exit_now=exits, stderr=err)
    deadline.install_signal_handlers()
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    assert exits.codes == []
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    assert exits.codes == [EXIT_ABANDONED] and "SIGINT while stopping" in err.getvalue()
    deadline.cancel()


def test_an_event_loop_handler_still_runs_and_sighup_stops_like_sigterm(restore_signals: None) -> None:
    loop = asyncio.new_event_loop()
    got: list[str] = []
    try:
        # no SIGHUP handler, as under mode (not inherited: `nohup` would hand the test SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        loop.add_signal_handler(signal.SIGTERM, got.append, "SIGTERM")  # what mode and aiohttp do
        exits = Exits()
        deadline = StopDeadline("worker", 30, exit_now=exits, stderr=io.StringIO())
        deadline.install_signal_handlers()  # after the framework's, as in run_worker
        os.kill(os.getpid(), signal.SIGHUP)  # mode has no SIGHUP handler: passed on as SIGTERM
        loop.run_until_complete(asyncio.sleep(0.1))
        assert got == ["SIGTERM"]
        assert deadline.requested and exits.codes == []  # the forwarded SIGTERM is not a second request
        deadline.cancel()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.close()


def test_install_after_wraps_the_frameworks_own_install_step(restore_signals: None) -> None:
    calls: list[str] = []

    class Framework:
        def install_signal_handlers(self) -> None:
            calls.append("framework")
            signal.signal(signal.SIGTERM, lambda signum, frame: calls.append("framework handler"))

    fw = Framework()
    deadline = StopDeadline("worker", 30, exit_now=Exits(), stderr=io.StringIO())
    deadline.install_after(fw, "install_signal_handlers")
    fw.install_signal_handlers()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)
    assert calls == ["framework", "framework handler"] and deadline.requested
    deadline.cancel()
