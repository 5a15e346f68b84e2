"""The whole pipeline on one machine: Kafka, the worker and the gateway as child processes.

Used by `engage run` and `engage demo`. Whatever it started it stops, on
Ctrl-C, SIGTERM or an error: no process is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from streams.config import Settings
from streams.topics import ensure_topics

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = REPO_ROOT / "deploy" / "local" / "kafka.sh"


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ENGAGE_DATA_DIR": str(settings.data_path),
            "ENGAGE_KAFKA_PORT": str(settings.kafka_port),
            "ENGAGE_KAFKA_BOOTSTRAP": settings.bootstrap,
            "ENGAGE_KAFKA_PARTITIONS": str(settings.partitions),
            "ENGAGE_PARTITIONS": str(settings.partitions),
            "ENGAGE_CLICKHOUSE_DSN": settings.dsn,
            "ENGAGE_GATEWAY_HOST": settings.gateway_host,
            "ENGAGE_GATEWAY_PORT": str(settings.gateway_port),
            "ENGAGE_WORKER_HOST": settings.worker_host,
            "ENGAGE_WORKER_PORT": str(settings.worker_port),
            "ENGAGE_BATCH_SIZE": str(settings.batch_size),
            "ENGAGE_FLUSH_SECONDS": str(settings.flush_seconds),
            "ENGAGE_APP_ID": settings.app_id,
            "ENGAGE_SNAPSHOT_SECONDS": str(settings.snapshot_seconds),
            "ENGAGE_SINK_MAX_RETRY_SECONDS": str(settings.sink_max_retry_seconds),
            "ENGAGE_FAULT_CLICKHOUSE_FILE": settings.fault_clickhouse_file,
            "ENGAGE_STALL_SECONDS": str(settings.stall_seconds),
            "ENGAGE_FAULT_KILL_FILE": settings.fault_kill_file,
            "ENGAGE_KAFKA_SESSION_TIMEOUT_SECONDS": str(settings.kafka_session_timeout_seconds),
        }
    )
    return env


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class LocalStack:
    """Context manager: start what is needed, stop what was started."""

    def __init__(self, settings: Settings, log_dir: Path | None = None, quiet: bool = False) -> None:
        self.settings = settings
        self.log_dir = log_dir or settings.data_path / "logs"
        self.quiet = quiet
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.started_kafka = False

    def say(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)

    def kafka(self, command: str) -> None:
        env = child_env(self.settings)
        subprocess.run(["bash", str(KAFKA_SCRIPT), command], check=True, env=env)

    def kafka_running(self) -> bool:
        env = child_env(self.settings)
        return subprocess.run(["bash", str(KAFKA_SCRIPT), "status"], env=env, check=False).returncode == 0

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args],
            env=child_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us; we stop children in order
        )
        self.children.append((name, proc))
        return proc

    def wait_until(self, what: str, check: object, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, proc in self.children:
                if proc.poll() is not None:
                    tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode} while waiting for {what}:\n{tail}"
                    )
            if callable(check) and check():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}; logs in {self.log_dir}")

    def start(self) -> LocalStack:
        s = self.settings
        if self.kafka_running():
            self.say(f"Kafka already running on {s.bootstrap}")
        else:
            self.kafka("start")
            self.started_kafka = True
        created = ensure_topics(s)
        if created:
            self.say(f"created topics: {', '.join(created)}")
        self.spawn("worker", "worker")
        self.wait_until("the worker", lambda: http_ok(f"{s.worker_url}/readyz"), 120)
        self.spawn("gateway", "gateway")
        self.wait_until("the gateway", lambda: http_ok(f"{s.gateway_url}/readyz"), 60)
        self.say(
            f"gateway {s.gateway_url}  worker {s.worker_url}  Kafka {s.bootstrap}  ClickHouse {s.dsn}\n"
            f"logs: {self.log_dir}"
        )
        return self

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)

    def _reap(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.say(f"{name} did not stop in 30s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_child(self, name: str) -> None:
        for child in [c for c in self.children if c[0] == name]:
            self._terminate(child[1])
            self._reap(*child)
            self.children.remove(child)

    def restart_worker(self) -> None:
        """Stop the worker (SIGTERM, as an orchestrator would) and start a new one."""
        self.stop_child("worker")
        self.spawn("worker", "worker")
        self.wait_until("the worker", lambda: http_ok(f"{self.settings.worker_url}/readyz"), 120)

    def stop(self) -> None:
        # signal every child first, then wait: they shut down in parallel
        for _name, proc in reversed(self.children):
            self._terminate(proc)
        for name, proc in reversed(self.children):
            self._reap(name, proc)
        self.children.clear()
        if self.started_kafka:
            self.kafka("stop")
            self.started_kafka = False

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
