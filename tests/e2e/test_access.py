"""Who may write, how much and when, on the real stack: tokens, scopes, communities, rate limits,
event-time bounds, the moderator recorded from the token, and no token in any log or metric."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from streams.api_tokens import revoke_token
from streams.config import Settings
from streams.tools.local_stack import LocalStack

from .helpers import api_token, auth, new_token, rows, scalar, wait_for

pytestmark = pytest.mark.usefixtures("stack")
ISSUED: list[str] = []  # every token this module made: none may show up in a log or a metric


def issue(settings: Settings, name: str, scopes: list[str], **kw: Any) -> tuple[str, str]:
    """A new token (and its unique name) the running gateway already knows."""
    unique = f"{name}-{uuid.uuid4().hex[:6]}"
    token = new_token(settings, unique, scopes, **kw)
    ISSUED.append(token)
    return token, unique


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def event(community: str, member: str = "m-1", kind: str = "like", **extra: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "event_id": f"acc-{uuid.uuid4().hex}",
        "type": kind,
        "community_id": community,
        "member_id": member,
        "occurred_at": now_iso(-timedelta(minutes=5)),
        "source": "test",
    }
    if kind == "join":
        e["join_source"] = "invite"
    if kind in ("like", "share"):
        e.update(target_id="post-1", target_author_id="m-author")
    e.update(extra)
    return e


def post(settings: Settings, path: str, body: Any, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{settings.gateway_url}{path}", json=body, headers=headers, timeout=10)


def stored(settings: Settings, event_id: str) -> int:
    return scalar(settings, f"SELECT count() FROM engagement.events WHERE event_id = '{event_id}'")


def gateway_metric(settings: Settings, name: str, **labels: str) -> float:
    text = httpx.get(f"{settings.gateway_url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_stored(settings: Settings, event_id: str) -> None:
    wait_for(lambda: stored(settings, event_id) == 1, 60, f"event {event_id}")


def test_no_token_is_401_and_nothing_is_produced(e2e_settings: Settings) -> None:
    community = f"acc-{uuid.uuid4().hex[:8]}"
    refused = [event(community), event(community), event(community)]
    produced = gateway_metric(e2e_settings, "engage_events_produced_total", platform="canonical")
    missing = gateway_metric(e2e_settings, "engage_gateway_auth_refusals_total", reason="missing_token")
    for token in (None, "engage_" + "A" * 43, "not-even-a-token"):
        r = post(e2e_settings, "/v1/events", refused[0] if token is None else refused[1:], token)
        assert r.status_code == 401, r.text
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = httpx.post(f"{e2e_settings.gateway_url}/v1/events", json=refused[0], headers={"Authorization": "Basic x"})
    assert r.status_code == 401
    assert gateway_metric(e2e_settings, "engage_events_produced_total", platform="canonical") == produced
    assert gateway_metric(e2e_settings, "engage_gateway_auth_refusals_total", reason="missing_token") == missing + 2
    # A valid token: 202 and stored. Same community, so the same partition, after the refused ones.
    good = event(community)
    r = post(e2e_settings, "/v1/events", good, api_token(e2e_settings))
    assert r.status_code == 202 and r.json() == {"accepted": 1}
    wait_stored(e2e_settings, good["event_id"])
    assert scalar(e2e_settings, f"SELECT count() FROM engagement.events WHERE community_id = '{community}'") == 1


def test_wrong_scope_is_403(e2e_settings: Settings) -> None:
    moderation_only, _ = issue(e2e_settings, "mod-only", ["moderation:write"])
    reader, _ = issue(e2e_settings, "reader", ["sql:read"])
    ev = event(f"acc-{uuid.uuid4().hex[:8]}")
    r = post(e2e_settings, "/v1/events", ev, moderation_only)
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"
    assert "events:write" in r.json()["message"]
    r = post(e2e_settings, "/v1/moderation", {"community_id": "c", "member_id": "m"}, reader)
    assert r.status_code == 403
    assert gateway_metric(e2e_settings, "engage_gateway_auth_refusals_total", reason="wrong_scope") >= 2


def test_a_community_token_cannot_write_another_community(e2e_settings: Settings) -> None:
    ours, theirs = f"acc-own-{uuid.uuid4().hex[:6]}", f"acc-other-{uuid.uuid4().hex[:6]}"
    # through the CLI: its last line is the token
    name = f"acme-{uuid.uuid4().hex[:6]}"
    out = subprocess.run(
        [sys.executable, "-m", "streams.cli", "token", "create", "--name", name, "--scope", "events:write",
         "--community", ours, "--data-dir", e2e_settings.data_dir],
        capture_output=True, text=True, check=True,
    ).stdout
    token = out.strip().splitlines()[-1]
    ISSUED.append(token)
    wait_for(lambda: post(e2e_settings, "/v1/events", [], token).status_code == 202, 5, "the CLI's token")

    mixed = [event(ours), event(theirs), event(ours)]
    r = post(e2e_settings, "/v1/events", mixed, token)
    assert r.status_code == 403, r.text
    assert [e["path"] for e in r.json()["errors"]] == ["[1].community_id"]
    r = post(e2e_settings, "/v1/events", event(theirs), token)
    assert r.status_code == 403 and [e["path"] for e in r.json()["errors"]] == ["community_id"]
    good = event(ours)
    assert post(e2e_settings, "/v1/events", good, token).status_code == 202
    wait_stored(e2e_settings, good["event_id"])
    # nothing of the refused array reached ClickHouse, not even its events for our community
    for e in mixed:
        assert stored(e2e_settings, e["event_id"]) == 0
    assert scalar(e2e_settings, f"SELECT count() FROM engagement.events WHERE community_id = '{theirs}'") == 0


def test_tokens_are_created_and_revoked_on_a_running_gateway_within_5s(e2e_settings: Settings) -> None:
    started = time.monotonic()
    token, name = issue(e2e_settings, "short-lived", ["events:write"])  # new_token waits at most 5 s
    assert time.monotonic() - started < 5.5
    assert revoke_token(e2e_settings.tokens_path, name)
    revoked = time.monotonic()
    wait_for(lambda: post(e2e_settings, "/v1/events", [], token).status_code == 401, 5, "the revoked token refused")
    assert time.monotonic() - revoked < 5.5


def _tiers(settings: Settings, community: str) -> dict[str, str]:
    return {
        r["member_id"]: r["tier"]
        for r in rows(
            settings,
            "SELECT member_id, tier FROM engagement.v_member_current "
            f"WHERE community_id = '{community}' AND actor_role = 'member'",
        )
    }


def test_the_2099_like_is_refused_and_the_tiers_stay(e2e_settings: Settings) -> None:
    community = f"acc-clock-{uuid.uuid4().hex[:6]}"
    token = api_token(e2e_settings)
    members = [f"m-{i}" for i in range(6)]
    setup = []
    for i, m in enumerate(members):
        setup.append(event(community, m, "join", occurred_at=now_iso(-timedelta(hours=3))))
        # m-0 writes most: the ambassador; the five others are creators
        for j in range(5 if i == 0 else 2):
            setup.append(
                event(community, m, "comment", occurred_at=now_iso(-timedelta(hours=2, minutes=j)),
                      content_fingerprint=int(uuid.uuid4().int % 2**63), link_count=0)
            )
    assert post(e2e_settings, "/v1/events", setup, token).status_code == 202
    wait_for(lambda: len(_tiers(e2e_settings, community)) == 6, 60, "six members scored")
    before = _tiers(e2e_settings, community)
    assert sorted(before.values()) == ["ambassador"] + ["creator"] * 5, before

    future = event(community, "m-1", "like", occurred_at="2099-01-01T00:00:00Z")
    r = post(e2e_settings, "/v1/events", future, token)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["path"] == "occurred_at" and error["kind"] == "future"
    assert "ahead of the clock" in error["message"] and "years" in error["message"]
    ancient = event(community, "m-1", "like", occurred_at="0001-01-01T00:00:00Z")
    r = post(e2e_settings, "/v1/events", [event(community), ancient], token)
    assert r.status_code == 422 and [e["path"] for e in r.json()["errors"]] == ["[1].occurred_at"]
    # a little ahead (a platform's clock a minute fast) is fine
    marker = event(community, "m-marker", "join", occurred_at=now_iso(timedelta(minutes=1)))
    assert post(e2e_settings, "/v1/events", marker, token).status_code == 202
    wait_stored(e2e_settings, marker["event_id"])
    wait_for(lambda: "m-marker" in _tiers(e2e_settings, community), 30, "the marker scored")
    after = _tiers(e2e_settings, community)
    assert {m: after[m] for m in members} == before
    assert stored(e2e_settings, future["event_id"]) == 0 and stored(e2e_settings, ancient["event_id"]) == 0


def test_a_flood_beyond_the_limit_gets_429_and_what_was_accepted_is_stored(e2e_settings: Settings) -> None:
    community = f"acc-flood-{uuid.uuid4().hex[:6]}"
    token, _ = issue(e2e_settings, "flood", ["events:write"], rate=20.0, burst=50)
    limited_before = gateway_metric(e2e_settings, "engage_gateway_rate_limited_total", limit="token")
    accepted: list[str] = []
    refused: list[str] = []
    retry_after: set[str] = set()
    with httpx.Client(timeout=10) as client:
        for _ in range(20):
            batch = [event(community, f"m-{uuid.uuid4().hex[:6]}") for _ in range(10)]
            r = client.post(f"{e2e_settings.gateway_url}/v1/events", json=batch, headers=auth(e2e_settings, token))
            ids = [e["event_id"] for e in batch]
            if r.status_code == 202:
                accepted += ids
            else:
                assert r.status_code == 429, r.text
                retry_after.add(r.headers["Retry-After"])
                refused += ids
    assert 50 <= len(accepted) < 200 and refused, (len(accepted), len(refused))
    assert all(int(v) >= 1 for v in retry_after)
    assert gateway_metric(e2e_settings, "engage_gateway_rate_limited_total", limit="token") > limited_before
    count = f"SELECT uniqExact(event_id) FROM engagement.events WHERE community_id = '{community}'"
    wait_for(lambda: scalar(e2e_settings, count) == len(accepted), 60, "every accepted event stored")
    ids = ",".join(f"'{i}'" for i in refused)
    assert scalar(e2e_settings, f"SELECT count() FROM engagement.events WHERE event_id IN ({ids})") == 0


def test_a_decision_records_the_token_name_as_moderator(e2e_settings: Settings) -> None:
    community = f"acc-mod-{uuid.uuid4().hex[:6]}"
    token, name = issue(e2e_settings, "mod-bea", ["moderation:write"], communities=[community])
    decision = {"community_id": community, "member_id": "m-1", "action": "clear", "decided_at": now_iso()}
    r = post(e2e_settings, "/v1/moderation", {**decision, "moderator": "someone-else"}, token)
    assert r.status_code == 422 and [e["path"] for e in r.json()["errors"]] == ["moderator"]
    r = post(e2e_settings, "/v1/moderation", {**decision, "community_id": "acc-not-mine"}, token)
    assert r.status_code == 403
    r = post(e2e_settings, "/v1/moderation", {**decision, "decided_at": "2099-01-01T00:00:00Z"}, token)
    assert r.status_code == 422 and [e["path"] for e in r.json()["errors"]] == ["decided_at"]
    r = post(e2e_settings, "/v1/moderation", decision, token)
    assert r.status_code == 202, r.text
    sql = f"SELECT moderator FROM engagement.moderation FINAL WHERE community_id = '{community}'"
    wait_for(lambda: rows(e2e_settings, sql) != [], 60, "the decision stored")
    assert rows(e2e_settings, sql) == [{"moderator": name}]


def test_no_token_is_in_any_log_or_metric(e2e_settings: Settings, stack: LocalStack) -> None:
    """Last in this module: every token it used, refused or not, has been through the gateway."""
    tokens = [api_token(e2e_settings), *ISSUED]
    assert len(tokens) >= 5
    logs = list(stack.log_dir.glob("*.log"))
    assert logs
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    text += httpx.get(f"{e2e_settings.gateway_url}/metrics", timeout=5).text
    text += httpx.get(f"{e2e_settings.worker_url}/metrics", timeout=5).text
    for token in tokens:
        assert token not in text
        assert token[len("engage_") :] not in text
    # and the tokens file holds digests only
    raw = e2e_settings.tokens_path.read_text()
    assert not any(token in raw for token in tokens)
