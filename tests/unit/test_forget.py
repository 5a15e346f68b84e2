"""Forgetting without Kafka or ClickHouse: the screen, a rebuild from the log, snapshots, rejoining.

The rule under test (docs/privacy.md): state after forgetting M equals state built from the
log without M's events (references to M blanked), and a later M is a new member.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.erasures import ErasureRequest, base_communities, covers, member_key, record_for
from sinks.batch_writer import BatchWriter
from streams import metrics
from streams.config import Settings
from streams.envelopes import envelope
from streams.event_record import EventRecord
from streams.forgotten import ForgottenMembers
from streams.state_registry import StateRegistry
from streams.tools.simulate import simulate
from streams.worker.erasures import Rebuild, holds, state_key
from streams.worker.pipeline import Incoming, Pipeline

SETTINGS = Settings()
NOW = datetime(2026, 9, 10, tzinfo=UTC).timestamp()


def rec(member: str, ts: float, target_author: str | None = None, community: str = "c") -> EventRecord:
    return EventRecord(f"e{member}{ts}", 1, community, member, ts, 0, "post:1", target_author, 0, None, 0)


def test_screen_drops_the_members_events_and_blanks_references_up_to_the_cut() -> None:
    f = ForgottenMembers()
    assert f.screen([rec("a", 1.0)]) is None  # nothing forgotten: no work
    f.add("c", member_key("c", "a"), 100.0)
    records = [
        rec("a", 50.0),
        rec("b", 60.0, target_author="a"),
        rec("a", 150.0),  # after the erasure: a new member
        rec("b", 160.0, target_author="a"),
        rec("a", 50.0, community="c/general"),  # under c: covered
        rec("a", 50.0, community="cx"),  # not under c
        rec("b", 70.0, target_author="z"),
    ]
    out = f.screen(records)
    assert out is not None
    assert out[0] is None and out[4] is None
    assert out[1] == records[1]._replace(target_author_id=None)
    assert out[2] is records[2] and out[3] is records[3] and out[5] is records[5] and out[6] is records[6]
    assert f.is_forgotten("c/general", "a", 100.0) and not f.is_forgotten("c", "a", 100.5)
    assert not f.add("c", member_key("c", "a"), 90.0)  # an older cut changes nothing
    assert f.add("c", member_key("c", "a"), 200.0)


def test_covers_and_bases() -> None:
    assert covers("acme", "acme/widgets") and covers("acme", "acme") and not covers("acme", "acme2")
    assert base_communities("a/b/c") == ["a/b/c", "a/b", "a"]


def test_a_request_keeps_no_member_id_and_retries_share_an_id() -> None:
    req = ErasureRequest(community_id="c", member_id="p_secret", erased_at=datetime(2026, 1, 1, tzinfo=UTC))
    a, b = record_for(req, "api", datetime.now(UTC)), record_for(req, "cli", datetime.now(UTC))
    assert a.erasure_id == b.erasure_id
    assert "p_secret" not in a.model_dump_json()
    assert a.member_key == member_key("c", "p_secret")


def log_of(events: list[dict[str, Any]]) -> list[Incoming]:
    """The events as one-envelope-per-50 Kafka messages of partition 0, Kafka time = event time + 1 s."""
    out = []
    for i in range(0, len(events), 50):
        chunk = events[i : i + 50]
        kafka_time = datetime.fromisoformat(chunk[-1]["occurred_at"]).timestamp() + 1
        out.append(Incoming(envelope(orjson.dumps(e) for e in chunk), 0, i // 50, kafka_time))
    return out


def pipeline(registry: StateRegistry) -> Pipeline:
    writer = BatchWriter(lambda: None, metrics.SINK)  # type: ignore[arg-type,return-value]
    return Pipeline(registry, writer, clock_skew_s=300, time_floor=946_684_800.0, wall_clock=lambda: NOW)


@pytest.fixture(scope="module")
def community() -> tuple[list[dict[str, Any]], str, str]:
    """A simulated community, and a creator with received likes: the one to forget."""
    events, _ = simulate(
        seed=4242,
        communities=1,
        members_per_community=150,
        days=5,
        start=datetime(2026, 9, 1, tzinfo=UTC),
        spam_profiles_per_community=1,
        history_days=10,
    )
    evs = list(events)
    cid = evs[0]["community_id"]
    registry = StateRegistry(SETTINGS.scoring(), SETTINGS.spam())
    pipeline(registry).replay(log_of(evs))
    scorer = registry.communities[cid].scorer
    rows = [scorer.member_row(m) for m in scorer.member_ids()]
    creator = max((r for r in rows if r.actor_role == "member"), key=lambda r: (r.tier == "ambassador", r.received))
    assert creator.tier == "ambassador" and creator.received > 0
    return evs, cid, creator.member_id


def test_a_rebuild_equals_the_log_without_the_member(community: tuple[list[dict[str, Any]], str, str]) -> None:
    evs, cid, gone = community
    live = StateRegistry(SETTINGS.scoring(), SETTINGS.spam())
    pipeline(live).replay(log_of(evs))
    old = live.communities[cid]
    cut = NOW
    live.forgotten.add(cid, member_key(cid, gone), cut)

    rebuild = Rebuild(SETTINGS.scoring(), SETTINGS.spam(), live.forgotten, cid, 0)
    rebuild.feed(log_of(evs), pipeline(live))
    new, out = rebuild.finish(old)

    # the reference: a replay of a log that never had the member's events nor their name as target
    without = [
        {k: v for k, v in e.items() if not (k == "target_author_id" and v == gone)}
        for e in evs
        if e["member_id"] != gone
    ]
    ref = StateRegistry(SETTINGS.scoring(), SETTINGS.spam())
    pipeline(ref).replay(log_of(without))
    expected = ref.communities[cid]

    assert gone not in new.scorer.member_ids() and gone not in {m for _, m in out.member_rows()}
    assert new.scorer.member_ids() == expected.scorer.member_ids()
    assert new.scorer.community_row() == expected.scorer.community_row()
    assert old.scorer.community_row() != expected.scorer.community_row()  # forgetting changed the counts
    changed = 0
    for mid in expected.scorer.member_ids():
        assert new.scorer.member_row(mid) == expected.scorer.member_row(mid)
        changed += new.scorer.member_row(mid).received != old.scorer.member_row(mid).received
    assert changed > 0  # someone's received score no longer holds the member's likes
    assert new.last_offset == old.last_offset
    assert all(t.member_id != gone for t in out.tier_changes)


def test_snapshots_keep_the_applied_erasures_and_the_screen(community: tuple[list[dict[str, Any]], str, str]) -> None:
    evs, cid, gone = community
    registry = StateRegistry(SETTINGS.scoring(), SETTINGS.spam())
    pipeline(registry).replay(log_of(evs))
    c = registry.communities[cid]
    req = ErasureRequest(community_id=cid, member_id=gone, erased_at=datetime.fromtimestamp(NOW, UTC))
    record = record_for(req, "cli", datetime.now(UTC))
    assert holds(c, record)
    c.erasures[state_key(record)] = NOW
    restored = StateRegistry(SETTINGS.scoring(), SETTINGS.spam())
    restored.restore(cid, registry.snapshot(cid))
    assert restored.communities[cid].erasures == {state_key(record): NOW}
    assert restored.forgotten.is_forgotten(cid, gone, NOW - 1)


def test_a_forgotten_member_who_returns_starts_fresh(community: tuple[list[dict[str, Any]], str, str]) -> None:
    evs, cid, gone = community
    registry = StateRegistry(SETTINGS.scoring(), SETTINGS.spam())
    registry.forgotten.add(cid, member_key(cid, gone), NOW)
    p = pipeline(registry)
    p.replay(log_of(evs))
    assert gone not in registry.communities[cid].scorer.member_ids()
    back = {
        "event_id": "rejoin-1",
        "type": "join",
        "community_id": cid,
        "member_id": gone,
        "occurred_at": datetime.fromtimestamp(NOW + 60, UTC).isoformat(),
        "source": "api",
        "join_source": "organic",
    }
    p.replay([Incoming(orjson.dumps(back), 0, 10_000, NOW + 61)])
    row = registry.communities[cid].scorer.member_row(gone)
    assert row.events_counted == 1 and row.tier == "lurker" and row.received == 0
