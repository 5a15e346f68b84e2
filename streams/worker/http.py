"""The worker's HTTP answers: liveness, readiness and read-only SQL, as (status, body).

Plain functions so they can be tested without Faust; streams/worker/app.py serves them.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from sinks.access import ClickHouseAccess
from streams import metrics
from streams.api_tokens import SQL_READ, TokenStore, bearer_token
from streams.stall import StallDetector


def health(stall: StallDetector) -> tuple[int, dict[str, Any]]:
    ok, why = stall.healthy()
    return (200 if ok else 503), {"ok": ok, "reason": why}


async def readiness(ch: ClickHouseAccess, instance: str) -> tuple[int, dict[str, Any]]:
    """Ready once migrations ran and ClickHouse answers; `instance` proves which process this is."""
    if not ch.migrated:
        return 503, {"ok": False, "clickhouse": "migrations not applied yet"}
    try:
        await asyncio.to_thread(ch.raw_query, "SELECT 1", "TSV")
    except Exception as exc:
        return 503, {"ok": False, "clickhouse": str(exc)[:300]}
    return 200, {"ok": True, "instance": instance}


# ClickHouse error codes of a query stopped by its limits: TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED,
# TOO_MANY_ROWS_OR_BYTES.
_LIMIT_CODES = ("Code: 159.", "Code: 241.", "Code: 396.")


def sql_caller_allowed(remote: str | None, authorization: str | None, tokens: TokenStore) -> tuple[int, str] | None:
    """None when the caller may run SQL: loopback (`engage query` on this machine), or a token
    with scope `sql:read`; otherwise the status and why."""
    if remote is not None and _loopback(remote):
        return None
    presented = bearer_token(authorization)
    if presented is None:
        metrics.GATEWAY_AUTH_REFUSED.labels("sql", "missing_token").inc()
        return 401, "send `Authorization: Bearer <token>` with scope sql:read (engage token create --scope sql:read)"
    token = tokens.current().find(presented)
    if token is None:
        metrics.GATEWAY_AUTH_REFUSED.labels("sql", "unknown_token").inc()
        return 401, "the token is unknown or revoked; ask for a new one"
    if SQL_READ not in token.scopes:
        metrics.GATEWAY_AUTH_REFUSED.labels("sql", "wrong_scope").inc()
        return 403, f"token {token.name!r} lacks the scope {SQL_READ!r}"
    return None


def _loopback(remote: str) -> bool:
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


async def sql(ch: ClickHouseAccess, query: str, fmt: str) -> tuple[int, bytes]:
    """Read-only SQL within the limits; 400 with ClickHouse's message when refused or stopped."""
    try:
        body = await asyncio.to_thread(ch.raw_query, query, fmt)
    except Exception as exc:
        text = str(exc)
        limited = any(code in text for code in _LIMIT_CODES)
        metrics.SQL_QUERIES.labels("limit" if limited else "refused").inc()
        hint = " (stopped by a limit: narrow the query, or use the analyst user on a server)" if limited else ""
        return 400, (text[:4000] + hint).encode()
    metrics.SQL_QUERIES.labels("ok").inc()
    return 200, body
