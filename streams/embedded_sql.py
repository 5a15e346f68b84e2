"""Read-only SQL for everyone else while one process owns the embedded store.

Only one process can open a chDB store at a time. The worker that owns it
writes `<data dir>/clickhouse.owner.json` and serves `POST /v1/sql`; `engage
query` and the gateway's readiness check go through it. With a server DSN,
readers connect to ClickHouse directly instead.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from sinks.clickhouse import connect, connect_new, read_only_sql
from streams.config import Settings


def owner_file(settings: Settings) -> Path:
    return settings.data_path / "clickhouse.owner.json"


def write_owner_file(settings: Settings, pid: int) -> None:
    path = owner_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid, "url": settings.worker_url}))
    tmp.replace(path)


def owner_url(settings: Settings) -> str | None:
    """The URL of the live process that owns the embedded store, if any."""
    try:
        info = json.loads(owner_file(settings).read_text())
        os.kill(int(info["pid"]), 0)
        return str(info["url"])
    except (OSError, ValueError, KeyError):
        return None


class QueryError(RuntimeError):
    pass


def query(settings: Settings, sql: str, fmt: str = "TabSeparatedWithNames", timeout_s: float = 60.0) -> bytes:
    """Run read-only `sql` wherever the data is; return ClickHouse's output in `fmt`."""
    url = owner_url(settings) if settings.embedded else None
    if url is None:
        # No worker owns the store: open it for this query only and close it again, so a worker
        # starting now (or soon) can take it; an embedded store admits one process at a time.
        client = connect(settings.dsn) if not settings.embedded else connect_new(settings.dsn)
        try:
            return bytes(client.raw_query(read_only_sql(sql, settings.sql_limits()), fmt=fmt))
        except Exception as exc:
            raise QueryError(str(exc)) from exc
        finally:
            if settings.embedded:
                client.close()
    req = urllib.request.Request(
        f"{url}/v1/sql?{urllib.parse.urlencode({'format': fmt})}", data=sql.encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        raise QueryError(exc.read().decode("utf-8", "replace")) from exc
    except urllib.error.URLError as exc:
        raise QueryError(
            f"the worker owning the embedded store at {url} did not answer: {exc.reason}"
        ) from exc


def ping(settings: Settings) -> tuple[bool, str]:
    """Is ClickHouse reachable for reading? Never opens the embedded store itself."""
    if settings.embedded and owner_url(settings) is None:
        return False, "no worker owns the embedded ClickHouse store yet (start `engage worker`)"
    try:
        query(settings, "SELECT 1", "TSV", timeout_s=5.0)
    except QueryError as exc:
        return False, str(exc)[:300]
    return True, "ok"
