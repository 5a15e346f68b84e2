"""docs/metrics.md lists every metric of streams/metrics.py, with its type and labels, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from streams import metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ROW = re.compile(r"^\| `(engage_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", re.M)


def defined() -> dict[str, tuple[str, set[str]]]:
    """Exposed name -> (type, label names), from the collectors defined in streams/metrics.py."""
    found = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            family = next(iter(value.describe()))
            name = family.name + ("_total" if family.type == "counter" else "")
            found[name] = (family.type, set(value._labelnames))
    return found


def documented() -> dict[str, tuple[str, set[str]]]:
    rows = {}
    for name, kind, labels in ROW.findall(DOC.read_text()):
        assert name not in rows, f"{name} is listed twice in docs/metrics.md"
        rows[name] = (kind, {label.strip() for label in labels.split(",") if label.strip() not in ("", "—")})
    return rows


def test_metrics_module_defines_metrics() -> None:
    assert len(defined()) > 20


def test_every_metric_is_documented() -> None:
    missing = set(defined()) - set(documented())
    assert missing == set(), "add a row to docs/metrics.md for each"


def test_every_documented_metric_exists() -> None:
    extra = set(documented()) - set(defined())
    assert extra == set(), "docs/metrics.md lists metrics that streams/metrics.py does not define"


def test_documented_types_and_labels_match() -> None:
    doc = documented()
    for name, (kind, labels) in defined().items():
        if name in doc:
            assert doc[name] == (kind, labels), name


def test_worker_registers_no_faust_sensor() -> None:
    """The per-message sensor is what envelopes exist to avoid; the doc says why it is gone."""
    source = (DOC.parent.parent / "streams" / "worker" / "app.py").read_text()
    assert "setup_prometheus_sensors(" not in source
    assert "No Faust sensors" in DOC.read_text()
