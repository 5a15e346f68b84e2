"""ClickHouse connections: a server over HTTP, or the embedded chDB engine (`chdb://path`).

Both go through clickhouse-connect, so the same DDL and SQL serve both. chDB has
no async client: callers on an event loop run these calls in a thread.
"""

from __future__ import annotations

import re
import threading

import clickhouse_connect
from clickhouse_connect.driver.client import Client

_embedded: dict[str, Client] = {}
_embedded_lock = threading.Lock()


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


def read_only_sql(sql: str) -> str:
    """`sql` with a query-level `readonly = 1`, so the engine refuses any write.

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
    if _TRAILING_SETTINGS.search(text):
        return f"{text}, readonly = 1"
    return f"{text}\nSETTINGS readonly = 1"
