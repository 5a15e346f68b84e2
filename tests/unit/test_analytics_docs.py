"""Every ```sql block of docs/analytics.md runs, read-only, and answers on the simulated communities.

Also: every table and view of the `engagement` database is named in the page, and every
column of every view is documented in that view's section.
"""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the repo root, for tests.fixtures

from sinks.clickhouse import read_only_sql  # noqa: E402
from tests.fixtures.analytics.embedded_store import analytics_store  # noqa: E402

DOC = (ROOT / "docs" / "analytics.md").read_text()


def sql_blocks(text: str) -> list[tuple[str, str]]:
    """(heading above the block, statement) for every ```sql block."""
    found: list[tuple[str, str]] = []
    heading = ""
    for part in re.split(r"(```sql\n.*?```)", text, flags=re.S):
        if part.startswith("```sql"):
            found.append((heading, part.removeprefix("```sql\n").removesuffix("```").strip().rstrip(";")))
        else:
            headings = re.findall(r"^#+ (.+)$", part, flags=re.M)
            heading = headings[-1] if headings else heading
    return found


BLOCKS = sql_blocks(DOC)


@pytest.fixture(scope="module")
def ch() -> Client:
    return analytics_store()[0]


def run(ch: Client, sql: str) -> list[tuple[Any, ...]]:
    # As `engage query` sends it: one statement, with a query-level readonly = 1.
    return [tuple(r) for r in ch.query(read_only_sql(sql)).result_rows]


def test_the_page_asks_at_least_twelve_questions() -> None:
    questions = [h for h, _ in BLOCKS if re.match(r"Q\d+\.", h)]
    assert len(questions) >= 12, questions
    assert all(";" not in sql for _, sql in BLOCKS), "one statement per block"


@pytest.mark.parametrize(("heading", "sql"), BLOCKS, ids=[h.split(" ")[0] or "block" for h, _ in BLOCKS])
def test_every_sql_block_runs_and_answers(ch: Client, heading: str, sql: str) -> None:
    assert run(ch, sql), f"no rows for: {heading}"


def answer(ch: Client, prefix: str) -> list[tuple[Any, ...]]:
    (sql,) = [s for h, s in BLOCKS if h.startswith(prefix)]
    return [r for r in run(ch, sql) if str(r[0]).startswith("ana-")]


def test_questions_name_the_expected_communities(ch: Client) -> None:
    assert [r[0] for r in answer(ch, "Q2.")] == ["ana-big"]  # passed critical mass this month
    assert [r[0] for r in answer(ch, "Q4.")] == ["ana-kernel"]  # lost the creator kernel
    assert [(r[0], r[1]) for r in answer(ch, "Q6.")] == [("ana-big", date(2025, 4, 20))]  # spam spike
    assert sorted(r[0] for r in answer(ch, "Q11.")) == ["ana-micro", "ana-ret"]  # carried by a few
    assert "ana-kernel" in [r[0] for r in answer(ch, "Q9.")]  # an owner who never posted
    at_risk_creators = [(r[0], r[1]) for r in answer(ch, "Q8.")]
    assert at_risk_creators == [("ana-ret", "i2")]
    near = [r[1] for r in answer(ch, "Q12.") if r[0] == "ana-big"]
    assert near[:14] == [f"big-{k:04d}" for k in range(12, 26)] and len(near) == 104 - 11


def test_every_table_and_view_is_named_in_the_page(ch: Client) -> None:
    tables = ch.query("SELECT name FROM system.tables WHERE database = 'engagement'").result_rows
    names = [r[0] for r in tables]
    missing = [n for n in names if f"engagement.{n}" not in DOC]
    assert not missing


def section(name: str) -> str:
    start = DOC.index(f"### `engagement.{name}`")
    end = DOC.find("\n#", start + 1)
    return DOC[start:end]


@pytest.mark.parametrize("view", [
    "v_community_clock", "v_member_current", "v_tier_mix", "v_critical_mass", "v_retention_by_source",
    "v_lifecycle", "v_owner_cadence", "v_concentration", "v_daily",
    "v_weekly", "v_monthly", "v_tier_mix_weekly", "v_retention_weekly",
])
def test_every_view_column_is_documented(ch: Client, view: str) -> None:
    columns = [r[0] for r in ch.query(f"DESCRIBE TABLE engagement.{view}").result_rows]
    text = section(view)
    assert [c for c in columns if f"`{c}`" not in text] == []
