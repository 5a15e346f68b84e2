"""The hot path's modules compiled with mypyc, and the rule that keeps a stale build from running.

`make native` (run by `make run` and `make test`) compiles `MODULES` in place with mypyc
(setup.py): the same typed Python, as C extensions next to the sources, ~1.5x faster in
the scoring and spam cores. Python imports an extension before a `.py` of the same name,
so an edited source would silently keep running the old build: `guard()` (called when
`streams` is imported) compares each source with the hash recorded at build time
(`BUILD_RECORD`) and, when any differs, loads all of them from source instead, with one
warning. ENGAGE_PURE_PYTHON=1 does the same on purpose (to compare, or to debug).
Either way the behaviour is the same: tests/unit/test_native.py runs both on one input.

This file is read by setup.py without importing `streams`: keep it free of imports
beyond the standard library.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# Compiled together (one mypyc group): a module of the group calls the others natively, so
# they are all compiled or all source, never a mix.
MODULES = (
    "streams.decode",
    "streams.state_registry",
    "streams.scoring.community",
    "streams.scoring.event_dedup",
    "streams.scoring.forward_decay",
    "streams.scoring.member_index",
    "streams.scoring.member_table",
    "streams.scoring.tiers",
    "streams.scoring.top_set",
    "streams.spam.detector",
    "streams.spam.flags",
    "streams.worker.rows",
)
GROUP = "streams.hot_path"  # the group's shared library: streams/hot_path__mypyc.*.so (in the package)
BUILD_RECORD = "native-build.json"  # in this directory: {module: sha256 of its source}
PURE_ENV = "ENGAGE_PURE_PYTHON"

ROOT = Path(__file__).resolve().parent.parent  # holds streams/ (the source tree or site-packages)

mode = "python (not built)"  # what guard() decided; streams.metrics reports it


def source_path(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def source_hashes() -> dict[str, str]:
    return {m: hashlib.sha256(source_path(m).read_bytes()).hexdigest() for m in MODULES}


def _built(module: str) -> bool:
    base = source_path(module).with_suffix("")
    return any(Path(f"{base}{suffix}").exists() for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def _recorded() -> dict[str, str]:
    try:
        data = json.loads((Path(__file__).with_name(BUILD_RECORD)).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def up_to_date() -> bool:
    """Every module compiled, from the sources as they are now."""
    return all(map(_built, MODULES)) and _recorded() == source_hashes()


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds `MODULES` as their `.py` files, ahead of the extensions beside them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def guard() -> str:
    """Decide, before any of `MODULES` is imported, whether their compiled build may run."""
    global mode
    if not any(map(_built, MODULES)):
        mode = "python (not built)"
        return mode
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        mode = f"python ({PURE_ENV} set)"
    elif not up_to_date():
        mode = "python (sources changed since the build: run make native)"
        print(f"engage: the compiled hot path is older than its sources, running it as Python: {mode}", file=sys.stderr)
    else:
        mode = "compiled"
        return mode
    if not any(isinstance(f, _FromSource) for f in sys.meta_path):
        sys.meta_path.insert(0, _FromSource())
    return mode
