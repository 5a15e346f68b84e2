"""docs/benchmarks.md's `timeit` examples run: each setup line, and each statement timed after it."""

from __future__ import annotations

import re
from pathlib import Path

DOC = (Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md").read_text()
SETUPS = dict(re.findall(r'`([A-Z])="([^"`]+)"`', DOC))
TIMED = re.findall(r'-m timeit -s "\$([A-Z])" "([^"`]+)"`', DOC)


def test_the_timeit_examples_run_as_written() -> None:
    assert len(TIMED) >= 4 and set(SETUPS) >= {name for name, _ in TIMED}
    for name, statement in TIMED:
        scope: dict[str, object] = {}
        exec(SETUPS[name], scope)
        exec(statement, scope)
