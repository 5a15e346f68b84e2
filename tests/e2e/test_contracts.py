"""The wire contract on the real broker: every record on the three output topics decodes with its
schemas/ model (docs/topics.md), and so does a moderation decision copied into the events log.

One community: a member who writes becomes a creator (tier changes), a newcomer who bursts into
comments is flagged (a spam flag), and a moderator confirms the flag (a decision on
`engagement.moderation`, its copy in `engagement.events`, and the flag's revision).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel

from schemas.outputs import ModerationAction, ModerationDecision, SpamFlag, SpamStatus, Tier, TierChange
from streams.config import TOPIC_EVENTS, TOPIC_MODERATION, TOPIC_SPAM_FLAGS, TOPIC_TIER_CHANGES, Settings
from streams.tools.commands import post_events
from streams.tools.erasure_commands import read_topic
from streams.worker import moderation

from .helpers import api_token, auth, wait_for

pytestmark = pytest.mark.usefixtures("stack")
M = TypeVar("M", bound=BaseModel)


def decoded(settings: Settings, topic: str, model: type[M], keep: Callable[[bytes], bool] = lambda v: True) -> list[M]:
    """Every record on `topic` that `keep` selects, each decoded (and so validated) with `model`."""
    return [model.model_validate_json(msg.value) for msg in read_topic(settings, topic) if keep(msg.value)]


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def community(e2e_settings: Settings) -> dict[str, Any]:
    cid = f"contract-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=3)

    def event(n: int, member: str, kind: str, at: datetime, **extra: Any) -> dict[str, Any]:
        return {"event_id": f"{cid}-{n}", "type": kind, "community_id": cid, "member_id": member,
                "occurred_at": iso(at), "source": "contract", **extra}

    events = [
        event(0, "writer", "join", start, join_source="invite"),
        event(1, "reader", "join", start, join_source="organic"),
        event(2, "newcomer", "join", start + timedelta(hours=1), join_source="promotion"),
    ]
    # the writer: three comments twenty minutes apart, a creator by the third
    events += [event(10 + i, "writer", "comment", start + timedelta(minutes=20 * (i + 1))) for i in range(3)]
    # the newcomer: eight comments three seconds apart, a burst (more than five inside 30 s)
    burst = start + timedelta(hours=2)
    events += [event(20 + i, "newcomer", "comment", burst + timedelta(seconds=3 * i)) for i in range(8)]
    assert post_events(e2e_settings.gateway_url, events, api_token(e2e_settings)) == len(events)

    def flags() -> list[SpamFlag]:
        return [f for f in decoded(e2e_settings, TOPIC_SPAM_FLAGS, SpamFlag) if f.community_id == cid]

    wait_for(lambda: any(f.member_id == "newcomer" for f in flags()), 90, "the newcomer's spam flag")
    decision = {"community_id": cid, "member_id": "newcomer", "action": "confirm", "reason": "a bot",
                "decided_at": iso(datetime.now(UTC) - timedelta(seconds=1))}
    r = httpx.post(f"{e2e_settings.gateway_url}/v1/moderation", json=decision, headers=auth(e2e_settings), timeout=10)
    assert r.status_code == 202, r.text
    wait_for(lambda: any(f.status is SpamStatus.CONFIRMED for f in flags()), 90, "the confirmed flag published")
    return {"id": cid, "decision_id": r.json()["decision_id"], "posted": time.time()}


def test_every_tier_change_decodes_with_the_model(e2e_settings: Settings, community: dict[str, Any]) -> None:
    changes = decoded(e2e_settings, TOPIC_TIER_CHANGES, TierChange)
    ours = [c for c in changes if c.community_id == community["id"]]
    writer = [c for c in ours if c.member_id == "writer"]
    assert writer and writer[0].from_tier is Tier.LURKER
    assert writer[-1].to_tier in (Tier.CREATOR, Tier.AMBASSADOR) and writer[-1].creation >= 3.0 * (1 - 1e-9)
    assert all(c.at.tzinfo is not None and c.from_tier != c.to_tier for c in ours)


def test_every_spam_flag_decodes_with_the_model(e2e_settings: Settings, community: dict[str, Any]) -> None:
    flags = decoded(e2e_settings, TOPIC_SPAM_FLAGS, SpamFlag)
    ours = [f for f in flags if f.community_id == community["id"]]
    assert {f.member_id for f in ours} == {"newcomer"}
    first, decided = ours[0], ours[-1]
    assert first.status is SpamStatus.FLAGGED and "burst_comments" in first.reasons
    assert (first.decided_by, first.decided_at) == ("", None)
    # the moderator's revision: same flag, who and when, a higher version
    assert decided.status is SpamStatus.CONFIRMED and decided.version > first.version
    assert decided.flagged_at == first.flagged_at and decided.event_id == first.event_id
    assert decided.decided_by == "local-stack" and decided.decided_at is not None


def test_every_moderation_decision_decodes_with_the_model(e2e_settings: Settings, community: dict[str, Any]) -> None:
    decisions = decoded(e2e_settings, TOPIC_MODERATION, ModerationDecision)
    ours = [d for d in decisions if d.community_id == community["id"]]
    assert [(d.member_id, d.action, d.decision_id) for d in ours] == [
        ("newcomer", ModerationAction.CONFIRM, community["decision_id"])
    ]
    assert all(d.decision_id for d in decisions), "the gateway gives every decision its id"


def test_the_decision_copied_into_the_events_log_decodes_with_the_model(
    e2e_settings: Settings, community: dict[str, Any]
) -> None:
    copies = [
        ModerationDecision.model_validate_json(msg.value[len(moderation.PREFIX):])
        for msg in read_topic(e2e_settings, TOPIC_EVENTS)
        if moderation.is_decision(msg.value)
    ]
    ours = [d for d in copies if d.community_id == community["id"]]
    assert [d.decision_id for d in ours] == [community["decision_id"]]
