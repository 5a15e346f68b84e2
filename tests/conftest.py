"""Shared fixtures. End-to-end tests (marked `e2e`) share one real Kafka broker
and one local stack per session, on free ports, always stopped at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.config import Settings
from streams.tools.local_stack import free_port, free_port_pair

E2E_WEBHOOK_SECRETS = {
    "slack": "e2e-slack-signing-secret",
    "discourse": "e2e-discourse-secret",
    "github": "e2e-github-secret",
    "bettermode": "e2e-bettermode-secret",
}


@pytest.fixture(scope="session")
def e2e_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = Path(tmp_path_factory.mktemp("engage-e2e"))
    kport = free_port_pair()
    os.environ["ENGAGE_KAFKA_CONTROLLER_PORT"] = str(kport + 1)
    # analyst queries on the e2e worker are stopped after 3 s (tests/e2e/test_sql_isolation.py)
    os.environ["ENGAGE_SQL_MAX_EXECUTION_SECONDS"] = "3"
    # The gateway of the e2e stack verifies webhooks with these (tests sign with them).
    for platform, secret in E2E_WEBHOOK_SECRETS.items():
        os.environ[f"ENGAGE_WEBHOOK_SECRET_{platform.upper()}"] = secret
    return Settings.from_env(
        {},
        data_dir=str(data),
        kafka_port=kport,
        gateway_port=free_port(),
        worker_port=free_port(),
        batch_size=2000,
        flush_seconds=0.3,
        snapshot_seconds=2.0,
        sink_max_retry_seconds=1.0,
        fault_clickhouse_file=str(data / "fail-clickhouse"),
        # kill -9 drills (tests/e2e/test_chaos.py): the worker's kill switch, and a short session so
        # the group gives up on a killed worker in seconds
        fault_kill_file=str(data / "kill-worker"),
        kafka_session_timeout_seconds=6.0,
    )


@pytest.fixture(scope="session")
def stack(e2e_settings: Settings) -> Iterator[object]:
    from streams.tools.local_stack import LocalStack

    s = LocalStack(e2e_settings, quiet=True)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        # the broker must never outlive the session, whoever started it
        s.started_kafka = True
        s.stop()
