"""Who may run SQL on the worker: loopback callers, or a token with scope sql:read."""

from __future__ import annotations

from pathlib import Path

from sinks.clickhouse import QueryLimits, read_only_sql
from streams.api_tokens import SQL_READ, TokenStore, create_token
from streams.worker.http import sql_caller_allowed


def status(refusal: tuple[int, str] | None) -> int | None:
    return None if refusal is None else refusal[0]


def test_loopback_needs_no_token(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    assert sql_caller_allowed("127.0.0.1", None, store) is None
    assert sql_caller_allowed("::1", None, store) is None


def test_elsewhere_needs_a_sql_read_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    reader = create_token(path, "analyst", [SQL_READ])
    writer = create_token(path, "feeder", ["events:write"])
    store = TokenStore(path)
    assert status(sql_caller_allowed("10.1.2.3", None, store)) == 401
    assert status(sql_caller_allowed("10.1.2.3", "Bearer engage_" + "x" * 43, store)) == 401
    assert status(sql_caller_allowed("10.1.2.3", f"Bearer {writer}", store)) == 403
    assert sql_caller_allowed("10.1.2.3", f"Bearer {reader}", store) is None
    assert sql_caller_allowed(None, f"Bearer {reader}", store) is None


def test_every_analyst_query_carries_its_limits() -> None:
    sql = read_only_sql("SELECT 1", QueryLimits(3, 1000, 10))
    assert sql.endswith(
        "SETTINGS readonly = 1, max_execution_time = 3, max_memory_usage = 1000, max_result_rows = 10,"
        " result_overflow_mode = 'throw'"
    )
    assert read_only_sql("SELECT 1 SETTINGS max_threads = 1", QueryLimits()).startswith(
        "SELECT 1 SETTINGS max_threads = 1, readonly = 1, max_execution_time = 30"
    )
