"""`SpamDetector.status_codes`: the vectorised status the member rows carry equals `status` member by member."""

from __future__ import annotations

import random

from spam_events import DAY, OLD, T0, comments, ev, join, spaced

from streams.event_record import LIKE
from streams.spam import SpamDetector
from streams.spam.flags import STATUSES
from streams.tools.simulate import simulate
from streams.tools.spam_evaluation import record_from_json


def codes_by_status(det: SpamDetector, members: list[str]) -> list[int]:
    return [STATUSES.index(det.status(m)) for m in members]


def test_status_codes_match_status_through_flags_moderation_and_unknown_members() -> None:
    det = SpamDetector("c1")
    members = ["burst", "calm", "confirmed", "never-seen"]
    assert det.status_codes(members).tolist() == [0, 0, 0, 0]  # nothing held: all none
    det.observe([join("burst", OLD), join("calm", OLD), *comments("burst", spaced(T0, 6, 10.0))])
    det.observe(comments("calm", [T0 + 100.0]))  # a batch without the flagged member: found in the index
    det.apply_moderation("confirmed", "confirm", "mod", "reported", T0 + 200)  # a member without events
    got = det.status_codes(members)
    assert got.dtype.name == "uint8"
    assert got.tolist() == codes_by_status(det, members) == [1, 0, 2, 0]
    det.apply_moderation("burst", "clear", "mod", "ok", T0 + 300)
    assert det.status_codes(members).tolist() == codes_by_status(det, members) == [3, 0, 2, 0]


def test_status_codes_after_batches_that_forget_members_midway() -> None:
    events, _ = simulate(seed=5, communities=1, members_per_community=300, days=20, spam_profiles_per_community=6)
    records = [record_from_json(e) for e in events]
    det = SpamDetector(records[0].community_id)
    rnd = random.Random(5)
    members = [*sorted({r.member_id for r in records}), "nobody"]
    i = 0
    while i < len(records):
        n = rnd.choice((1, 7, 300, 3000))
        det.observe(records[i : i + n])
        i += n
        batch = sorted({r.member_id for r in records[i - n : i]})
        assert det.status_codes(batch).tolist() == codes_by_status(det, batch)
    assert det.forgotten_members() > 0  # the run did forget members, so rows moved under the batches
    assert det.status_codes(members).tolist() == codes_by_status(det, members)
    assert any(det.status_codes(members).tolist())  # and some were flagged


def test_a_member_flagged_in_an_earlier_batch_keeps_its_code_in_the_next() -> None:
    det = SpamDetector("c1")
    det.observe([join("a", T0), *comments("a", spaced(T0 + 10 * DAY, 6, 1.0))])
    det.observe([ev(LIKE, "b", T0 + 10 * DAY + 9), ev(LIKE, "a", T0 + 10 * DAY + 10)])
    assert det.status_codes(["b", "a"]).tolist() == [0, 1]
