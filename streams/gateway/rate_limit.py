"""Token buckets by key (an API token's name, a platform community): how many events may pass now.

A bucket holds up to `burst` events and refills at `rate` events per second; a request costing
n events passes when n are in the bucket, and otherwise learns how long until they will be.
Pure: the caller passes the clock. Buckets that have refilled completely are forgotten, so
memory follows the keys active in the last `burst / rate` seconds, not every key ever seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class _Bucket:
    level: float
    updated: float
    rate: float
    burst: float

    def full_at(self, now: float) -> bool:
        return self.level + max(0.0, now - self.updated) * self.rate >= self.burst


class RateLimiter:
    def __init__(self, sweep_above: int = 10_000) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self.sweep_above = sweep_above

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: str, rate: float, burst: float, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return burst
        return min(burst, bucket.level + max(0.0, now - bucket.updated) * rate)

    def take(self, key: str, cost: float, rate: float, burst: float, now: float) -> float:
        """Take `cost` events from `key`'s bucket: 0.0 when taken, else the seconds to wait (nothing taken).

        A cost above `burst` can never pass: the answer is `math.inf`.
        """
        if cost > burst:
            return math.inf
        level = self._level(key, rate, burst, now)
        if level < cost:
            return (cost - level) / rate
        self._buckets[key] = _Bucket(level - cost, now, rate, burst)
        if len(self._buckets) > self.sweep_above:
            self._sweep(now)
        return 0.0

    def wait_for_one(self, key: str, rate: float, burst: float, now: float) -> float:
        """Seconds until a single event could pass (0.0: now); takes nothing."""
        level = self._level(key, rate, burst, now)
        return 0.0 if level >= 1 else (1 - level) / rate

    def _sweep(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.full_at(now)]
        for k in full:
            del self._buckets[k]


def retry_after(wait_s: float) -> int:
    """The Retry-After header's whole seconds for a wait (at least 1)."""
    return max(1, math.ceil(wait_s))
