"""ClickHouse connections: a server over HTTP, or the embedded chDB engine (`chdb://path`).

Both go through clickhouse-connect, so the same DDL and SQL serve both. chDB has
no async client: callers on an event loop run these calls in a thread.
"""

from __future__ import annotations

import re
import threading
from typing import NamedTuple

import clickhouse_connect
from clickhouse_connect.driver.client import Client

_embedded: dict[str, Client] = {}
_embedded_lock = threading.Lock()


def connect_new(dsn: str) -> Client:
    """A client of its own (not shared): an embedded store can have several in one process,
    so analysts' reads never wait behind the writer's inserts."""
    return clickhouse_connect.get_client(dsn=dsn)


def connect(dsn: str) -> Client:
    """A client for `dsn`. Embedded stores are opened once per process and shared."""
    if dsn.startswith("chdb:"):
        with _embedded_lock:
            client = _embedded.get(dsn)
            if client is None:
                client = clickhouse_connect.get_client(dsn=dsn)
                _embedded[dsn] = client
            return client
    return clickhouse_connect.get_client(dsn=dsn)


class NotReadOnly(ValueError):
    pass


_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*$", re.IGNORECASE)
_TRAILING_SETTINGS = re.compile(r"\bSETTINGS\b[^()]*$", re.IGNORECASE)


class QueryLimits(NamedTuple):
    """What one analyst query may use; past a limit ClickHouse stops it with an error."""

    max_execution_seconds: float = 30.0
    max_memory_bytes: int = 2_000_000_000
    max_result_rows: int = 1_000_000

    def settings(self) -> str:
        return (
            f"max_execution_time = {self.max_execution_seconds:g}, max_memory_usage = {self.max_memory_bytes},"
            f" max_result_rows = {self.max_result_rows}, result_overflow_mode = 'throw'"
        )


def read_only_sql(sql: str, limits: QueryLimits | None = None) -> str:
    """`sql` with a query-level `readonly = 1` (and `limits`), so the engine refuses any write.

    A query-level SETTINGS clause, not a session setting: the chDB backend
    applies per-call settings with SET and cannot undo `readonly` afterwards.
    """
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise NotReadOnly("empty query")
    if ";" in text:
        raise NotReadOnly("one statement at a time")
    if _FORMAT.search(text):
        raise NotReadOnly("leave FORMAT out of the SQL and pass the format separately (--format)")
    extra = "readonly = 1" if limits is None else f"readonly = 1, {limits.settings()}"
    if _TRAILING_SETTINGS.search(text):
        return f"{text}, {extra}"
    return f"{text}\nSETTINGS {extra}"
