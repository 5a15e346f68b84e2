"""The gateway's access checks without HTTP: who (token, scope, community), how much (buckets), when."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams import metrics
from streams.api_tokens import EVENTS_WRITE, MODERATION_WRITE, ApiToken, TokenStore, create_token
from streams.config import Settings
from streams.gateway.access import Access, Refusal

NOW = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, data_dir=str(tmp_path), webhook_rate_per_community=1.0, webhook_burst_per_community=3)


def access_for(settings: Settings, mono: Clock | None = None) -> Access:
    store = TokenStore(settings.tokens_path, check_every_s=0.0)
    return Access(settings, store, wall_clock=lambda: NOW, clock=mono or Clock(0.0))


def refusal_count(endpoint: str, reason: str) -> float:
    value = metrics.GATEWAY_AUTH_REFUSED.labels(endpoint, reason)._value.get()
    return float(value)


def test_missing_unknown_and_wrong_scope(settings: Settings) -> None:
    token = create_token(settings.tokens_path, "mod", [MODERATION_WRITE])
    access = access_for(settings)
    before = refusal_count("events", "missing_token")
    missing = access.authenticate(None, EVENTS_WRITE, "events", "canonical")
    assert isinstance(missing, Refusal) and missing.status == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert refusal_count("events", "missing_token") == before + 1
    unknown = access.authenticate("Bearer engage_" + "x" * 43, EVENTS_WRITE, "events", "canonical")
    assert isinstance(unknown, Refusal) and unknown.status == 401
    wrong = access.authenticate(f"Bearer {token}", EVENTS_WRITE, "events", "canonical")
    assert isinstance(wrong, Refusal) and wrong.status == 403 and "events:write" in wrong.message
    right = access.authenticate(f"Bearer {token}", MODERATION_WRITE, "moderation", "moderation")
    assert isinstance(right, ApiToken) and right.name == "mod"


def test_a_community_token_names_every_event_it_may_not_write(settings: Settings) -> None:
    create_token(settings.tokens_path, "acme", [EVENTS_WRITE], communities=["acme"])
    access = access_for(settings)
    token = access.store.current().named("acme")
    assert token is not None
    assert access.communities(token, ["acme", "acme"], "events", "canonical", single=False) is None
    refusal = access.communities(token, ["acme", "globex", "acme", "initech"], "events", "canonical", single=False)
    assert refusal is not None and refusal.status == 403
    assert [e.path for e in refusal.errors] == ["[1].community_id", "[3].community_id"]
    one = access.communities(token, ["globex"], "events", "canonical", single=True)
    assert one is not None and [e.path for e in one.errors] == ["community_id"]
    assert "globex" not in one.message  # the paths say which; the message repeats no id


def test_event_times_out_of_bounds_are_named_with_how_far_off(settings: Settings) -> None:
    access = access_for(settings)
    times = [NOW - 3600, datetime(2099, 1, 1, tzinfo=UTC).timestamp(), datetime(1, 1, 1, tzinfo=UTC).timestamp()]
    refusal = access.event_times(times, "occurred_at", "canonical", single=False)
    assert refusal is not None and refusal.status == 422
    assert [(e.path, e.kind) for e in refusal.errors] == [
        ("[1].occurred_at", "future"),
        ("[2].occurred_at", "before_floor"),
    ]
    assert "years" in refusal.errors[0].message
    assert access.event_times([NOW + 299], "occurred_at", "canonical", single=True) is None


def test_a_token_with_its_own_limit_gets_429_with_retry_after(settings: Settings) -> None:
    create_token(settings.tokens_path, "slow", [EVENTS_WRITE], rate=10.0, burst=20)
    mono = Clock(0.0)
    access = access_for(settings, mono)
    token = access.store.current().named("slow")
    assert token is not None
    assert access.token_budget(token, 20, "canonical") is None
    refusal = access.token_budget(token, 15, "canonical")
    assert refusal is not None and refusal.status == 429 and refusal.headers["Retry-After"] == "2"
    assert access.token_exhausted(token, "canonical") is not None  # refused before reading a body
    mono.now = 1.5
    assert access.token_budget(token, 15, "canonical") is None
    too_big = access.token_budget(token, 21, "canonical")
    assert too_big is not None and "split it" in too_big.message


def test_default_token_limits_come_from_settings(settings: Settings) -> None:
    create_token(settings.tokens_path, "default", [EVENTS_WRITE])
    access = access_for(settings)
    token = access.store.current().named("default")
    assert token is not None
    assert access.token_budget(token, settings.api_burst_per_token, "canonical") is None
    assert access.token_budget(token, 1, "canonical") is not None


def test_platform_communities_have_their_own_buckets(settings: Settings) -> None:
    mono = Clock(0.0)
    access = access_for(settings, mono)
    assert access.community_budget("slack", ["T1", "T1", "T1"]) is None
    limited = access.community_budget("slack", ["T1"])
    assert limited is not None and limited.status == 429 and limited.headers["Retry-After"] == "1"
    assert access.community_budget("slack", ["T2"]) is None  # another workspace is unaffected
    assert access.community_budget("github", ["T1"]) is None  # same id, other platform
    mono.now = 1.0
    assert access.community_budget("slack", ["T1"]) is None
