"""Dashboards and alerts against real servers: a real Prometheus scrapes the gateway and the worker
while a simulated community (with planted spam) flows, and runs every PromQL expression of the
dashboards and alerts; every ClickHouse panel runs on the embedded store with the same data."""

from __future__ import annotations

import importlib.util
import math
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from kafka import KafkaProducer

from streams.config import TOPIC_EVENTS, Settings
from streams.embedded_sql import query
from streams.tools.commands import chunks, post_events
from streams.tools.local_stack import free_port
from streams.tools.simulate import simulate

from .helpers import api_token
from .prometheus_server import GATEWAY_JOB, WORKER_JOB, PrometheusServer, alert_rules

pytestmark = pytest.mark.usefixtures("stack")

ROOT = Path(__file__).resolve().parents[2]
SEED = 7331
ID_FIELDS = ("event_id", "community_id", "member_id", "target_id", "target_author_id")
# Dashboard queries allowed to return nothing in a healthy run, each with why. Keep it empty if
# at all possible: pre-initialise the series in streams/metrics.py instead.
MAY_BE_EMPTY: dict[str, str] = {
    f"histogram_quantile({q}, sum by (le) (rate(engage_erasure_duration_seconds_bucket[5m])))": (
        "no erasure is requested while this community flows (tests/e2e/test_forget_e2e.py times them)"
    )
    for q in ("0.5", "0.9", "0.99")
} | {
    "sum(rate(engage_gateway_unmapped_total[5m]))": (
        "this community's deliveries all map; tests/e2e/test_webhooks_e2e.py counts an unmappable one"
    ),
}
# The "ClickHouse server" row reads the server's own endpoint (job `clickhouse`): the e2e stack
# stores in embedded chDB, which has none. tests/unit/test_compose.py checks the compose wiring.
NO_CLICKHOUSE_SERVER = "the e2e stack has no ClickHouse server to scrape (embedded chDB)"

T = TypeVar("T")


def dashboards() -> ModuleType:
    spec = importlib.util.spec_from_file_location("engage_dashboards", ROOT / "deploy" / "grafana" / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alert_expressions() -> list[str]:
    return [str(rule["expr"]).strip() for rule in alert_rules()]


def dashboard_expressions() -> list[str]:
    alerts = set(alert_expressions())
    return [e for e in dashboards().promql_expressions() if e not in alerts]


def clickhouse_server_expressions() -> list[str]:
    return [e for e in dashboard_expressions() if f'job="{dashboards().CLICKHOUSE_JOB}"' in e]


def retry(attempt: Callable[[], T], done: Callable[[T], bool], timeout_s: float) -> T:
    """Call `attempt` until `done` says its answer will do or time runs out; the last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = attempt()
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(1.0)


def scraped(prometheus: PrometheusServer, job: str) -> float | None:
    """`up` of the job's target once Prometheus has scraped it successfully (or after 30 s)."""
    return retry(lambda: prometheus.scalar(f'up{{job="{job}"}}'), lambda up: up == 1.0, 30)


def renamed(event: dict[str, Any], prefix: str, new_prefix: str) -> dict[str, Any]:
    for key in ID_FIELDS:
        if key in event:
            event[key] = new_prefix + event[key].removeprefix(prefix)
    return event


def has_number(samples: list[dict[str, Any]]) -> bool:
    """At least one sample Grafana can plot: a histogram_quantile() without observations is NaN."""
    return any(not math.isnan(float(sample["value"][1])) for sample in samples)


def stored_events(settings: Settings, communities: list[str]) -> int:
    ids = ",".join(f"'{c}'" for c in communities)
    sql = f"SELECT uniqExact(event_id) FROM engagement.events WHERE community_id IN ({ids})"
    return int(query(settings, sql, "TSV"))


@pytest.fixture(scope="module")
def prometheus(
    stack: object, e2e_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    server = PrometheusServer(
        tmp_path_factory.mktemp("prometheus"), free_port(), e2e_settings.gateway_url, e2e_settings.worker_url
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def community(e2e_settings: Settings, prometheus: PrometheusServer) -> dict[str, Any]:
    """A few thousand simulated events with planted spam through the gateway, one garbage message
    straight to the events topic (DLQ) and one forged webhook (bad_signature), all stored."""
    # A sample of both targets from before the traffic, or rate() sees no increase, only its end.
    for job in (GATEWAY_JOB, WORKER_JOB):
        up = scraped(prometheus, job)
        assert up == 1.0, f"Prometheus has not scraped {job} yet:\n{prometheus.log_tail()}"
    events, labels = simulate(
        seed=SEED,
        communities=2,
        members_per_community=150,
        days=7,
        start=datetime(2026, 9, 1, tzinfo=UTC),
        spam_profiles_per_community=8,
        history_days=45,
        source="prometheus-e2e",
    )
    # Ids of our own, so events posted earlier in the session cannot be taken for duplicates.
    ours = f"prom-{uuid.uuid4().hex[:8]}-"
    feed = [renamed(e, f"sim{SEED}-", ours) for e in events]
    communities = sorted({e["community_id"] for e in feed})
    token = api_token(e2e_settings)
    accepted = sum(post_events(e2e_settings.gateway_url, batch, token) for batch in chunks(feed, 1000))
    assert accepted == len(feed)

    producer = KafkaProducer(bootstrap_servers=e2e_settings.bootstrap, acks="all")
    producer.send(TOPIC_EVENTS, b"\x00\xff not an event " + uuid.uuid4().hex.encode(), key=b"prometheus-e2e")
    producer.flush()
    producer.close()

    forged = orjson.dumps({"zen": "Keep it logically awesome.", "repository": {"full_name": "e2e/forged"}})
    r = httpx.post(
        f"{e2e_settings.gateway_url}/webhooks/github",
        content=forged,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + "0" * 64,
        },
        timeout=10,
    )
    assert r.status_code == 401 and r.json()["error"] == "bad_signature", r.text

    got = retry(lambda: stored_events(e2e_settings, communities), lambda n: n >= len(feed), 90)
    assert got == len(feed), f"{got} of {len(feed)} simulated events reached ClickHouse"
    assert any(label["label"] == "spam" for label in labels)
    return {"events": len(feed), "communities": communities}


def test_prometheus_scrapes_gateway_and_worker(prometheus: PrometheusServer) -> None:
    for job in (GATEWAY_JOB, WORKER_JOB):
        up = scraped(prometheus, job)
        assert up == 1.0, f"Prometheus cannot scrape {job} (up={up}):\n{prometheus.log_tail()}"


def test_prometheus_loaded_and_evaluates_every_alert(prometheus: PrometheusServer) -> None:
    expected = {rule["alert"] for rule in alert_rules()}
    rules = retry(prometheus.alerting_rules, lambda rs: all(r.get("health") == "ok" for r in rs) and len(rs) > 0, 30)
    assert {r["name"] for r in rules} == expected, prometheus.log_tail()
    broken = {r["name"]: r.get("lastError") or r.get("health") for r in rules if r.get("health") != "ok"}
    assert broken == {}, "alert rules Prometheus could not evaluate"


def test_prometheus_loaded_the_webhook_deadlines(prometheus: PrometheusServer) -> None:
    """The recording rules EngageWebhookLatencyNearDeadline compares with: one per platform."""
    got = retry(lambda: prometheus.vector("engage:webhook_deadline_seconds"), lambda v: len(v) >= 5, 30)
    deadlines = {s["metric"]["platform"]: float(s["value"][1]) for s in got}
    assert deadlines == {"slack": 3.0, "github": 10.0, "discourse": 3.0, "bettermode": 3.0, "canonical": 3.0}
    # The gateway's p99 per platform, as the alert computes it, runs on the scraped histogram.
    answer = prometheus.query(
        "histogram_quantile(0.99, sum by (platform, le) (rate(engage_gateway_request_duration_seconds_bucket[5m])))"
        " > on (platform) 0.8 * engage:webhook_deadline_seconds"
    )
    assert answer["status"] == "success", answer


def test_prometheus_sees_the_simulated_community(prometheus: PrometheusServer, community: dict[str, Any]) -> None:
    n = community["events"]
    checks = {
        'sum(engage_events_produced_total{platform="canonical"})': n,
        f'sum(engage_events_processed_total{{job="{WORKER_JOB}"}})': n,
        'sum(engage_sink_rows_total{table="events"})': n,
        'sum(engage_events_dlq_total{reason="not_utf8"})': 1,
        'sum(engage_events_rejected_total{platform="github", reason="bad_signature"})': 1,
        "sum(engage_spam_flags_total)": 1,  # the planted spam is caught
        # Prometheus saw them happen, not only their end state: even a first increment shows in
        # rate(), since these series exist at 0 from the start (streams/metrics.py pre-initialises
        # them). Spam flag reasons are not pre-initialised, so their rate is not asserted.
        "sum(rate(engage_events_produced_total[5m]))": 1e-9,
        "sum(rate(engage_events_processed_total[5m]))": 1e-9,
        'sum(rate(engage_events_rejected_total{reason="bad_signature"}[5m]))': 1e-9,
        'sum(rate(engage_events_dlq_total{reason="not_utf8"}[5m]))': 1e-9,
        "sum(rate(engage_tier_transitions_total[5m]))": 1e-9,
    }
    values = retry(
        lambda: {expr: prometheus.scalar(expr) for expr in checks},
        lambda got: all((got[e] or 0) >= least for e, least in checks.items()),
        30,
    )
    short = {expr: (values[expr], least) for expr, least in checks.items() if (values[expr] or 0) < least}
    assert not short, "below what was sent (scraped, at least):\n" + "\n".join(f"{e}: {v}" for e, v in short.items())


def test_every_promql_expression_parses(prometheus: PrometheusServer) -> None:
    expressions = dashboards().promql_expressions()
    assert set(alert_expressions()) <= set(expressions)
    errors = {}
    for expr in expressions:
        answer = prometheus.query(expr)
        if answer["status"] != "success":
            errors[expr] = f"{answer.get('errorType')}: {answer.get('error')}"
    assert not errors, "expressions Prometheus refuses:\n" + "\n".join(f"{e!r}: {why}" for e, why in errors.items())


def test_every_dashboard_query_returns_data(prometheus: PrometheusServer, community: dict[str, Any]) -> None:
    expressions = dashboard_expressions()
    assert len(expressions) > 30
    stale = set(MAY_BE_EMPTY) - set(expressions)
    assert stale == set(), "MAY_BE_EMPTY names queries the dashboards no longer have"
    allowed = {**MAY_BE_EMPTY, **dict.fromkeys(clickhouse_server_expressions(), NO_CLICKHOUSE_SERVER)}
    assert len(allowed) - len(MAY_BE_EMPTY) >= 5

    def empty() -> list[str]:
        return [e for e in expressions if e not in allowed and not has_number(prometheus.vector(e))]

    # rate() over the dashboards' 5m window needs two samples of each series: a few 1 s scrapes.
    still_empty = retry(empty, lambda found: not found, 60)
    assert not still_empty, "dashboard queries with no data (or only NaN) after a simulated community flowed:\n" + (
        "\n".join(still_empty)
    )


def test_every_clickhouse_panel_returns_rows(e2e_settings: Settings, community: dict[str, Any]) -> None:
    gen = dashboards()
    panels = gen.clickhouse_panel_sql()
    assert len(panels) >= 10
    # The same panels with only the simulated communities selected, as Grafana renders them: rows
    # from other tests of the session cannot hide a panel that is empty on these.
    ours = ",".join(f"'{c}'" for c in community["communities"])
    selected = [
        gen.render_clickhouse_sql(sql.replace("${community:singlequote}", ours))
        for sql in gen.clickhouse_panel_sql(raw=True)
    ]

    def rows(sql: str) -> list[dict[str, Any]]:
        out = query(e2e_settings, sql, "JSONEachRow")
        return [orjson.loads(line) for line in out.splitlines() if line.strip()]

    def empty() -> list[str]:
        return [sql for sql in panels + selected if not rows(sql)]

    # The derived tables of the last batch are stored just after its events: allow a moment.
    still_empty = retry(empty, lambda found: not found, 30)
    assert not still_empty, "ClickHouse panels with no rows on the simulated communities:\n" + "\n\n".join(still_empty)
    # A stat panel's count() answers one row even with no data: its numbers must be ours.
    summary = rows(
        gen.render_clickhouse_sql(gen.CLICKHOUSE_SQL["critical_mass_summary"].replace("${community:singlequote}", ours))
    )
    assert summary[0]["Communities"] == len(community["communities"]), summary
    variable = {r["community_id"] for r in rows(gen.render_clickhouse_sql(gen.CLICKHOUSE_SQL["community_variable"]))}
    assert set(community["communities"]) <= variable, "the community variable misses the simulated ones"
