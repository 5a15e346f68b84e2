"""The member index's C probe (streams/scoring/member_probe.c) finds what the Python probe finds.

`make test` builds it with the hot path, so in CI these run against the C code; without a
build (or with ENGAGE_PURE_PYTHON=1) the index runs its Python probe, and the tests say so.
"""

from __future__ import annotations

import random
from array import array
from typing import Any

import pytest
from c_helpers import c_helper

from streams import native
from streams.scoring import member_index
from streams.scoring.member_index import MemberIndex


def _c_probe() -> Any:
    """The C probe, or None where the hot path runs as Python (then the index must not use it)."""
    helper = c_helper("streams.scoring._member_probe", member_index._c_probe is None)
    return helper.probe if helper is not None else None


def test_the_index_uses_the_c_probe_exactly_when_the_hot_path_is_compiled() -> None:
    assert (member_index._c_probe is not None) == (native.mode == "compiled")


def _ids(rng: random.Random, n: int) -> list[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_é日"  # some ids are not ASCII
    return list(dict.fromkeys("".join(rng.choices(alphabet, k=rng.randint(1, 24))) for _ in range(n)))


def _c_append() -> Any:
    helper = c_helper("streams.scoring._member_probe", member_index._c_append is None)
    return helper.append if helper is not None else None


def test_new_ids_numbered_in_c_or_in_python_give_the_same_index(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(12)
    ids = _ids(rng, 40_000)
    batches = [rng.sample(ids, rng.randint(1, 3_000)) for _ in range(50)]

    def run() -> tuple[list[tuple[list[int], int]], list[str], list[list[int]], int]:
        index = MemberIndex()
        resolved = [index.resolve(list(dict.fromkeys(b))) for b in batches]
        found = [index.find(b) for b in batches[:5]]
        return resolved, index.ids(), found, len(index._slots)

    in_c = run()
    monkeypatch.setattr(member_index, "_c_append", None)
    assert run() == in_c
    assert in_c[2] == [[in_c[1].index(i) for i in b] for b in batches[:5]]


def test_c_append_numbers_new_ids_in_order_and_files_a_taken_hash_under_collisions() -> None:
    append = _c_append()
    if append is None:
        return
    index = MemberIndex()
    index.resolve(["alice"])
    slots, hashes = index._slots, index._hashes
    mask = len(slots) - 1
    # "bob"'s 32-bit hash is alice's, and alice sits in bob's home slot: bob goes to collisions
    slots[hash("alice") & mask] = -1
    slots[hash("bob") & mask] = 0
    hashes[0] = hash("bob") & 0xFFFF_FFFF
    collisions: dict[str, int] = {}
    found = [-1, 0, -1, -1]
    names = ["bob", "alice", "carol", "carol"]  # carol twice: the second keeps the first's index
    blob, ends, added = append(names, found, slots, hashes, index._ends, index._blob, collisions)
    assert found == [1, 0, 2, 2]
    assert collisions == {"bob": 1}
    assert blob == b"bobcarol"
    assert array("I", ends).tolist() == [8, 13]  # after alice's 5 bytes
    assert array("I", added).tolist() == [hash("bob") & 0xFFFF_FFFF, hash("carol") & 0xFFFF_FFFF]
    assert slots[hash("bob") & mask] == 0 and 2 in slots.tolist() and 1 not in slots.tolist()


def test_c_append_refuses_what_it_cannot_number() -> None:
    append = _c_append()
    if append is None:
        return
    index = MemberIndex()
    with pytest.raises(ValueError, match="one found index per name"):
        append(["a"], [], index._slots, index._hashes, index._ends, index._blob, {})
    with pytest.raises(TypeError, match="must be str"):
        append([7], [-1], index._slots, index._hashes, index._ends, index._blob, {})
    full = array("i", [0] * 4)  # every slot taken by member 0, whose hash matches nothing
    with pytest.raises(RuntimeError, match="table full"):
        append(["x"], [-1], full, array("I", [hash("x") + 1 & 0xFFFF_FFFF]), array("I", [1]), bytearray(b"q"), {})


def test_with_and_without_the_c_probe_the_same_indexes_come_out(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    ids = _ids(rng, 30_000)
    batches = [rng.sample(ids, rng.randint(1, 2_000)) for _ in range(60)]

    def run() -> tuple[list[tuple[list[int], int]], list[list[int]], list[str]]:
        index = MemberIndex()
        resolved = [index.resolve(list(dict.fromkeys(b))) for b in batches]
        found = [index.find([*b, "never-seen", ids[0]]) for b in batches[:10]]
        return resolved, found, index.ids()

    with_probe = run()
    monkeypatch.setattr(member_index, "_c_probe", None)
    assert run() == with_probe
    _, found, order = with_probe
    assert order == list(dict.fromkeys(i for b in batches for i in b))  # numbered by first appearance
    assert all(f[-2] == -1 and f[-1] == order.index(ids[0]) for f in found)


def test_a_hit_is_checked_against_the_stored_bytes_and_a_taken_hash_goes_to_the_collisions() -> None:
    probe = _c_probe()
    if probe is None:
        return
    index = MemberIndex()
    assert index.resolve(["alice", "carol"]) == ([0, 1], 0)
    slots, hashes = index._slots, index._hashes
    mask = len(slots) - 1
    # make "bob" land on alice's row: same 32-bit hash, alice in bob's home slot
    slots[hash("alice") & mask] = -1
    slots[hash("bob") & mask] = 0
    hashes[0] = hash("bob") & 0xFFFF_FFFF
    assert probe(["bob", "carol", "nobody"], slots, hashes, index._ends, index._blob, {}) == [-1, 1, -1]
    assert probe(["bob"], slots, hashes, index._ends, index._blob, {"bob": 7}) == [7]
    assert probe([], slots, hashes, index._ends, index._blob, {}) == []


def test_what_the_c_probe_does_not_look_up_the_index_does() -> None:
    probe = _c_probe()
    if probe is None:
        return

    class Name(str):
        __slots__ = ()

    index = MemberIndex()
    index.resolve(["m1", "m2"])
    assert probe([Name("m2"), "m2"], index._slots, index._hashes, index._ends, index._blob, {}) == [-2, 1]
    assert index.find([Name("m2"), "m1"]) == [1, 0]  # a str subclass: looked up in Python
    assert index.resolve([Name("m2"), Name("m3")]) == ([1, 2], 2)


def test_a_table_that_is_not_a_member_index_is_refused() -> None:
    probe = _c_probe()
    if probe is None:
        return
    with pytest.raises(ValueError, match="power of two"):
        probe(["a"], array("i", [-1] * 3), array("I"), array("I"), bytearray(), {})
    with pytest.raises(ValueError, match="one hash per member"):
        probe(["a"], array("i", [-1] * 4), array("I", [1]), array("I"), bytearray(), {})
    with pytest.raises(RuntimeError, match="ends out of range"):
        h = hash("a")
        slots = array("i", [-1] * 4)
        slots[h & 3] = 0
        probe(["a"], slots, array("I", [h & 0xFFFF_FFFF]), array("I", [9]), bytearray(b"a"), {})
