"""Observing a batch of values at once gives the histogram one observe() per value would."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram

from streams.metrics import observe_many


def _samples(h: Histogram) -> dict[str, float]:
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for m in h.collect()
        for s in m.samples
        if "created" not in s.name
    }


def test_observe_many_equals_observe_one_by_one_on_and_between_bucket_bounds() -> None:
    buckets = (0.1, 0.5, 1.0, 5.0)
    one, many = (Histogram(n, "x", buckets=buckets, registry=CollectorRegistry()) for n in ("a", "a"))
    rnd = random.Random(3)
    values = [*buckets, -1.0, 0.0, 7.5, *(rnd.uniform(0, 6) for _ in range(500))]
    for v in values:
        one.observe(max(0.0, v))
    observe_many(many, values)
    observe_many(many, [])
    a, b = _samples(one), _samples(many)
    assert a.keys() == b.keys()
    for key, value in a.items():  # counts exactly; the sum to float rounding (added in another order)
        assert b[key] == (value if "_sum" not in key else pytest.approx(value, rel=1e-12)), key
