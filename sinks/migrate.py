"""Numbered DDL migrations (`sinks/migrations/NNNN_name.sql`), applied in order, once.

Each applied file is recorded in `engagement.schema_migrations` with its checksum;
running again applies only what is new, and a changed applied file is an error.

A statement may be guarded by `-- when: SELECT ...` lines just above it: it runs only when
that query's first value is non-zero. Guards make a step that is not idempotent by itself
(an EXCHANGE, a DROP) safe when a run stopped half-way is started again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from clickhouse_connect.driver.client import Client

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_GUARD = "-- when:"


@dataclass(frozen=True)
class Step:
    """One statement of a migration, and the query that must answer non-zero for it to run."""

    sql: str
    when: str | None = None


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The file's statements, split on `;` at line ends; `--` comment lines dropped."""
        return [step.sql for step in self.steps()]

    def steps(self) -> list[Step]:
        """The statements with their `-- when:` guards (a guard's lines are joined by spaces)."""
        kept = [
            line for line in self.sql.splitlines()
            if not line.strip().startswith("--") or line.strip().startswith(_GUARD)
        ]
        found = []
        for chunk in re.split(r";\s*(?:\n|$)", "\n".join(kept)):
            lines = chunk.strip().splitlines()
            guards = [line.strip().removeprefix(_GUARD).strip() for line in lines if line.strip().startswith(_GUARD)]
            sql = "\n".join(line for line in lines if not line.strip().startswith(_GUARD)).strip()
            if sql:
                found.append(Step(sql, " ".join(guards) or None))
        return found


def available(directory: Path | None = None) -> list[Migration]:
    root = Path(str(resources.files("sinks") / "migrations")) if directory is None else directory
    found = []
    for path in sorted(root.iterdir()):
        m = _NAME.match(path.name)
        if m:
            found.append(Migration(int(m.group(1)), path.name, path.read_text()))
    numbers = [m.number for m in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two migrations share a number in {root}: {numbers}")
    return found


_LEDGER = """
CREATE TABLE IF NOT EXISTS engagement.schema_migrations
(
    number     UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY number
"""


def applied(client: Client) -> dict[int, tuple[str, str]]:
    client.command("CREATE DATABASE IF NOT EXISTS engagement")
    client.command(_LEDGER)
    rows = client.query("SELECT number, name, checksum FROM engagement.schema_migrations FINAL").result_rows
    return {int(r[0]): (str(r[1]), str(r[2])) for r in rows}


def _answers_yes(client: Client, query: str) -> bool:
    rows = client.query(query).result_rows
    return bool(rows and rows[0] and rows[0][0])


def apply(client: Client, mig: Migration) -> None:
    """Run the migration's statements, each whose guard (if any) answers non-zero; no ledger entry."""
    for step in mig.steps():
        if step.when is None or _answers_yes(client, step.when):
            client.command(step.sql)


def migrate(client: Client, directory: Path | None = None) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    done = applied(client)
    now_applied: list[str] = []
    for mig in available(directory):
        if mig.number in done:
            name, checksum = done[mig.number]
            if checksum != mig.checksum:
                raise RuntimeError(
                    f"migration {mig.name} changed after it was applied (as {name}); "
                    "add a new numbered file instead of editing an applied one"
                )
            continue
        apply(client, mig)
        client.insert(
            "engagement.schema_migrations",
            [[mig.number, mig.name, mig.checksum]],
            column_names=["number", "name", "checksum"],
        )
        now_applied.append(mig.name)
    return now_applied
