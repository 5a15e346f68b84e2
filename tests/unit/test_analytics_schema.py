"""Every table and column of the `engagement` database describes itself (migrations 0004, 0005):
its COMMENT is what docs/analytics.md says about it, so BI tools show the page's words."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for tests.fixtures

from tests.fixtures.analytics.embedded_store import analytics_store
from tests.unit.analytics_schema_doc import described

DOCS = described()


@pytest.fixture(scope="module")
def ch() -> Client:
    return analytics_store()[0]


def documented_as(table: str) -> str:
    """A rollup's materialized view `mv_X` is described by X's section."""
    return table.removeprefix("mv_") if table.startswith("mv_") else table


def test_every_column_of_every_engagement_table_has_a_comment(ch: Client) -> None:
    rows = ch.query("SELECT table, name, comment FROM system.columns WHERE database = 'engagement'").result_rows
    assert len(rows) > 250
    assert [f"{t}.{c}" for t, c, comment in rows if not comment.strip()] == []


def test_every_table_has_a_comment(ch: Client) -> None:
    rows = ch.query("SELECT name, comment FROM system.tables WHERE database = 'engagement'").result_rows
    assert len(rows) >= 30
    assert [t for t, comment in rows if not comment.strip()] == []


def test_column_comments_are_the_words_of_the_page(ch: Client) -> None:
    rows = ch.query("SELECT table, name, comment FROM system.columns WHERE database = 'engagement'").result_rows
    differ = {}
    for table, column, comment in rows:
        doc = DOCS.get(documented_as(table))
        assert doc is not None, f"docs/analytics.md has no section for engagement.{table}"
        assert column in doc.columns, f"docs/analytics.md does not describe {table}.{column}"
        if comment != doc.columns[column]:
            differ[f"{table}.{column}"] = (comment, doc.columns[column])
    assert differ == {}, "comments that differ from the page: a new migration must re-comment them"


def test_table_comments_are_the_first_sentence_of_their_section(ch: Client) -> None:
    rows = ch.query("SELECT name, comment FROM system.tables WHERE database = 'engagement'").result_rows
    for table, comment in rows:
        expected = DOCS[documented_as(table)].comment
        if table.startswith("mv_"):
            expected = f"Feeds engagement.{documented_as(table)}: {expected}"
        assert comment == expected, table


def test_the_sample_column_a_bi_tool_shows() -> None:
    """What Metabase shows next to events.join_source, spelled out once."""
    client = analytics_store()[0]
    (comment,) = client.query(
        "SELECT comment FROM system.columns WHERE database = 'engagement' AND table = 'events' "
        "AND name = 'join_source'").result_rows[0]
    assert comment == "on joins: invite, organic, promotion or import; empty otherwise"
