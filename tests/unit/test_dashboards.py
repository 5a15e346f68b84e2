"""The committed dashboards are what deploy/grafana/dashboards.py generates, and every query parses."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from streams import metrics

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"


@cache
def dashboards() -> ModuleType:
    """deploy/grafana/dashboards.py, loaded by path: deploy/ is not an installed package."""
    spec = importlib.util.spec_from_file_location("engage_dashboards", GRAFANA / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exposed_metric_names() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_committed_json_matches_the_generator() -> None:
    gen = dashboards()
    for stem, data in gen.build().items():
        path = GRAFANA / "dashboards" / f"{stem}.json"
        assert path.exists(), f"{path} is missing: run .venv/bin/python deploy/grafana/dashboards.py"
        assert path.read_text() == gen.render_json(data), (
            f"{path.name} differs from the generator: run .venv/bin/python deploy/grafana/dashboards.py"
        )


def test_no_stray_dashboard_files() -> None:
    committed = {p.stem for p in (GRAFANA / "dashboards").glob("*.json")}
    assert committed == set(dashboards().build())


def test_main_check_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = dashboards()
    monkeypatch.setattr(gen, "OUT_DIR", tmp_path)
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    (tmp_path / "pipeline-health.json").write_text("{}\n")
    assert gen.main(["--check"]) == 1


def test_both_dashboards_have_panels_and_unique_ids() -> None:
    for stem, data in dashboards().build().items():
        ids = [p["id"] for p in data["panels"]]
        assert len(ids) == len(set(ids)), stem
        assert sum(1 for p in data["panels"] if p["type"] != "row") >= 8, stem


def test_panels_use_the_provisioned_datasources() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text())
    known = {(d["type"], d["uid"]) for d in provisioned["datasources"]}
    expected = {"pipeline-health": "prometheus", "community-engagement": "grafana-clickhouse-datasource"}
    for stem, data in dashboards().build().items():
        for panel in data["panels"]:
            if panel["type"] == "row":
                continue
            refs = [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]
            for ref in refs:
                assert (ref["type"], ref["uid"]) in known, (stem, panel["title"])
                assert ref["type"] == expected[stem], (stem, panel["title"])


def test_every_promql_expression_parses() -> None:
    """promtool parses each expression as a recording rule: a PromQL parse check without a server."""
    if shutil.which("promtool") is None:
        pytest.fail("promtool not found: install it with `apt-get install -y prometheus` (make test does)")
    exprs = dashboards().promql_expressions()
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert len(exprs) > 30
    assert {r["expr"].strip() for g in alerts["groups"] for r in g["rules"]} <= set(exprs)
    assert not [e for e in exprs if "$" in e], "Grafana macros left in a rendered expression"
    rules = [{"record": f"parse:expr{i}", "expr": e} for i, e in enumerate(exprs)]
    text = yaml.safe_dump({"groups": [{"name": "parse", "rules": rules}]})
    result = subprocess.run(
        ["promtool", "check", "rules", "/dev/stdin"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_raw_promql_keeps_grafana_macros() -> None:
    raw = dashboards().promql_expressions(raw=True)
    assert any("[$__rate_interval]" in e for e in raw)


# Metrics an alert already watches while the code that exports them lands separately, each with
# who exports it. Remove an entry once streams/metrics.py defines the metric (the test says so).
FORTHCOMING: dict[str, str] = {}


def test_promql_names_only_real_metrics() -> None:
    known = exposed_metric_names()
    assert not set(FORTHCOMING) & known, "streams/metrics.py defines it now: drop it from FORTHCOMING"
    known |= set(FORTHCOMING)
    used = set()
    for expr in dashboards().promql_expressions():
        for name in re.findall(r"\bengage_[a-z0-9_]+", expr):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name) if name not in known else name)
    assert used - known == set(), "queries name metrics that streams/metrics.py does not define"


def test_pipeline_health_shows_every_metric() -> None:
    gen = dashboards()
    text = " ".join(t["expr"] for t in gen._targets(gen.build()["pipeline-health"]) if "expr" in t)
    missing = {name for name in exposed_metric_names() if re.sub(r"_total$", "", name) not in text}
    assert missing == set(), "add a panel to deploy/grafana/dashboards.py for each new metric"


def test_latency_panels_use_histogram_quantile() -> None:
    exprs = dashboards().promql_expressions()
    for bucket in ("engage_end_to_end_latency_seconds_bucket", "engage_pipeline_latency_seconds_bucket"):
        quantiles = {e.split(",")[0] for e in exprs if bucket in e and e.startswith("histogram_quantile(")}
        assert quantiles == {"histogram_quantile(0.5", "histogram_quantile(0.9", "histogram_quantile(0.99"}


def test_every_clickhouse_query_is_on_a_panel_and_a_contract_view() -> None:
    gen = dashboards()
    raw = gen.clickhouse_panel_sql(raw=True)
    assert sorted(raw) == sorted(gen.CLICKHOUSE_SQL.values()), (
        "every CLICKHOUSE_SQL entry is used exactly once"
    )
    views = {"v_tier_mix", "v_critical_mass", "v_member_current", "v_retention_by_source", "v_daily"}
    used = {v for sql in raw for v in re.findall(r"engagement\.(v_[a-z_]+)", sql)}
    assert used == views


def test_clickhouse_panels_carry_raw_sql() -> None:
    data = dashboards().build()["community-engagement"]
    for panel in data["panels"]:
        for target in panel.get("targets", []):
            assert target["editorType"] == "sql" and target["rawSql"].lstrip().startswith("SELECT")
            assert target["format"] in (0, 1)


def test_every_clickhouse_query_runs_on_the_views() -> None:
    """Each query, macros expanded, runs read-only on the migrated store with simulated communities.

    That checks ClickHouse's parser and the view contract (names and columns of
    sinks/migrations) at once; the fixture shares the process's one embedded store.
    """
    sys.path.insert(0, str(ROOT))  # the repo root, for tests.fixtures
    from tests.fixtures.analytics.embedded_store import analytics_store

    client = analytics_store()[0]
    gen = dashboards()
    rendered = {key: gen.render_clickhouse_sql(sql) for key, sql in gen.CLICKHOUSE_SQL.items()}
    assert not [key for key, sql in rendered.items() if "$" in sql], "Grafana macros left in a rendered query"
    empty = []
    for key, sql in rendered.items():
        try:
            rows = client.query(f"{sql}\nSETTINGS readonly = 1").result_rows
        except Exception as exc:
            pytest.fail(f"{key} does not run on the views:\n{sql}\n{exc}")
        if not rows:
            empty.append(key)
    assert empty == [], "queries that answer nothing on the simulated communities"


def test_render_clickhouse_sql_expands_the_community_filter() -> None:
    gen = dashboards()
    out = gen.render_clickhouse_sql(
        "SELECT 1 FROM t WHERE $__dateFilter(day) AND "
        "$__conditionalAll(community_id IN (${community:singlequote}), $community)"
    )
    assert "community_id IN (SELECT community_id FROM engagement.v_critical_mass)" in out
    assert "day >= toDate('1970-01-01') AND day <= toDate('2100-01-01')" in out


def _all_targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in data["panels"] for t in p.get("targets", [])]


def test_each_dashboard_target_has_a_ref_id() -> None:
    for data in dashboards().build().values():
        for panel in data["panels"]:
            refs = [t["refId"] for t in panel.get("targets", [])]
            assert len(refs) == len(set(refs)), panel["title"]
        assert all(t.get("refId") for t in _all_targets(data))


def test_pipeline_health_has_an_instance_variable_and_use_panels() -> None:
    data = dashboards().build()["pipeline-health"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["instance"]["datasource"]["uid"] == "prometheus"
    assert "label_values(up" in str(variables["instance"]["query"])
    raw = " ".join(t["expr"] for t in dashboards()._targets(data) if "expr" in t)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_max_fds", "python_gc_collections_total", "engage_build_info"):
        assert f'{name}{{job=~"engage-.*", instance=~"$instance"}}' in raw, name
    rows = [p["title"] for p in data["panels"] if p["type"] == "row"]
    assert {"Process (USE)", "ClickHouse server"} <= set(rows)


def test_clickhouse_server_panels_read_the_scraped_job() -> None:
    gen = dashboards()
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert gen.CLICKHOUSE_JOB in {job["job_name"] for job in prom["scrape_configs"]}
    server = [e for e in gen.promql_expressions() if "ClickHouse" in e]
    assert len(server) >= 5 and all(f'job="{gen.CLICKHOUSE_JOB}"' in e for e in server)


def test_build_info_names_this_version_and_commit() -> None:
    from importlib.metadata import version

    from prometheus_client import REGISTRY

    samples = [s for m in REGISTRY.collect() if m.name == "engage_build_info" for s in m.samples]
    assert len(samples) == 1 and samples[0].value == 1.0
    labels = samples[0].labels
    assert labels["version"] == version("engage")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    expected = head.stdout.strip() if head.returncode == 0 else "unknown"
    assert labels["commit"] == expected
    from streams import native

    assert labels["hot_path"] == ("compiled" if native.up_to_date() else "python")
