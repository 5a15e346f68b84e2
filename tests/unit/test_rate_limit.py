"""Token buckets: a burst passes, then the sustained rate; the wait is said; idle buckets are forgotten."""

from __future__ import annotations

import math

from streams.gateway.rate_limit import RateLimiter, retry_after


def test_a_burst_passes_then_the_rate_holds() -> None:
    limiter = RateLimiter()
    assert limiter.take("t", 10, rate=2.0, burst=10, now=0.0) == 0.0
    wait = limiter.take("t", 1, rate=2.0, burst=10, now=0.0)
    assert wait == 0.5  # one event refills in 1/rate seconds
    assert limiter.take("t", 1, rate=2.0, burst=10, now=0.5) == 0.0
    assert limiter.take("t", 4, rate=2.0, burst=10, now=1.0) == 1.5  # has 1, needs 4: 3 more at 2/s
    assert limiter.take("t", 4, rate=2.0, burst=10, now=2.5) == 0.0


def test_a_refused_request_takes_nothing() -> None:
    limiter = RateLimiter()
    limiter.take("t", 8, rate=1.0, burst=10, now=0.0)
    assert limiter.take("t", 5, rate=1.0, burst=10, now=0.0) > 0
    assert limiter.take("t", 2, rate=1.0, burst=10, now=0.0) == 0.0  # the 2 left are still there


def test_buckets_are_per_key_and_never_above_burst() -> None:
    limiter = RateLimiter()
    limiter.take("a", 10, rate=1.0, burst=10, now=0.0)
    assert limiter.take("b", 10, rate=1.0, burst=10, now=0.0) == 0.0
    # a long idle time refills to the burst, not beyond
    assert limiter.take("a", 10, rate=1.0, burst=10, now=1000.0) == 0.0
    assert limiter.take("a", 1, rate=1.0, burst=10, now=1000.0) == 1.0


def test_more_than_a_burst_can_never_pass() -> None:
    assert math.isinf(RateLimiter().take("t", 11, rate=100.0, burst=10, now=0.0))


def test_wait_for_one_takes_nothing() -> None:
    limiter = RateLimiter()
    assert limiter.wait_for_one("t", rate=1.0, burst=2, now=0.0) == 0.0
    limiter.take("t", 2, rate=1.0, burst=2, now=0.0)
    assert limiter.wait_for_one("t", rate=1.0, burst=2, now=0.0) == 1.0
    assert limiter.wait_for_one("t", rate=1.0, burst=2, now=0.0) == 1.0


def test_full_buckets_are_forgotten_so_memory_follows_active_keys() -> None:
    limiter = RateLimiter(sweep_above=100)
    for i in range(100):
        limiter.take(f"k{i}", 1, rate=1.0, burst=5, now=0.0)
    assert len(limiter) == 100
    limiter.take("slow", 5, rate=0.001, burst=5, now=10.0)  # the 101st: a sweep at t=10
    assert len(limiter) == 1  # the others refilled long ago; "slow" is still empty
    assert limiter.take("slow", 1, rate=0.001, burst=5, now=10.0) > 0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after(0.01) == 1
    assert retry_after(1.0) == 1
    assert retry_after(1.2) == 2
