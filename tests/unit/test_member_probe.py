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
