"""EventsAgent.handle: a piece's publish and store overlap the next piece's state step, in log order.

The agent's collaborators are stand-ins here (the real ones run in tests/e2e); what is
held is the order of the steps: piece 2 is scored while piece 1 publishes, pieces publish
in log order, the batch returns only after every piece is stored, and a failing piece
fails the batch (so it is not acknowledged) without publishing anything after it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from concurrent.futures import Future
from typing import Any

import pytest

from streams.config import Settings
from streams.stall import StallDetector
from streams.state_registry import Outputs
from streams.worker.app import EventsAgent
from streams.worker.faults import KillSwitch
from streams.worker.pipeline import BatchResult, Incoming


class _Message:
    def __init__(self, offset: int, lines: int) -> None:
        self.value = b"\n".join([b"{}"] * lines)
        self.partition = 0
        self.offset = offset
        self.timestamp = 0.0
        self.acked = False  # Faust's Message: an acked message is never acked to the consumer again


class _Event:
    def __init__(self, offset: int, lines: int) -> None:
        self.message = _Message(offset, lines)


class _Partitions:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.applied_offsets: list[int] = []
        self.registry = type("R", (), {"tracked_members": staticmethod(lambda: 0)})()
        self.ready: set[int] = set()

    async def commits(self, partitions: list[int]) -> dict[int, int]:
        return {}

    async def ensure_all(self, partitions: list[int], committed: dict[int, int]) -> None:
        return None

    async def contiguous(self, batch: list[Incoming]) -> AsyncGenerator[list[Incoming], None]:
        yield batch

    def applied(self, piece: list[Incoming]) -> None:
        self.applied_offsets.extend(m.offset for m in piece)

    def checkpoint_due(self) -> bool:
        return False


class _Pipeline:
    """begin(piece) records itself; the piece's rows are stored when the test says so."""

    def __init__(self, log: list[str], fail_at: int | None = None) -> None:
        self.log = log
        self.fail_at = fail_at
        self.kill_switch = KillSwitch("")
        self.began = [threading.Event() for _ in range(10)]
        self.stored: list[Future[None]] = []

    def begin(self, piece: list[Incoming]) -> BatchResult:
        n = len(self.stored)
        self.log.append(f"begin {n}")
        self.began[n].set()
        if n == self.fail_at:
            raise RuntimeError(f"piece {n} failed")
        done: Future[None] = Future()
        self.stored.append(done)
        done.set_result(None)
        return BatchResult(Outputs(), [], sum(m.value.count(b"\n") + 1 for m in piece if m.value), len(piece), done)


class _Publisher:
    def __init__(self, log: list[str], pipeline: _Pipeline) -> None:
        self.log = log
        self.pipeline = pipeline
        self.calls = 0

    async def outputs(self, tier_topic: str, flags_topic: str, outputs: Outputs) -> None:
        n = self.calls
        self.calls += 1
        self.log.append(f"publish {n} start")
        # piece n's publish does not finish before piece n + 1 has begun: they overlap
        await asyncio.wait_for(asyncio.to_thread(self.pipeline.began[n + 1].wait, 5.0), 6.0)
        self.log.append(f"publish {n} end")


def _agent(log: list[str], fail_at: int | None = None) -> tuple[EventsAgent, _Pipeline, _Partitions]:
    agent = EventsAgent.__new__(EventsAgent)
    agent.settings = Settings().with_(batch_max_events=5)
    pipeline = _Pipeline(log, fail_at)
    parts = _Partitions()
    any_parts: Any = parts
    any_pipeline: Any = pipeline
    agent.partitions = any_parts
    agent.pipeline = any_pipeline
    agent.stall = StallDetector(60.0)
    agent.stopping = threading.Event()
    publisher: Any = _Publisher(log, pipeline)
    agent.publisher = publisher
    return agent, pipeline, parts


def test_the_next_piece_is_scored_while_the_last_one_publishes_and_pieces_publish_in_order() -> None:
    log: list[str] = []
    agent, pipeline, parts = _agent(log)
    pipeline.began[3].set()  # after the last piece nothing else begins
    events = [_Event(i, 5) for i in range(3)]  # three pieces of one envelope each
    asyncio.run(agent.handle(events))
    assert parts.applied_offsets == [0, 1, 2]
    publishes = [line for line in log if line.startswith("publish")]
    assert publishes == [f"publish {n} {edge}" for n in range(3) for edge in ("start", "end")]
    # piece 1 began before piece 0's publish ended
    assert log.index("begin 1") < log.index("publish 0 end")
    assert log.index("begin 2") < log.index("publish 1 end")


def test_a_failing_piece_fails_the_batch_and_nothing_after_it_is_published() -> None:
    log: list[str] = []
    agent, _, parts = _agent(log, fail_at=1)
    events = [_Event(i, 5) for i in range(3)]
    with pytest.raises(RuntimeError, match="piece 1 failed"):
        asyncio.run(agent.handle(events))
    assert "begin 2" not in log and "publish 1 start" not in log
    assert parts.applied_offsets == [0]
    # Faust's take_events acks the batch in a `finally` even so: every message is kept from the
    # consumer (its offset is not committed), so the batch is read again after the restart
    assert all(e.message.acked for e in events)


def test_a_batch_that_succeeds_is_left_to_faust_to_acknowledge() -> None:
    log: list[str] = []
    agent, pipeline, _ = _agent(log)
    pipeline.began[3].set()
    events = [_Event(i, 5) for i in range(3)]
    asyncio.run(agent.handle(events))
    assert not any(e.message.acked for e in events)


class _FailingPublisher(_Publisher):
    async def outputs(self, tier_topic: str, flags_topic: str, outputs: Outputs) -> None:
        self.log.append("publish failed")
        raise ConnectionError("broker gone")


def test_when_the_next_piece_fails_too_the_first_failure_is_logged_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    agent, pipeline, parts = _agent(log, fail_at=1)
    failing: Any = _FailingPublisher(log, pipeline)
    agent.publisher = failing
    with caplog.at_level("ERROR", logger="streams.worker.app"), pytest.raises(RuntimeError, match="piece 1 failed"):
        asyncio.run(agent.handle([_Event(i, 5) for i in range(3)]))
    # piece 1 is scored on its thread while piece 0 publishes on the loop: either may log first
    assert log[0] == "begin 0" and sorted(log[1:3]) == ["begin 1", "publish failed"]
    assert parts.applied_offsets == [0]
    assert "begin 2" not in log
    assert any("piece before failed too" in r.getMessage() and "broker gone" in r.getMessage() for r in caplog.records)
