"""The house's direction of flow, read from the source with `ast` (../shared/STYLE.md, docs/topics.md):

- tools (streams/tools/) are imported by nothing outside them but streams/cli.py, and nothing imports the CLI;
- the pure cores (streams/scoring, streams/spam, streams/webhooks) and schemas/ import no tool, no runtime
  module, no Kafka or ClickHouse client;
- schemas/ imports nothing of ours but schemas/;
- sinks/ (ClickHouse) imports nothing from streams/.

Every import counts, at module level or inside a function, so a lazy import cannot hide an arrow.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "streams", "sinks")
CORES = ("streams.scoring", "streams.spam", "streams.webhooks", "schemas")
TOOLS = "streams.tools"
CLIENTS = ("faust", "aiokafka", "kafka", "clickhouse_connect", "chdb", "aiohttp")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module `path` imports, absolute; `from a import b` counts as `a` and `a.b`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@cache
def graph() -> dict[str, set[str]]:
    return {
        module_name(path): imported(path)
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def within(module: str, prefix: str) -> bool:
    """`module` is `prefix` or inside it; every module is inside the empty prefix."""
    return not prefix or module == prefix or module.startswith(prefix + ".")


def arrows(source: str, target: str) -> list[str]:
    return sorted(
        f"{m} -> {i}"
        for m, imports in graph().items()
        if within(m, source)
        for i in imports
        if within(i, target)
    )


def test_the_graph_is_read() -> None:
    g = graph()
    assert {"streams.worker.app", "streams.tools.simulate", "sinks.batch_writer", "schemas.outputs"} <= set(g)
    # the reader sees a real arrow, so an empty answer below means something
    assert "streams.tools.simulate" in g["streams.tools.demo_feed"]
    assert arrows("streams.cli", TOOLS)


def test_only_the_cli_imports_the_tools() -> None:
    outside = [a for a in arrows("", TOOLS) if not within(a.split(" -> ")[0], TOOLS)]
    assert all(a.startswith("streams.cli -> ") for a in outside), outside
    assert arrows("", "streams.cli") == [], "nothing imports the CLI"


@pytest.mark.parametrize("core", CORES)
def test_a_core_imports_no_tool_and_no_runtime(core: str) -> None:
    for target in (TOOLS, "streams.worker", "streams.gateway", "streams.cli", "sinks", "streams.metrics"):
        assert arrows(core, target) == [], f"{core} must not depend on {target}"
    clients = [f"{m} -> {i}" for m, imports in graph().items() if within(m, core)
               for i in imports if i.split(".")[0] in CLIENTS]
    assert clients == [], f"{core} must know no Kafka, ClickHouse or HTTP client"


def test_schemas_import_nothing_of_ours_but_schemas() -> None:
    assert arrows("schemas", "streams") == [] and arrows("schemas", "sinks") == []


def test_sinks_import_nothing_from_streams() -> None:
    assert arrows("sinks", "streams") == []


def test_the_runtime_imports_no_tool() -> None:
    for runtime in ("streams.worker", "streams.gateway"):
        assert arrows(runtime, TOOLS) == []
