"""The worker's ClickHouse access: a client for the writer and another for analysts' reads.

Writes go one at a time through the writer's client. Reads (`/v1/sql`, readiness) use a
client of their own, read-only and limited in time, memory and result size, so a heavy
analyst query never holds the writer's lock. In embedded mode (chDB) this process owns
the store; `on_open` runs once the writer's client is open (the worker records itself as
the owner, so readers come through it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sinks.clickhouse import QueryLimits, connect, connect_new, read_only_sql
from sinks.migrate import migrate

log = logging.getLogger(__name__)

T = TypeVar("T")


class ClickHouseAccess:
    def __init__(
        self,
        dsn: str,
        fault_file: str = "",
        on_open: Callable[[], None] = lambda: None,
        limits: QueryLimits | None = None,
        open_wait_s: float = 60.0,
    ) -> None:
        self.dsn = dsn
        self.open_wait_s = open_wait_s
        self.limits = limits or QueryLimits()
        self._readers = threading.local()  # a client per reading thread: queries never queue behind each other
        self.migrated = False
        # While this file exists every write fails at the client boundary (outage drills).
        self.fault_file = Path(fault_file) if fault_file else None
        self.lock = threading.Lock()
        self._on_open = on_open
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self._open()
            self._on_open()
        return self._client

    def _open(self) -> Any:
        """Open the store; an embedded one held by another process (an `engage query` of a stopped
        stack, a worker still exiting) is retried for `open_wait_s` before giving up."""
        deadline = time.monotonic() + self.open_wait_s
        delay = 0.2
        while True:
            try:
                return connect(self.dsn)
            except Exception as exc:
                if not self.dsn.startswith("chdb:") or time.monotonic() + delay > deadline:
                    raise
                log.warning("ClickHouse store %s not available yet (%s); retrying in %.1fs", self.dsn, exc, delay)
                time.sleep(delay)
                delay = min(2.0, delay * 2)

    def raw_insert(self, table: str, column_names: Sequence[str], insert_block: bytes, fmt: str) -> Any:
        if self.fault_file is not None and self.fault_file.exists():
            raise ConnectionError(f"ClickHouse write refused: fault injected while {self.fault_file} exists")
        with self.lock:
            return self.client().raw_insert(table, column_names, insert_block=insert_block, fmt=fmt)

    def raw_query(self, sql: str, fmt: str) -> bytes:
        """Read-only SQL within the limits, on the readers' client."""
        statement = read_only_sql(sql, self.limits)
        reader = getattr(self._readers, "client", None)
        if reader is None:
            with self.lock:
                self.client()  # the writer opens the store first (and records the owner)
            reader = self._readers.client = connect_new(self.dsn)
        return bytes(reader.raw_query(statement, fmt=fmt))

    def run(self, work: Callable[[Any], T]) -> T:
        """`work(client)` under the lock: statements that are neither inserts nor reads (erasures)."""
        if self.fault_file is not None and self.fault_file.exists():
            raise ConnectionError(f"ClickHouse write refused: fault injected while {self.fault_file} exists")
        with self.lock:
            return work(self.client())

    def migrate(self) -> list[str]:
        with self.lock:
            applied = migrate(self.client())
        self.migrated = True
        return applied
