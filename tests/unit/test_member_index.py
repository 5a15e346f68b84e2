"""The member index: ids to stable row numbers, lookups, appends, and keeping a subset (the spam core's forgetting)."""

from __future__ import annotations

import random

import numpy as np

from streams.scoring.member_index import MemberIndex


class SameHash(str):
    """An id whose hash collides with every other SameHash: the index must still tell them apart."""

    __slots__ = ()

    def __hash__(self) -> int:
        return 12345


def test_get_or_add_numbers_ids_in_order_of_first_appearance() -> None:
    index = MemberIndex()
    ids = [f"m{i}" for i in range(5000)]
    assert [index.get_or_add(m) for m in ids] == list(range(5000))
    assert [index.get_or_add(m) for m in reversed(ids)] == list(reversed(range(5000)))
    assert len(index) == 5000
    assert index.ids() == ids
    assert index.get("m4999") == 4999 and index.get("nobody") is None


def test_colliding_hashes_never_merge_members() -> None:
    index = MemberIndex()
    names = [SameHash(f"c{i}") for i in range(4)]
    assert [index.get_or_add(n) for n in names] == [0, 1, 2, 3]
    assert [index.get(str(n)) for n in names] == [None] * 4  # a plain str hashes elsewhere
    assert [index.get(n) for n in names] == [0, 1, 2, 3]
    assert index.get(SameHash("c9")) is None


def test_keep_renumbers_the_kept_members_and_forgets_the_others() -> None:
    rng = random.Random(3)
    ids = [f"member-{i}-{'x' * rng.randrange(0, 9)}" for i in range(3000)]
    index = MemberIndex()
    index.resolve(ids)
    rows = np.flatnonzero(np.array([rng.random() < 0.7 for _ in ids]))
    kept = index.keep(rows)
    kept_ids = [ids[i] for i in rows.tolist()]
    assert kept.ids() == kept_ids
    assert [kept.get(m) for m in kept_ids] == list(range(len(kept_ids)))
    gone = set(ids) - set(kept_ids)
    assert all(kept.get(m) is None for m in gone)
    assert kept.get_or_add(next(iter(gone))) == len(kept_ids)  # a forgotten member comes back as a new row


def test_keep_with_collisions_keeps_each_member_findable() -> None:
    index = MemberIndex()
    names = [SameHash(f"c{i}") for i in range(4)] + [f"p{i}" for i in range(10)]
    for n in names:
        index.get_or_add(n)
    kept = index.keep(np.array([1, 3, 5, 7], np.intp))  # the slot holder of the shared hash (c0) is gone
    assert kept.ids() == ["c1", "c3", "p1", "p3"]
    assert [kept.get(SameHash("c1")), kept.get("p1"), kept.get("p3")] == [0, 2, 3]  # c1 holds the slot now
    # c3 is a collision again; keep() keys it by the id read back from the index (a plain str, as real ids are)
    assert kept._collisions == {"c3": 1}
    assert kept.get(SameHash("c0")) is None and kept.get("p0") is None


def test_keep_nothing_and_from_ids_round_trip() -> None:
    index = MemberIndex.from_ids(["a", "b", ""])
    assert index.get("") == 2 and index.id_of(2) == ""
    assert len(index.keep(np.array([], np.intp))) == 0
    assert MemberIndex.from_ids(index.ids()).ids() == ["a", "b", ""]
