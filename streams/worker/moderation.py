"""Moderation decisions sequenced into `engagement.events`, so each one has one place in the log.

A decision arrives on `engagement.moderation`; the worker does not apply it there (that
topic is read at its own pace, so where a decision fell among the events would depend on
timing, and a replay could not reproduce it). It copies the decision into its community's
events partition instead, as a message of its own, and the events agent applies it when
it reaches that message, after every event before it and before every event after it.
Recovery (replaying the tail past a snapshot) and a full rebuild into empty state (a new
consumer group, reading both topics in any order) meet the decision at the same place
and so reach the same state. A decision may appear twice in the log (the moderation
message redelivered after a crash, a rebuild copying it again): the first copy counts,
later ones are ignored by decision id (`StateRegistry.moderate`).

The value is `PREFIX` + the decision's JSON: not JSON itself, so it can never be read as
an envelope of events, and anyone reading the topic sees what it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from pydantic import ValidationError

from schemas.outputs import ModerationDecision

if TYPE_CHECKING:  # the pipeline imports this module
    from streams.worker.pipeline import Incoming

PREFIX = b"engage.moderation "
HEADERS: list[tuple[str, bytes]] = [("content-type", b"application/vnd.engage.moderation+json")]


class Sequenced(NamedTuple):
    """A decision at its place in an events partition (None when its bytes did not parse)."""

    decision: ModerationDecision | None
    partition: int
    offset: int
    error: str = ""
    raw: bytes = b""  # the message, when it did not parse (for the dead letter)


def decision_key(decision: ModerationDecision) -> str:
    """The decision's id: the gateway's, or the same deterministic one when a producer gave none."""
    return decision.key()


def encode(decision: ModerationDecision) -> bytes:
    return PREFIX + decision.keyed().model_dump_json().encode()


def is_decision(value: bytes | None) -> bool:
    return value is not None and value[: len(PREFIX)] == PREFIX


def decode(msg: Incoming) -> Sequenced:
    assert msg.value is not None
    try:
        decision = ModerationDecision.model_validate_json(msg.value[len(PREFIX) :])
    except ValidationError as exc:
        return Sequenced(None, msg.partition, msg.offset, str(exc), msg.value)
    return Sequenced(decision, msg.partition, msg.offset)


def split(batch: Sequence[Incoming]) -> Iterator[list[Incoming] | Sequenced]:
    """The batch in log order as runs of event envelopes and the decisions between them."""
    run: list[Incoming] = []
    for msg in batch:
        if is_decision(msg.value):
            if run:
                yield run
                run = []
            yield decode(msg)
        else:
            run.append(msg)
    if run:
        yield run


def has_decisions(batch: Sequence[Incoming]) -> bool:
    return any(is_decision(m.value) for m in batch)
