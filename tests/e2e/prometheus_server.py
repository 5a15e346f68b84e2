"""A real Prometheus server (Debian's `prometheus`) for end-to-end tests: it scrapes the local
stack every second, evaluates deploy/prometheus/alerts.yml, and is always stopped by its owner."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
# The job names of deploy/prometheus/prometheus.yml: the alerts and dashboards select on them.
GATEWAY_JOB = "engage-gateway"
WORKER_JOB = "engage-worker"


def host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def config(gateway_url: str, worker_url: str) -> dict[str, Any]:
    """One-second scrapes and rule evaluations, so rate() has two samples within seconds."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": GATEWAY_JOB, "static_configs": [{"targets": [host_port(gateway_url)]}]},
            {"job_name": WORKER_JOB, "static_configs": [{"targets": [host_port(worker_url)]}]},
        ],
    }


class PrometheusServer:
    """`start()` runs prometheus on `port` with its data and log in `workdir`; `stop()` ends it."""

    def __init__(self, workdir: Path, port: int, gateway_url: str, worker_url: str) -> None:
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.config_path.write_text(yaml.safe_dump(config(gateway_url, worker_url), sort_keys=False))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus not found: install it with `apt-get install -y prometheus`")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"prometheus was not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def query(self, expr: str) -> dict[str, Any]:
        """The /api/v1/query answer as is: status "success" with data, or "error" with why."""
        resp = httpx.post(f"{self.url}/api/v1/query", data={"query": expr}, timeout=10)
        answer: dict[str, Any] = resp.json()
        return answer

    def vector(self, expr: str) -> list[dict[str, Any]]:
        """The samples of an instant query; fails the test when the query does not run."""
        answer = self.query(expr)
        assert answer["status"] == "success", f"{expr!r}: {answer.get('errorType')}: {answer.get('error')}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        """The value of a query returning one sample, None when it returns none."""
        result = self.vector(expr)
        return float(result[0]["value"][1]) if result else None

    def alerting_rules(self) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.url}/api/v1/rules", params={"type": "alert"}, timeout=10)
        resp.raise_for_status()
        return [rule for group in resp.json()["data"]["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    """The alerting rules of deploy/prometheus/alerts.yml."""
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]
