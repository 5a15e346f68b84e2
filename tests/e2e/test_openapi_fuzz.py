"""Schemathesis against the running gateway's own /openapi.json: every check, no 5xx, every
response as documented, and the gateway and the worker still working afterwards.

Valid events the fuzzer makes are really produced to Kafka and stored (odd dates and ids
included): the pipeline must take them. Requests carry the stack's API token (schemathesis also
checks that leaving it out is refused); event times are kept inside the gateway's bounds.
Bounded by examples per operation, not by time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from streams.config import Settings
from streams.embedded_sql import query

from .helpers import api_token, auth
from .test_skeleton import eventually, scalar

pytestmark = pytest.mark.usefixtures("stack")

SCHEMATHESIS = Path(sys.executable).with_name("st")
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")  # event times inside the gateway's moving bounds
MAX_EXAMPLES = 150  # per operation; about 20 s in all
# Schemathesis' defaults, plus 413: more than 1,000 events (the array's maxItems) is refused as
# too large, which the document says, rather than as 400 or 422.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""


def test_schemathesis_finds_nothing_and_the_pipeline_still_flows(
    e2e_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{e2e_settings.gateway_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--header",
        f"Authorization: Bearer {api_token(e2e_settings)}",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert run.returncode == 0, f"schemathesis found problems:\n{run.stdout[-30000:]}\n{run.stderr[-3000:]}"
    summary = re.search(r"Test cases:\s*\n\s*(.+)", run.stdout)
    with capsys.disabled():
        print(f"\nschemathesis: {summary.group(1) if summary else run.stdout[-300:]}")

    assert httpx.get(f"{e2e_settings.gateway_url}/healthz", timeout=5).json() == {"ok": True}
    # Whatever the fuzzer got stored, the worker is still storing what comes after it.
    marker = {
        "event_id": f"after-fuzz-{uuid.uuid4().hex}",
        "type": "join",
        "join_source": "organic",
        "community_id": f"c-{uuid.uuid4().hex[:8]}",
        "member_id": "m-after-fuzz",
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "test",
    }
    r = httpx.post(f"{e2e_settings.gateway_url}/v1/events", json=marker, headers=auth(e2e_settings), timeout=10)
    assert r.status_code == 202, r.text
    sql = f"SELECT count() FROM engagement.events WHERE event_id = '{marker['event_id']}'"
    eventually(lambda: scalar(e2e_settings, sql) == 1, what="an event posted after the fuzzing")


def test_an_integer_written_as_a_whole_float_is_an_integer(e2e_settings: Settings) -> None:
    # JSON Schema, and so the document, calls 2.0 an integer; the strict models alone would refuse it.
    event = {
        "event_id": f"whole-float-{uuid.uuid4().hex}",
        "type": "comment",
        "community_id": f"c-{uuid.uuid4().hex[:8]}",
        "member_id": "m-1",
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "test",
        "content_fingerprint": 12345.0,
        "link_count": 2.0,
    }
    r = httpx.post(f"{e2e_settings.gateway_url}/v1/events", json=event, headers=auth(e2e_settings), timeout=10)
    assert r.status_code == 202, r.text
    sql = f"SELECT content_fingerprint, link_count FROM engagement.events WHERE event_id = '{event['event_id']}'"
    eventually(lambda: query(e2e_settings, sql, "TSV").strip() == b"12345\t2", what="the event with whole floats")
    r = httpx.post(
        f"{e2e_settings.gateway_url}/v1/events",
        json={**event, "link_count": 2.5},
        headers=auth(e2e_settings),
        timeout=10,
    )
    assert r.status_code == 422, r.text
    assert [e["path"] for e in r.json()["errors"]] == ["link_count"]
