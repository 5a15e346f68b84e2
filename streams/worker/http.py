"""The worker's HTTP answers: liveness, readiness and read-only SQL, as (status, body).

Plain functions so they can be tested without Faust; streams/worker/app.py serves them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sinks.access import ClickHouseAccess
from streams.stall import StallDetector


def health(stall: StallDetector) -> tuple[int, dict[str, Any]]:
    ok, why = stall.healthy()
    return (200 if ok else 503), {"ok": ok, "reason": why}


async def readiness(ch: ClickHouseAccess) -> tuple[int, dict[str, Any]]:
    if not ch.migrated:
        return 503, {"ok": False, "clickhouse": "migrations not applied yet"}
    try:
        await asyncio.to_thread(ch.raw_query, "SELECT 1", "TSV")
    except Exception as exc:
        return 503, {"ok": False, "clickhouse": str(exc)[:300]}
    return 200, {"ok": True}


async def sql(ch: ClickHouseAccess, query: str, fmt: str) -> tuple[int, bytes]:
    try:
        return 200, await asyncio.to_thread(ch.raw_query, query, fmt)
    except Exception as exc:
        return 400, str(exc).encode()[:4000]
