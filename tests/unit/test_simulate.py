"""The simulator: valid canonical events, deterministic, shaped like a real community, spam planted."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.events import CanonicalEvent
from streams.tools.simulate import (
    ATTACK_SHAPES,
    DEFAULT_START,
    HARD_NEGATIVE_KINDS,
    LEGIT_KINDS,
    SPAM_KINDS,
    draw_sizes,
    simulate,
    spam_for_size,
    write_simulation,
)

Event = dict[str, Any]
SIZES = [40, 800, 2_500]


@pytest.fixture(scope="module")
def sim() -> tuple[list[Event], list[dict[str, Any]]]:
    events, labels = simulate(
        seed=3, communities=3, members_per_community=SIZES, days=10, spam_profiles_per_community=8
    )
    return list(events), labels


def ts(e: Event) -> float:
    return datetime.fromisoformat(e["occurred_at"]).timestamp()


def by_member(events: list[Event]) -> dict[tuple[str, str], list[Event]]:
    out: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for e in events:
        out[(e["community_id"], e["member_id"])].append(e)
    return out


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def test_every_event_is_a_valid_canonical_event(sim: tuple[list[Event], list[dict[str, Any]]]) -> None:
    events, _ = sim
    for e in events:
        event = CanonicalEvent.model_validate_json(orjson.dumps(e))
        assert event.source == "simulate"
        if event.type.value == "comment":
            assert event.content_fingerprint is not None
        else:
            assert event.content_fingerprint is None and event.link_count == 0
    assert {e["type"] for e in events} == {"join", "like", "share", "comment"}


def test_ids_are_unique_times_sorted_and_targets_point_back(sim: tuple[list[Event], list[dict[str, Any]]]) -> None:
    events, _ = sim
    assert len({e["event_id"] for e in events}) == len(events)
    times = [ts(e) for e in events]
    assert times == sorted(times)
    seen: dict[str, Event] = {}
    for e in events:
        if "target_id" in e:
            target = seen[e["target_id"]]  # an earlier event of the same community
            assert target["community_id"] == e["community_id"]
            assert target["type"] in ("comment", "join")
            assert e["target_author_id"] == target["member_id"] != e["member_id"]
        seen[e["event_id"]] = e


def test_the_same_seed_gives_the_same_simulation() -> None:
    kw: dict[str, Any] = {"communities": 2, "members_per_community": 300, "days": 3, "spam_profiles_per_community": 4}
    a_events, a_labels = simulate(seed=5, **kw)
    b_events, b_labels = simulate(seed=5, **kw)
    assert list(a_events) == list(b_events) and a_labels == b_labels
    c_events, _ = simulate(seed=6, **kw)
    assert [e["member_id"] for e in c_events][:50] != [e["member_id"] for e in simulate(seed=5, **kw)[0]][:50]


def test_labels_cover_every_member_and_every_kind(sim: tuple[list[Event], list[dict[str, Any]]]) -> None:
    events, labels = sim
    members = by_member(events)
    assert {(lab["community_id"], lab["member_id"]) for lab in labels} == set(members)
    assert all(evs[0]["type"] == "join" for evs in members.values())  # everyone's first event is the join
    kinds = Counter(lab["kind"] for lab in labels)
    assert set(SPAM_KINDS) | {"normal", "greeter", "prolific_creator", "launch_day", "owner", "bot"} <= set(kinds)
    assert set(kinds) <= set(SPAM_KINDS) | set(LEGIT_KINDS)
    assert sum(kinds[k] for k in SPAM_KINDS) == 8 * len(SIZES)
    for lab in labels:
        assert (lab["label"] == "spam") == (lab["kind"] in SPAM_KINDS)
        assert lab["role"] == ("member" if lab["kind"] not in ("owner", "moderator", "bot") else lab["kind"])


def test_spam_profiles_join_first_and_attack_later(sim: tuple[list[Event], list[dict[str, Any]]]) -> None:
    events, labels = sim
    members = by_member(events)
    for lab in labels:
        if lab["label"] != "spam":
            continue
        own = members[(lab["community_id"], lab["member_id"])]
        ids = [e["event_id"] for e in own]
        start = ids.index(lab["attack_start_event_id"])
        assert start >= 1 and own[0]["type"] == "join"
        attack = own[start:]
        comments = [e for e in attack if e["type"] == "comment"]
        if lab["kind"] == "burst":  # six or more comments inside 30 seconds, or a storm of likes
            first = [ts(e) for e in comments[:6]]
            assert first[-1] - first[0] < 30 or attack[0]["type"] == "like"
        elif lab["kind"] == "duplicate":
            fps = [e["content_fingerprint"] for e in comments]
            assert len(fps) >= 3 and max(hamming(fps[0], fp) for fp in fps) <= 4
            assert len({e["target_id"] for e in comments}) == len(comments)
        elif lab["kind"] in ("link_heavy", "link_dropper"):  # within hours, links under others' content
            assert ts(comments[0]) - ts(own[0]) < 16.5 * 3600 and all(e["link_count"] >= 1 for e in comments)
            assert all(e.get("target_author_id") not in (None, lab["member_id"]) for e in comments)
            if lab["kind"] == "link_dropper":
                assert len(comments) in (2, 3) and all(e["link_count"] in (2, 3) for e in comments)
                assert ts(comments[-1]) - ts(own[0]) < 86_400
        else:
            assert sum(ts(e) - ts(own[0]) < 86_400 for e in comments) > 10


def test_participation_follows_the_90_9_1_shape(sim: tuple[list[Event], list[dict[str, Any]]]) -> None:
    events, labels = sim
    cid = "sim3-c2"  # the 2,500-member community
    commented: Counter[str] = Counter()
    curated: Counter[str] = Counter()
    for e in events:
        if e["community_id"] == cid:
            if e["type"] == "comment":
                commented[e["member_id"]] += 1
            elif e["type"] in ("like", "share"):
                curated[e["member_id"]] += 1
    members = [lab["member_id"] for lab in labels if lab["community_id"] == cid]
    n = len(members)
    creators = sum(commented[m] >= 5 for m in members) / n
    silent = sum(commented[m] == 0 and curated[m] == 0 for m in members) / n
    curators = 1 - creators - silent
    assert 0.005 <= creators <= 0.05, creators
    assert 0.04 <= curators <= 0.20, curators
    assert 0.78 <= silent <= 0.94, silent
    top = sorted(commented.values(), reverse=True)[: n // 100]
    assert sum(top) / sum(commented.values()) > 0.5  # the top 1% write most of the content


def test_joins_carry_sources_and_promotion_joiners_arrive_in_a_surge_and_leave(
    sim: tuple[list[Event], list[dict[str, Any]]],
) -> None:
    events, _ = sim
    start = DEFAULT_START.timestamp()  # greeters' record of the two weeks before is in the log too
    joins = [e for e in events if e["type"] == "join" and e["community_id"] == "sim3-c2"]
    assert {e["join_source"] for e in joins} == {"invite", "organic", "promotion", "import"}
    promo = sorted(ts(e) for e in joins if e["join_source"] == "promotion" and ts(e) >= start)
    surge = max(sum(0 <= t - first < 12 * 3600 for t in promo) for first in promo)
    assert surge > 0.6 * len(promo)  # the giveaway
    # Of the members active in the window's first days, some go quiet, some stay.
    members = by_member([e for e in events if e["community_id"] == "sim3-c2" and e["type"] != "join"])
    early = [evs for evs in members.values() if ts(evs[0]) < start + 2 * 86_400]
    stayed = sum(ts(evs[-1]) > start + 8 * 86_400 for evs in early) / len(early)
    assert 0.3 < stayed < 0.95, stayed


def test_hard_negatives_look_like_spam_to_a_naive_rule(sim: tuple[list[Event], list[dict[str, Any]]]) -> None:
    events, labels = sim
    members = by_member(events)
    kind_of = {(lab["community_id"], lab["member_id"]): lab["kind"] for lab in labels}
    ids = {e["event_id"]: e for e in events}
    for key, kind in kind_of.items():
        own = [e for e in members[key] if e["type"] == "comment"]
        if kind == "greeter" and key[0] == "sim3-c2":  # the same welcome under many newcomers' joins
            greetings = [e for e in own if e.get("target_id") and ids[e["target_id"]]["type"] == "join"]
            assert len(greetings) >= 5
            assert max(hamming(greetings[0]["content_fingerprint"], g["content_fingerprint"]) for g in greetings) <= 4
            assert len({g["target_id"] for g in greetings}) == len(greetings)
        elif kind == "prolific_creator":  # many comments a day, distinct texts
            assert len(own) / 10 >= 15
            assert len({e["content_fingerprint"] for e in own}) > 0.8 * len(own)
        elif kind == "launch_day":  # many first-day comments
            first = ts(members[key][0])
            assert sum(ts(e) - first < 86_400 for e in own) >= 1
        elif kind == "bot":  # link-heavy near-duplicate digests, every six hours
            assert len(own) >= 30 and all(e["link_count"] >= 4 for e in own)
            assert all(e["actor_role"] == "bot" for e in members[key])
    launch = [len([e for e in members[k] if e["type"] == "comment"]) for k, kd in kind_of.items() if kd == "launch_day"]
    assert statistics.median(launch) > 10  # a busy launch day: most enthusiasts pass the velocity threshold


def test_write_simulation_writes_json_lines(tmp_path: Path) -> None:
    kw: dict[str, Any] = {"seed": 2, "communities": 2, "members_per_community": 200, "days": 2}
    n_events, n_labels = write_simulation(tmp_path / "events.jsonl", tmp_path / "labels.jsonl", **kw)
    events = [orjson.loads(line) for line in (tmp_path / "events.jsonl").read_bytes().splitlines()]
    labels = [orjson.loads(line) for line in (tmp_path / "labels.jsonl").read_bytes().splitlines()]
    expected_events, expected_labels = simulate(**kw)
    assert (len(events), len(labels)) == (n_events, n_labels)
    assert events == list(expected_events) and labels == expected_labels


def test_bad_arguments_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        simulate(start=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="choose from"):
        simulate(spam_kinds=["phishing"])
    with pytest.raises(ValueError, match="2 sizes for 3 communities"):
        simulate(communities=3, members_per_community=[10, 20])


def test_attack_shapes_are_drawn_from_ranges_not_fixed_recipes() -> None:
    events, labels = simulate(seed=11, communities=2, members_per_community=[300, 3_000], days=14,
                              spam_profiles_per_community=[20, 60])
    members = by_member(list(events))
    quiet: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, set[int]] = defaultdict(set)
    sources: dict[str, set[str]] = defaultdict(set)
    likes_before: dict[str, set[int]] = defaultdict(set)
    for lab in labels:
        if lab["label"] != "spam":
            continue
        kind, own = lab["kind"], members[(lab["community_id"], lab["member_id"])]
        ids = [e["event_id"] for e in own]
        start = ids.index(lab["attack_start_event_id"])
        quiet[kind].append(ts(own[start]) - ts(own[0]))
        counts[kind].add(sum(e["type"] == "comment" for e in own[start:]))
        sources[kind].add(lab["join_source"])
        likes_before[kind].add(sum(e["type"] == "like" for e in own[:start]))
    for kind in SPAM_KINDS:
        shape = ATTACK_SHAPES[kind]
        assert min(quiet[kind]) >= shape.quiet_seconds[0] * 0.99 - 1, kind
        assert max(quiet[kind]) > 10 * min(quiet[kind]), kind  # spread over an order of magnitude at least
        assert len(counts[kind]) >= 2 and len(likes_before[kind]) >= 2, kind
        assert len(sources[kind]) >= 2, kind
    assert sources["link_dropper"] <= {"organic", "promotion"}
    assert max(quiet["duplicate"]) > 7 * 86_400 * 0.5  # some sleepers wait days


def test_community_sizes_and_spam_counts_are_drawn_per_seed() -> None:
    sizes = [n for seed in range(30) for n in draw_sizes(seed, 6)]
    assert min(sizes) >= 10 and max(sizes) <= 10_000
    assert min(sizes) < 30 and max(sizes) > 5_000  # micro-communities and large ones both
    assert draw_sizes(3, 6) == draw_sizes(3, 6) != draw_sizes(4, 6)
    assert (spam_for_size(10), spam_for_size(1_000), spam_for_size(10_000)) == (3, 25, 60)


def test_the_enthusiastic_link_sharer_shares_one_or_two_links_among_ordinary_comments(
    sim: tuple[list[Event], list[dict[str, Any]]],
) -> None:
    events, labels = sim
    members = by_member(events)
    sharers = [lab for lab in labels if lab["kind"] == "link_sharer"]
    assert len(sharers) == 2 * len(SIZES) and "link_sharer" in HARD_NEGATIVE_KINDS
    for lab in sharers:
        own = members[(lab["community_id"], lab["member_id"])]
        day_one = [e for e in own if e["type"] == "comment" and ts(e) - ts(own[0]) < 86_400]
        assert 1 <= sum(e["link_count"] for e in day_one) <= 2, lab
        assert day_one[0]["link_count"] == 0  # talks first
