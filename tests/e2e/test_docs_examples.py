"""The README's example runs: its token and curl lines in bash against the test stack, and its `engage query`."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

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
    assert '-H "Authorization: Bearer $TOKEN"' in curl
    body = re.search(r"-d '(.*?)'", curl, flags=re.S)
    assert body is not None
    event = orjson.loads(body.group(1))
    # The shell lines as written, pointed at the test stack's data directory and gateway.
    script = curl.replace(".engage-data", e2e_settings.data_dir).replace(
        "localhost:8080", f"127.0.0.1:{e2e_settings.gateway_port}"
    )
    run = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0 and orjson.loads(run.stdout) == {"accepted": 1}, (run.stdout, run.stderr)
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
