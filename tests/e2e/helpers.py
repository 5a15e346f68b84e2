"""Small helpers shared by the end-to-end tests: waiting, querying the stack's ClickHouse, reading metrics."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson

from streams.config import Settings
from streams.embedded_sql import query


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def rows(settings: Settings, sql: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in query(settings, sql, "JSONEachRow").splitlines() if line.strip()]


def scalar(settings: Settings, sql: str) -> int:
    return int(query(settings, sql, "TSV").strip())


def worker_metric(settings: Settings, name: str) -> float:
    """Sum of every series of `name` on the worker's /metrics."""
    total = 0.0
    with urllib.request.urlopen(f"{settings.worker_url}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
    return total
