"""The compiled hot path (streams/native.py, `make native`) behaves exactly as its Python sources.

One simulated log (spam profiles, joins, comments, likes, shares across communities) goes
through decode -> state -> rows in two processes, one running the build and one with
ENGAGE_PURE_PYTHON=1; their outputs must be byte for byte the same. `make test` builds
first, so in CI the first child runs compiled code (it says so, and the test holds it to it).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import native

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import hashlib, json, sys
from datetime import UTC, datetime
import pyarrow as pa
import orjson
from streams import native
from streams.config import Settings
from streams.decode import TimeBounds, decode_envelope
from streams.state_registry import StateRegistry
from streams.tools.simulate import simulate
from streams.worker.rows import events_arrow, member_state_arrow, tier_changes_arrow

events, _ = simulate(seed=7, communities=3, members_per_community=300, days=10.0,
                     spam_profiles_per_community=12, history_days=30.0,
                     start=datetime(2026, 3, 2, tzinfo=UTC))
lines = [orjson.dumps(e) for e in events]
lines[5] = b'{"not": "an event"}'  # a dead letter on the way
settings = Settings()
registry = StateRegistry(settings.scoring(), settings.spam())
digest = hashlib.sha256()
bounds = TimeBounds(2e9, 300.0, 946684800.0)
for offset, start in enumerate(range(0, len(lines), 700)):
    env = decode_envelope(b"\n".join(lines[start:start + 700]), bounds)
    digest.update(repr(env.dead).encode())
    parts, offsets = [0] * len(env.records), [offset] * len(env.records)
    out = registry.apply_columns(env.records, parts, offsets)
    def ipc(table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        return sink.getvalue().to_pybytes()
    digest.update(ipc(events_arrow(env.records, env.sources, 1.0, parts, offsets, env.lines)))
    if out.member_row_count():
        digest.update(ipc(member_state_arrow(out.members, 1, registry.scoring.decay_rate)))
    if out.tier_changes:
        digest.update(ipc(tier_changes_arrow(out.tier_changes)))
    digest.update(repr((out.community_rows, out.flags, out.scored, out.duplicates, out.late)).encode())
for cid in sorted(registry.communities):
    digest.update(registry.snapshot_json(cid))
flags = sum(1 for c in registry.communities.values() for _ in c.spam.excluded_members())
print(json.dumps({"mode": native.mode, "digest": digest.hexdigest(), "lines": len(lines), "excluded": flags}))
"""


def _run(pure: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    env["PYTHONHASHSEED"] = "0"  # rows of a batch come from sets of member ids: one order for both
    if pure:
        env[native.PURE_ENV] = "1"
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_compiled_and_python_give_identical_outputs_and_state() -> None:
    built = native.up_to_date()
    compiled, pure = _run(pure=False), _run(pure=True)
    assert pure["mode"] == (f"python ({native.PURE_ENV} set)" if built else "python (not built)")
    assert compiled["mode"] == ("compiled" if built else "python (not built)")
    assert compiled["lines"] == pure["lines"] and int(str(pure["lines"])) > 5_000
    assert int(str(pure["excluded"])) > 0  # the spam core flagged someone: its paths ran
    assert compiled["digest"] == pure["digest"]


def test_a_build_depends_on_the_project_modules_the_compiled_ones_import() -> None:
    """mypyc compiles a NamedTuple's fields as indexes: the record types' modules count."""
    sources = {p.relative_to(native.ROOT).as_posix() for p in native.build_sources()}
    assert {native.source_path(m).relative_to(native.ROOT).as_posix() for m in native.MODULES} <= sources
    assert {"streams/event_record.py", "streams/scoring/records.py", "schemas/events.py"} <= sources
    assert "streams/cli.py" not in sources and not any("tools" in s for s in sources)  # not imported by them


@pytest.mark.parametrize("edited", ["streams/scoring/community.py", "streams/event_record.py"])
def test_an_edited_source_runs_as_python_not_the_old_build(edited: str) -> None:
    """The guard: a build record that no longer matches the sources (a compiled module's own,
    or one it imports) keeps the extensions out."""
    record = Path(native.__file__).with_name(native.BUILD_RECORD)
    if not record.exists():  # nothing built here: what the guard decides without a build
        assert native.mode == "python (not built)"
        return
    saved = record.read_bytes()
    data = json.loads(saved)
    assert edited in data
    data[edited] = hashlib.sha256(b"an older source").hexdigest()
    try:
        record.write_text(json.dumps(data))
        assert not native.up_to_date()
        done = subprocess.run(
            [sys.executable, "-c", "from streams import native; import streams.scoring.community as c; "
             "print(native.mode); print(c.__file__)"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        )
    finally:
        record.write_bytes(saved)
    mode, path = done.stdout.split("\n")[:2]
    assert mode.startswith("python (sources changed")
    assert path.endswith("community.py")
    assert "older than its sources" in done.stderr
    assert native.up_to_date() == all(native._built(m) for m in native.MODULES)


def test_an_installed_build_carries_the_c_helpers_sources() -> None:
    """The build record hashes the C helpers' sources, so an install (the image's `pip install .`)
    without them would find its build stale and run as Python: they are package data."""
    import fnmatch
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["streams"]
    for source in native.C_HELPERS.values():
        inside = source.removeprefix("streams/")
        assert any(fnmatch.fnmatch(inside, g) and g.count("/") == inside.count("/") for g in globs), source
    assert set(native.C_HELPERS.values()) <= {p.relative_to(ROOT).as_posix() for p in native.build_sources()}
