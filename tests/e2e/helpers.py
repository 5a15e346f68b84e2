"""Small helpers shared by the end-to-end tests: waiting, querying the stack's ClickHouse, reading metrics,
and the API tokens the gateway needs."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from streams.api_tokens import create_token
from streams.config import Settings
from streams.embedded_sql import query
from streams.tools.local_stack import local_token_path


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


def api_token(settings: Settings) -> str:
    """The token the local stack issued itself at start (streams/tools/local_stack.py)."""
    return local_token_path(settings).read_text().strip()


def auth(settings: Settings, token: str | None = None) -> dict[str, str]:
    """Headers for /v1/events and /v1/moderation: the stack's own token, or `token`."""
    return {"Authorization": f"Bearer {token or api_token(settings)}"}


def new_token(
    settings: Settings,
    name: str,
    scopes: list[str],
    communities: list[str] | None = None,
    rate: float | None = None,
    burst: int | None = None,
) -> str:
    """Add a token to the stack's tokens file; return it once the running gateway knows it (at most 5 s)."""
    token = create_token(settings.tokens_path, name, scopes, communities, rate=rate, burst=burst)
    # An empty array produces nothing: 202 (or 403 without events:write) once the token is known, 401 before.
    wait_for(
        lambda: httpx.post(f"{settings.gateway_url}/v1/events", json=[], headers=auth(settings, token), timeout=5)
        .status_code != 401,
        5,
        f"the gateway to accept the new token {name!r}",
    )
    return token
