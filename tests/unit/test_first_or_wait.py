"""`first_or_wait`: mode's `Service.wait_first` with a fast path for Faust's per-message race.

The fast path must give what mode gives: the callback's result when it finishes, the
other awaitable's win when the callback waits longer (and the callback then cancelled),
its exceptions raised; and it must leave no coroutine unawaited behind.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mode import Service

from streams.worker.app import first_or_wait


class _Service(Service):
    pass


async def _race(*coros: Any, timeout: float | None = None) -> Any:
    return await first_or_wait(_Service().wait_first, *coros, timeout=timeout)


def test_a_callback_that_does_not_wait_wins_at_once_and_the_rest_is_closed_unstarted() -> None:
    async def callback() -> str:
        return "queued"

    async def main() -> None:
        suspended = asyncio.Event()
        other = suspended.wait()
        result = await _race(callback(), other)
        assert result.results == ["queued"] and not result.stopped
        assert other.cr_frame is None  # closed: never started, nothing left to warn about

    asyncio.run(main())


def test_a_callback_that_waits_is_driven_to_its_end_through_several_suspensions() -> None:
    async def callback(ready: asyncio.Event, log: list[str]) -> str:
        await asyncio.sleep(0)
        log.append("after a bare yield")
        await ready.wait()
        log.append("after a future")
        done, _ = await asyncio.wait([asyncio.ensure_future(asyncio.sleep(0.01))], timeout=5)
        return f"stored {len(done)}"

    async def main() -> None:
        ready, suspended, log = asyncio.Event(), asyncio.Event(), []
        asyncio.get_running_loop().call_later(0.05, ready.set)
        result = await _race(callback(ready, log), suspended.wait())
        assert result.results == ["stored 1"] and not result.stopped
        assert log == ["after a bare yield", "after a future"]

    asyncio.run(main())


def test_when_the_flow_is_suspended_first_the_waiting_callback_is_cancelled() -> None:
    async def callback(log: list[str]) -> None:
        try:
            await asyncio.sleep(30)
        finally:
            log.append("callback cancelled")

    async def main() -> None:
        suspended, log = asyncio.Event(), []
        asyncio.get_running_loop().call_later(0.05, suspended.set)
        result = await _race(callback(log), suspended.wait())
        assert result.results == [True]  # the suspension's wait won
        await asyncio.sleep(0.01)
        assert log == ["callback cancelled"]

    asyncio.run(asyncio.wait_for(main(), 10))


@pytest.mark.parametrize("waits_first", [False, True])
def test_a_failing_callback_raises_its_own_error(waits_first: bool) -> None:
    async def callback() -> None:
        if waits_first:
            await asyncio.sleep(0.01)
        raise ValueError("undecodable")

    async def main() -> None:
        other = asyncio.Event().wait()
        with pytest.raises(ValueError, match="undecodable"):
            await _race(callback(), other)
        if not waits_first:
            assert other.cr_frame is None  # closed unstarted (mode cancels its own tasks)

    asyncio.run(main())


def test_with_a_timeout_it_is_mode_wait_first() -> None:
    async def main() -> None:
        never = asyncio.Event()
        result = await _race(never.wait(), asyncio.Event().wait(), timeout=0.05)
        assert result.results == [] and result.stopped  # mode: nothing won before the timeout

    asyncio.run(main())
