"""docker-compose.yml is valid, and agrees with Settings, the `engage` CLI and prometheus.yml."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from streams.cli import parser
from streams.config import Settings
from streams.webhooks.config import ENV_PREFIX as SECRET_PREFIX
from streams.webhooks.config import PLATFORMS as WEBHOOK_PLATFORMS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SETTINGS_VARS = {"ENGAGE_" + f.name.upper() for f in fields(Settings) if f.name != "extra"}
SECRET_VARS = {SECRET_PREFIX + p.upper() for p in WEBHOOK_PLATFORMS}


@cache
def resolved() -> dict[str, Any]:
    """`docker-compose config`: the file as Compose reads it (anchors merged, variables filled)."""
    if shutil.which("docker-compose") is None:
        pytest.fail(
            "docker-compose not found: install it with `apt-get install -y docker-compose` (make test does)"
        )
    # Our own variables are left out so the result does not depend on who runs the test.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "CLICKHOUSE_", "GRAFANA_"))}
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


def services() -> dict[str, dict[str, Any]]:
    svcs: dict[str, dict[str, Any]] = resolved()["services"]
    return svcs


def engage_services() -> dict[str, dict[str, Any]]:
    """Services that run our image (built from the Dockerfile)."""
    return {name: svc for name, svc in services().items() if "build" in svc}


def by_command(command: str) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in engage_services().items() if svc["command"][0] == command}


def settings_of(svc: dict[str, Any]) -> Settings:
    env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
    return Settings.from_env(env)


def container_ports(svc: dict[str, Any]) -> list[int]:
    ports = []
    for spec in svc.get("ports", []):
        if isinstance(spec, dict):
            ports.append(int(spec["target"]))
        else:
            ports.append(int(str(spec).split(":")[-1].split("/")[0]))
    return ports


def test_compose_config_is_valid() -> None:
    assert {"kafka", "clickhouse", "gateway", "prometheus", "grafana"} <= set(services())


def test_engage_variables_are_settings_fields() -> None:
    for name, svc in engage_services().items():
        for var in svc.get("environment") or {}:
            if var.startswith("ENGAGE_"):
                assert var in SETTINGS_VARS | SECRET_VARS, f"{name}: {var} is not read by streams/config.py"


def test_every_engage_name_in_the_file_is_real() -> None:
    """Including the ones only interpolated (`${ENGAGE_...}`), where a typo would pass silently."""
    text = re.sub(r"(^|\s)#.*$", "", COMPOSE.read_text(), flags=re.M)  # comments may say ENGAGE_*
    assert "ENGAGE_" in text
    for var in set(re.findall(r"\bENGAGE_[A-Z0-9_]+", text)):
        assert var in SETTINGS_VARS | SECRET_VARS, f"{var} is not read by streams/config.py"


def test_our_services_are_configured_by_engage_variables_only() -> None:
    for name, svc in engage_services().items():
        others = [v for v in svc.get("environment") or {} if not v.startswith("ENGAGE_")]
        assert others == [], f"{name} sets {others}: configure it with ENGAGE_* variables"


def test_commands_are_engage_subcommands() -> None:
    sub = next(a for a in parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    real = set(sub.choices or {})
    assert engage_services()
    for name, svc in engage_services().items():
        assert svc["command"][0] in real, f"{name}: `engage {svc['command'][0]}` is not a subcommand"
    assert re.search(r'^ENTRYPOINT \["engage"\]$', (ROOT / "Dockerfile").read_text(), re.M)


def test_topics_and_migrations_run_before_the_workers() -> None:
    for name, svc in by_command("worker").items():
        deps = svc["depends_on"]
        for init in ("topics", "migrate"):
            assert deps[init]["condition"] == "service_completed_successfully", (name, init)


def test_two_workers_in_one_consumer_group() -> None:
    workers = by_command("worker")
    assert len(workers) >= 2
    assert len({settings_of(svc).app_id for svc in workers.values()}) == 1
    volumes = [tuple(svc.get("volumes", [])) for svc in workers.values()]
    assert len(set(volumes)) == len(volumes), "each worker needs its own data volume"


def listen_address(role: str, settings: Settings) -> tuple[str, int]:
    if role == "gateway":
        return settings.gateway_host, settings.gateway_port
    return settings.worker_host, settings.worker_port


@pytest.mark.parametrize("role", ["gateway", "worker"])
def test_ports_match_settings(role: str) -> None:
    assert by_command(role), role
    for name, svc in by_command(role).items():
        host, port = listen_address(role, settings_of(svc))
        assert container_ports(svc) == [port], name
        assert host == "0.0.0.0", f"{name} must listen on every interface inside its container"
        assert f":{port}/healthz" in " ".join(svc["healthcheck"]["test"]), name


def test_kafka_and_clickhouse_addresses_match_their_services() -> None:
    kafka_env = services()["kafka"]["environment"]
    for name, svc in engage_services().items():
        settings = settings_of(svc)
        assert f"PLAINTEXT://{settings.bootstrap}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"], name
        dsn = urlsplit(settings.dsn)
        assert (dsn.scheme, dsn.hostname, dsn.port) == ("http", "clickhouse", 8123), name
        assert dsn.username == services()["clickhouse"]["environment"]["CLICKHOUSE_USER"]
        assert dsn.password == services()["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"]
        assert settings.partitions == int(kafka_env["KAFKA_NUM_PARTITIONS"]), name


def test_prometheus_scrapes_the_gateway_and_every_worker() -> None:
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    targets = {name: {t for sc in job["static_configs"] for t in sc["targets"]} for name, job in jobs.items()}
    expected_gw = {f"{n}:{settings_of(s).gateway_port}" for n, s in by_command("gateway").items()}
    expected_wk = {f"{n}:{settings_of(s).worker_port}" for n, s in by_command("worker").items()}
    assert targets["engage-gateway"] == expected_gw
    assert targets["engage-worker"] == expected_wk
    mounts = " ".join(services()["prometheus"]["volumes"])
    assert "deploy/prometheus:/etc/prometheus" in mounts


def test_grafana_has_the_plugin_and_our_provisioning() -> None:
    grafana = services()["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    mounts = " ".join(grafana["volumes"])
    assert "deploy/grafana/provisioning:/etc/grafana/provisioning" in mounts
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"deploy/grafana/dashboards:{path}" in mounts
    datasources = (ROOT / "deploy/grafana/provisioning/datasources/datasources.yml").read_text()
    for var in ("CLICKHOUSE_ANALYST_USER", "CLICKHOUSE_ANALYST_PASSWORD"):
        assert "${" + var + "}" in datasources


def analyst_config() -> ET.Element:
    return ET.parse(ROOT / "deploy/clickhouse/users.d/analyst.xml").getroot()


def test_grafana_reads_as_the_read_only_user_never_the_writer() -> None:
    grafana, clickhouse = services()["grafana"]["environment"], services()["clickhouse"]["environment"]
    users = analyst_config().find("users")
    assert users is not None
    [user] = list(users)
    assert grafana["CLICKHOUSE_ANALYST_USER"] == user.tag != clickhouse["CLICKHOUSE_USER"]
    password = user.find("password")
    assert password is not None and password.get("from_env") == "CLICKHOUSE_ANALYST_PASSWORD"
    assert grafana["CLICKHOUSE_ANALYST_PASSWORD"] == clickhouse["CLICKHOUSE_ANALYST_PASSWORD"]
    assert grafana["CLICKHOUSE_ANALYST_PASSWORD"] != clickhouse["CLICKHOUSE_PASSWORD"]
    assert user.findtext("access_management") == "0"
    assert [q.text for q in user.iter("query")] == ["GRANT SELECT ON engagement.*"]
    # the writer manages no access either, and the file is mounted where the server reads users.d
    assert clickhouse["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"] == "0"
    mounts = " ".join(services()["clickhouse"]["volumes"])
    assert "deploy/clickhouse/users.d/analyst.xml:/etc/clickhouse-server/users.d/analyst.xml" in mounts


def test_the_analyst_profile_is_read_only_and_limited() -> None:
    config = analyst_config()
    users = config.find("users")
    assert users is not None
    [user] = list(users)
    profile = config.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None
    assert profile.findtext("readonly") == "1"
    assert int(profile.findtext("max_execution_time") or 0) == 30
    assert int(profile.findtext("max_memory_usage") or 0) == 2_000_000_000
    assert int(profile.findtext("max_result_rows") or 0) == 1_000_000
    assert profile.findtext("result_overflow_mode") == "throw"
    # Grafana's plugin sets max_execution_time on every query: allowed in readonly, up to a bound
    limit = profile.find("constraints/max_execution_time")
    assert limit is not None and limit.find("changeable_in_readonly") is not None
    assert int(limit.findtext("max") or 0) == 60


def test_the_gateway_keeps_its_tokens_file_in_a_volume() -> None:
    gateway = next(iter(by_command("gateway").values()))
    settings = settings_of(gateway)
    mounted = [v.split(":")[1] if isinstance(v, str) else v["target"] for v in gateway.get("volumes", [])]
    assert any(str(settings.tokens_path).startswith(m) for m in mounted), (settings.tokens_path, mounted)


def test_images_are_pinned() -> None:
    for name, svc in services().items():
        if "build" not in svc:
            image = svc["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
    assert services()["kafka"]["image"] == "apache/kafka:4.3.1"


def test_alertmanager_runs_and_prometheus_sends_it_alerts_with_runbook_links() -> None:
    am = services()["alertmanager"]
    assert "deploy/prometheus/alertmanager.yml:/etc/alertmanager/alertmanager.yml" in " ".join(am["volumes"])
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    prom_config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    managers = prom_config["alerting"]["alertmanagers"]
    (target,) = [t for a in managers for sc in a["static_configs"] for t in sc["targets"]]
    assert target == "alertmanager:9093"
    assert container_ports(am) == [9093]
    prometheus = services()["prometheus"]
    # ${RUNBOOK_BASE_URL} in prometheus.yml's external labels is filled in only with this flag.
    assert "--enable-feature=expand-external-labels" in prometheus["command"]
    assert prometheus["environment"]["RUNBOOK_BASE_URL"].startswith("https://")
    assert "${RUNBOOK_BASE_URL}" in (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()


def test_clickhouse_serves_its_prometheus_endpoint_and_prometheus_scrapes_it() -> None:
    import xml.etree.ElementTree as ET

    mounts = " ".join(services()["clickhouse"]["volumes"])
    source = "deploy/clickhouse/config.d/prometheus.xml"
    assert f"{source}:/etc/clickhouse-server/config.d/prometheus.xml" in mounts
    endpoint = ET.parse(ROOT / source).getroot().find("prometheus")
    assert endpoint is not None
    port, path = endpoint.findtext("port"), endpoint.findtext("endpoint")
    assert endpoint.findtext("metrics") == endpoint.findtext("events") == "true"
    prom_config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom_config["scrape_configs"] if j["job_name"] == "clickhouse")
    assert job["metrics_path"] == path
    assert [t for sc in job["static_configs"] for t in sc["targets"]] == [f"clickhouse:{port}"]
