"""Platforms' deletion webhooks become forget requests (docs/privacy.md), verified like any delivery."""

from __future__ import annotations

import copy

from webhook_deliveries import Fixture, config, deliver, fixture

from streams.webhooks import Forget, Ignored, Rejected

PSEUDO_KEY = "pseudonymize-key-for-tests"


def github_removed() -> Fixture:
    f = fixture("github", "organization_member_added")
    payload = copy.deepcopy(f.payload)
    payload["action"] = "member_removed"
    return Fixture("github", "organization_member_removed", dict(f.headers), payload, {})


def discourse_destroyed() -> Fixture:
    f = fixture("discourse", "user_created")
    headers = {**f.headers, "X-Discourse-Event": "user_destroyed"}
    return Fixture("discourse", "user_destroyed", headers, copy.deepcopy(f.payload), {})


def slack_user_change(deleted: bool) -> Fixture:
    payload = {
        "token": "x",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": "Ev0001",
        "event_time": 1_700_000_000,
        "event": {"type": "user_change", "user": {"id": "U0042", "team_id": "T0001", "deleted": deleted}},
    }
    return Fixture("slack", "user_change", {"Content-Type": "application/json"}, payload, {})


def test_discourse_user_destroyed_forgets_the_user_in_the_forum() -> None:
    f = discourse_destroyed()
    result = deliver(f)
    assert result == Forget("forum.example.com", str(f.payload["user"]["id"]), "discourse user_destroyed")


def test_slack_deleted_user_is_forgotten_and_other_profile_changes_ignored() -> None:
    result = deliver(slack_user_change(True))
    assert result == Forget("T0001", "U0042", "slack user deleted")
    assert isinstance(deliver(slack_user_change(False)), Ignored)


def test_github_member_removed_forgets_the_member_in_the_organization() -> None:
    f = github_removed()
    result = deliver(f)
    assert isinstance(result, Forget)
    assert result.community_id == f.payload["organization"]["login"]
    assert result.member_id == str(f.payload["membership"]["user"]["id"])


def test_forget_carries_the_pseudonym_when_pseudonymization_is_on() -> None:
    cfg = config(pseudonymize_key=PSEUDO_KEY)
    result = deliver(slack_user_change(True), cfg)
    assert isinstance(result, Forget)
    assert result.member_id == cfg.member_ref("slack", "T0001", "U0042") and "U0042" not in result.member_id


def test_an_unsigned_deletion_is_refused() -> None:
    result = deliver(slack_user_change(True), secret="not-the-secret")
    assert isinstance(result, Rejected) and result.status == 401
