"""The alerting rules parse, pass their promtool unit tests, and each alert is tested both ways."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not found: install it with `apt-get install -y prometheus` (make test does)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def _alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


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
    } <= names


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: str(r["alert"]))
def test_alert_has_severity_for_and_annotations(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), "give every alert a `for:`"
    assert {"summary", "description", "runbook"} <= set(rule["annotations"])


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: str(r["alert"]))
def test_alert_runbook_points_at_a_section_of_deploy_md(rule: dict[str, Any]) -> None:
    anchor = f"docs/deploy.md#{rule['alert'].lower()}"
    assert rule["annotations"]["runbook"].startswith(anchor)
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in DEPLOY_DOC.read_text().splitlines()
        if line.startswith("#")
    }
    assert rule["alert"].lower() in headings, f"docs/deploy.md has no heading `{rule['alert']}`"
