"""Synthetic feeds for `engage demo` and `engage run`, drawn from the seeded simulator."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.tools.simulate import simulate


def demo_community(seed: int, target_events: int) -> Iterator[dict[str, Any]]:
    """One community of roughly `target_events` events over two weeks, oldest first."""
    members = max(50, int(target_events / 8))
    start = datetime(2026, 10, 1, tzinfo=UTC)
    events, _labels = simulate(
        seed=seed, communities=1, members_per_community=members, days=14, start=start,
        spam_profiles_per_community=3, history_days=60,
    )
    return events


def live_feed(seed: int, rate: float, batch: int = 200) -> Iterator[list[dict[str, Any]]]:
    """Endless batches at about `rate` events/s: simulated communities replayed as if happening now."""
    for round_ in itertools.count():
        start = datetime.now(UTC) - timedelta(days=1)
        events, _ = simulate(
            seed=seed + round_, communities=2, members_per_community=300, days=1, start=start,
            spam_profiles_per_community=2, history_days=30,
        )
        t0 = time.monotonic()
        sent = 0
        chunk: list[dict[str, Any]] = []
        for ev in events:
            ev["occurred_at"] = datetime.now(UTC).isoformat()
            chunk.append(ev)
            if len(chunk) >= batch:
                yield chunk
                sent += len(chunk)
                chunk = []
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        if chunk:
            yield chunk
