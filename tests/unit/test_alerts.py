"""The alerting rules parse, pass their promtool unit tests, each alert is tested both ways and links
to its runbook section by URL, and Alertmanager's configuration is valid and reachable from Prometheus."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.webhooks.config import PLATFORMS as WEBHOOK_PLATFORMS

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
ALERTMANAGER = PROM_DIR / "alertmanager.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not found: install it with `apt-get install -y prometheus` (make test does)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def _alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def _recording_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "record" in rule]


def test_alert_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_is_valid_and_loads_the_alerts() -> None:
    config = PROM_DIR / "prometheus.yml"
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alerts.yml" in yaml.safe_load(config.read_text())["rule_files"][0]


def test_each_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alert_rules()}
    assert names - fires == set(), "alerts never shown to fire in alerts_test.yml"
    assert names - quiet == set(), "alerts never shown to stay quiet in alerts_test.yml"


def test_the_issue_s_alerts_exist() -> None:
    names = {rule["alert"] for rule in _alert_rules()}
    assert {
        "EngageConsumerLagGrowing",
        "EngageWorkerStalled",
        "EngageDLQRateHigh",
        "EngageSinkErrors",
        "EngageSinkNotFlushing",
        "EngageBadSignatureBurst",
        "EngageSpamWave",
        # issue 16: alerts for what reaches nobody otherwise
        "EngageGateway503s",
        "EngageWebhookLatencyNearDeadline",
        "EngageModerationBacklog",
        "EngageErasureBacklog",
    } <= names


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: str(r["alert"]))
def test_alert_has_severity_for_and_annotations(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), "give every alert a `for:`"
    assert {"summary", "description", "runbook_url", "action"} <= set(rule["annotations"])


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: str(r["alert"]))
def test_alert_runbook_url_is_the_runbooks_page_and_its_section(rule: dict[str, Any]) -> None:
    """A URL (the configurable base, an external label), never a repository path."""
    url = rule["annotations"]["runbook_url"]
    assert url == "{{ $externalLabels.runbook_base_url }}#" + rule["alert"].lower()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("#")
    }
    assert rule["alert"].lower() in headings, f"docs/runbooks.md has no heading `{rule['alert']}`"


def test_prometheus_sets_the_runbook_base_url_and_sends_alerts_to_alertmanager() -> None:
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    assert config["global"]["external_labels"]["runbook_base_url"] == "${RUNBOOK_BASE_URL}"
    targets = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]


def test_promtool_cases_render_runbook_urls_with_a_base() -> None:
    cases = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    assert all(case["external_labels"]["runbook_base_url"].startswith("https://") for case in cases)
    urls = [a["exp_annotations"]["runbook_url"] for case in cases for check in case.get("alert_rule_test", [])
            for a in check.get("exp_alerts", [])]
    assert urls and all(u.startswith("https://runbooks.example/engage/runbooks.md#engage") for u in urls)


def test_every_webhook_platform_has_a_deadline_and_slack_s_is_three_seconds() -> None:
    deadlines = {r["labels"]["platform"]: float(r["expr"].removeprefix("vector(").removesuffix(")"))
                 for r in _recording_rules() if r["record"] == "engage:webhook_deadline_seconds"}
    assert set(WEBHOOK_PLATFORMS) | {"canonical"} == set(deadlines)
    assert deadlines["slack"] == 3.0 and deadlines["github"] == 10.0
    latency = next(r for r in _alert_rules() if r["alert"] == "EngageWebhookLatencyNearDeadline")
    assert "engage:webhook_deadline_seconds" in latency["expr"]


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("amtool") is None:
        pytest.fail("amtool not found: install it with `apt-get install -y prometheus-alertmanager` (make test does)")
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_alertmanager_config_is_valid() -> None:
    result = amtool("check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_routes_every_alert_to_a_webhook_receiver() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert {r["receiver"] for r in routes} <= set(receivers)
    hook = receivers[config["route"]["receiver"]]["webhook_configs"][0]
    assert hook["url"].startswith("http") and hook["send_resolved"] is True
    # Which alert goes where is decided by labels every alert has.
    for rule in _alert_rules():
        assert {"severity", "service"} <= set(rule["labels"])
    result = amtool("config", "routes", "test", "--config.file", str(ALERTMANAGER), "severity=critical",
                    "alertname=EngageGateway503s")
    assert result.returncode == 0 and result.stdout.strip() == "oncall-webhook", result.stdout + result.stderr
