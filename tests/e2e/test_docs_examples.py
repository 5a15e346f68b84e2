"""The README's example runs: its curl body is posted to the gateway and its `engage query` answers."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from streams.config import Settings

pytestmark = pytest.mark.usefixtures("stack")
README = Path(__file__).resolve().parents[2] / "README.md"


def example_block() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if "curl" in b and "engage query" in b)


def test_readme_example_runs(e2e_settings: Settings) -> None:
    block = example_block()
    curl = block.split(".venv/bin/engage query")[0]
    body = re.search(r"-d '(.*?)'", curl, flags=re.S)
    assert body is not None
    event = orjson.loads(body.group(1))
    r = httpx.post(f"{e2e_settings.gateway_url}/v1/events", content=body.group(1), timeout=10,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 202, r.text
    sql = shlex.split(block.split(".venv/bin/engage query", 1)[1].strip())[0]
    env_args = ["--data-dir", e2e_settings.data_dir, "--worker-port", str(e2e_settings.worker_port)]
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(
            [sys.executable, "-m", "streams.cli", "query", sql, *env_args], capture_output=True, text=True, check=True
        ).stdout
        if event["type"] in out or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert event["type"] in out and "count()" in out, out


def test_every_readme_engage_query_runs(e2e_settings: Settings) -> None:
    from streams.embedded_sql import query

    queries = re.findall(r'engage query "([^"]+)"', README.read_text())
    assert len(queries) >= 2
    for sql in queries:
        out = query(e2e_settings, sql, "TSV")
        assert out.strip(), sql
