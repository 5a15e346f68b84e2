"""The hot path's modules compiled with mypyc, and the rule that keeps a stale build from running.

`make native` (run by `make run` and `make test`) compiles `MODULES` in place with mypyc
(setup.py): the same typed Python, as C extensions next to the sources, ~1.5x faster in
the scoring and spam cores. It builds `C_HELPERS` too, a few loops written in C where
mypyc's code is little faster than Python's (the member index's probe, the decoder's record
of a line, the scorer's per-event loop); each has its Python twin, which runs whenever the
helper is not loaded.

Python imports an extension before a `.py` of the same name, so an edited source would
silently keep running the old build: `guard()` (called when `streams` is imported)
compares each source with the hash recorded at build time (`BUILD_RECORD`) and, when any
differs, loads all of them from source instead, with one warning. The record covers the
project modules the compiled ones import too (directly or not): mypyc compiles `rec.ts` of
a NamedTuple defined elsewhere as an index, so reordering `EventRecord`'s fields must make
the build stale as surely as editing the scorer; and the C helpers' sources. ENGAGE_PURE_PYTHON=1
does the same on purpose (to compare, or to debug); either way the C helpers are not loaded.
Either way the behaviour is the same: tests/unit/test_native.py runs both on one input.

This file is read by setup.py without importing `streams`: keep it free of imports
beyond the standard library.
"""

from __future__ import annotations

import ast
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
# Written in C for what mypyc compiles no faster than Python: each is imported (where it is
# used) only when it is built and the build is current; otherwise the Python beside it runs.
C_HELPERS = {  # module: its source
    "streams.scoring._member_probe": "streams/scoring/member_probe.c",
    "streams._wire_record": "streams/wire_record.c",
    "streams.scoring._score_loop": "streams/scoring/score_loop.c",
}
GROUP = "streams.hot_path"  # the group's shared library: streams/hot_path__mypyc.*.so (in the package)
BUILD_RECORD = "native-build.json"  # in this directory: {source path: sha256}, MODULES and what they import
PACKAGES = ("streams", "schemas", "sinks")  # the project's own: their modules are the dependencies recorded
PURE_ENV = "ENGAGE_PURE_PYTHON"

ROOT = Path(__file__).resolve().parent.parent  # holds streams/ (the source tree or site-packages)

mode = "python (not built)"  # what guard() decided; streams.metrics reports it


def source_path(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _module_path(module: str) -> Path | None:
    """The source of a project module or package, or None (not ours, or not a module)."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path) -> set[str]:
    """The project modules one source imports (`from a.b import c` may name the module a.b.c)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(n for n in names if _module_path(n) is not None)
    return found


def build_sources() -> list[Path]:
    """MODULES and every project module they import, directly or not: what a build depends on."""
    seen: dict[str, Path] = {}
    todo = list(MODULES)
    while todo:
        module = todo.pop()
        path = _module_path(module)
        if module in seen or path is None:
            continue
        seen[module] = path
        todo.extend(_imports(path))
    return sorted(set(seen.values()) | {ROOT / c for c in C_HELPERS.values()})


def source_hashes(paths: Sequence[Path]) -> dict[str, str]:
    """{path relative to ROOT: sha256 of its bytes}; a missing file hashes as ""."""
    return {
        p.relative_to(ROOT).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in paths
    }


def sources_digest() -> str:
    """One hash of everything a build depends on (`make native` remembers a failed build by it)."""
    return hashlib.sha256(json.dumps(source_hashes(build_sources()), sort_keys=True).encode()).hexdigest()


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
    """Every module compiled, from the sources (and the modules they import) as they are now."""
    recorded = _recorded()
    own = [source_path(m).relative_to(ROOT).as_posix() for m in MODULES] + list(C_HELPERS.values())
    if not all(map(_built, (*MODULES, *C_HELPERS))) or not all(p in recorded for p in own):
        return False
    return recorded == source_hashes([ROOT / p for p in recorded])


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds `MODULES` as their `.py` files, ahead of the extensions beside them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in C_HELPERS:  # its callers fall back to their Python
            raise ModuleNotFoundError(f"{fullname}: the hot path runs as Python ({mode})", name=fullname)
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def c_helper(module: str) -> ModuleType | None:
    """One of `C_HELPERS`, imported, or None when it is not built or must not run (the hot path
    runs as Python: `guard`); its caller then runs the Python twin."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


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
