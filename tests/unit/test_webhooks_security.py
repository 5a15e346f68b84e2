"""Webhook verification: signatures, rotation, per-community secrets, replay windows, refusals."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from webhook_deliveries import NOW, OTHER_SECRET, SECRET, config, deliver, fixture, sign

from streams.webhooks import (
    BAD_SIGNATURE,
    INVALID,
    NO_SECRET,
    NOT_JSON,
    REASONS,
    STALE_TIMESTAMP,
    UNKNOWN_PLATFORM,
    Accepted,
    Handshake,
    Rejected,
    handle_webhook,
)

# One comment delivery per platform.
COMMENTS = {
    "slack": fixture("slack", "message"),
    "discourse": fixture("discourse", "post_created_reply"),
    "github": fixture("github", "issue_comment_created"),
    "bettermode": fixture("bettermode", "post_published"),
}
PLATFORMS = sorted(COMMENTS)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_correctly_signed_delivery_is_accepted(platform: str) -> None:
    assert isinstance(deliver(COMMENTS[platform]), Accepted)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_tampered_body_is_rejected(platform: str) -> None:
    f = COMMENTS[platform]
    body = f.body()
    headers = sign(platform, f.headers, body)
    tampered = body.replace(b"e", b"E", 1)
    assert tampered != body
    result = handle_webhook(platform, headers, tampered, NOW, config())
    assert result == Rejected(401, BAD_SIGNATURE)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_delivery_signed_with_another_secret_is_rejected(platform: str) -> None:
    result = deliver(COMMENTS[platform], secret="not-the-configured-secret")
    assert result == Rejected(401, BAD_SIGNATURE)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_delivery_without_signature_is_rejected(platform: str) -> None:
    f = COMMENTS[platform]
    result = handle_webhook(platform, dict(f.headers), f.body(), NOW, config())
    assert isinstance(result, Rejected)
    assert (result.status, result.reason) == (401, BAD_SIGNATURE)
    assert result.detail


@pytest.mark.parametrize(
    ("platform", "header"),
    [
        ("slack", "X-Slack-Signature"),
        ("discourse", "X-Discourse-Event-Signature"),
        ("github", "X-Hub-Signature-256"),
    ],
)
def test_a_signature_without_its_scheme_prefix_is_rejected(platform: str, header: str) -> None:
    f = COMMENTS[platform]
    body = f.body()
    headers = sign(platform, f.headers, body)
    headers[header] = headers[header].split("=", 1)[1]  # the bare hex
    assert handle_webhook(platform, headers, body, NOW, config()) == Rejected(401, BAD_SIGNATURE)


def test_github_sha1_signature_alone_is_not_accepted() -> None:
    f = COMMENTS["github"]
    body = f.body()
    headers = dict(f.headers)
    headers["X-Hub-Signature"] = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert handle_webhook("github", headers, body, NOW, config()) == Rejected(401, BAD_SIGNATURE)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_header_names_are_case_insensitive(platform: str) -> None:
    f = COMMENTS[platform]
    body = f.body()
    headers = sign(platform, f.headers, body)
    lower = handle_webhook(platform, {k.lower(): v for k, v in headers.items()}, body, NOW, config())
    upper = handle_webhook(platform, {k.upper(): v for k, v in headers.items()}, body, NOW, config())
    assert isinstance(lower, Accepted)
    assert lower == upper


# --- replay windows -------------------------------------------------------------


@pytest.mark.parametrize(("platform", "window"), [("slack", 300), ("bettermode", 900)])
def test_a_delivery_signed_just_inside_the_window_is_accepted(platform: str, window: int) -> None:
    assert isinstance(deliver(COMMENTS[platform], sent_at=NOW - window + 1), Accepted)
    assert isinstance(deliver(COMMENTS[platform], sent_at=NOW + window - 1), Accepted)


@pytest.mark.parametrize(("platform", "window"), [("slack", 300), ("bettermode", 900)])
def test_a_stale_delivery_is_rejected_with_its_age(platform: str, window: int) -> None:
    result = deliver(COMMENTS[platform], sent_at=NOW - window - 5)
    assert result == Rejected(401, STALE_TIMESTAMP)
    assert isinstance(result, Rejected)
    assert f"{window + 5}s old" in result.detail


@pytest.mark.parametrize("platform", ["slack", "bettermode"])
def test_a_delivery_from_the_future_is_rejected(platform: str) -> None:
    result = deliver(COMMENTS[platform], sent_at=NOW + 3600)
    assert isinstance(result, Rejected)
    assert result.reason == STALE_TIMESTAMP
    assert "3600s in the future" in result.detail


@pytest.mark.parametrize("platform", ["slack", "bettermode"])
def test_a_stale_delivery_with_a_bad_signature_reads_as_bad_signature(platform: str) -> None:
    result = deliver(COMMENTS[platform], sent_at=NOW - 3600, secret="wrong")
    assert result == Rejected(401, BAD_SIGNATURE)


@pytest.mark.parametrize(
    ("platform", "header"),
    [("slack", "X-Slack-Request-Timestamp"), ("bettermode", "X-Bettermode-Request-Timestamp")],
)
def test_the_timestamp_is_part_of_the_signature(platform: str, header: str) -> None:
    f = COMMENTS[platform]
    body = f.body()
    headers = sign(platform, f.headers, body)
    headers[header] = str(int(headers[header]) + 1)
    assert handle_webhook(platform, headers, body, NOW, config()) == Rejected(401, BAD_SIGNATURE)


@pytest.mark.parametrize(
    ("platform", "header"),
    [("slack", "X-Slack-Request-Timestamp"), ("bettermode", "X-Bettermode-Request-Timestamp")],
)
@pytest.mark.parametrize("value", [None, "", "yesterday", "-5"])
def test_a_missing_or_malformed_timestamp_is_a_bad_signature(
    platform: str, header: str, value: str | None
) -> None:
    f = COMMENTS[platform]
    body = f.body()
    headers = sign(platform, f.headers, body)
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    assert handle_webhook(platform, headers, body, NOW, config()) == Rejected(401, BAD_SIGNATURE)


def test_bettermode_accepts_a_timestamp_in_seconds_too() -> None:
    f = COMMENTS["bettermode"]
    body = f.body()
    ts = str(int(NOW - 10))
    headers = dict(f.headers)
    headers["X-Bettermode-Request-Timestamp"] = ts
    headers["X-Bettermode-Signature"] = hmac.new(
        SECRET.encode(), ts.encode() + b":" + body, "sha256"
    ).hexdigest()
    assert isinstance(handle_webhook("bettermode", headers, body, NOW, config()), Accepted)


@pytest.mark.parametrize("platform", ["discourse", "github"])
def test_platforms_without_a_signed_timestamp_accept_late_redeliveries(platform: str) -> None:
    # Nothing time-bound is signed: a redelivery days later is fine; the event id absorbs duplicates.
    first = deliver(COMMENTS[platform])
    later = deliver(COMMENTS[platform], now=NOW + 3 * 86400)
    assert isinstance(first, Accepted) and isinstance(later, Accepted)
    assert first.events[0].event_id == later.events[0].event_id


# --- rotation and per-community secrets ---------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_rotation_accepts_the_old_and_the_new_secret(platform: str) -> None:
    rotating = config(platforms={platform: [OTHER_SECRET, SECRET]})
    assert isinstance(deliver(COMMENTS[platform], rotating, secret=SECRET), Accepted)
    assert isinstance(deliver(COMMENTS[platform], rotating, secret=OTHER_SECRET), Accepted)
    assert deliver(COMMENTS[platform], rotating, secret="a-third-secret") == Rejected(401, BAD_SIGNATURE)


def test_after_rotation_the_retired_secret_is_refused() -> None:
    rotated = config(platforms={"github": [OTHER_SECRET]})
    assert deliver(COMMENTS["github"], rotated, secret=SECRET) == Rejected(401, BAD_SIGNATURE)


def test_a_community_with_its_own_secret_accepts_only_that_secret() -> None:
    cfg = config(communities={"discourse": {"forum.example.com": [OTHER_SECRET]}})
    f = COMMENTS["discourse"]
    assert deliver(f, cfg, secret=SECRET) == Rejected(401, BAD_SIGNATURE)
    assert isinstance(deliver(f, cfg, secret=OTHER_SECRET), Accepted)


def test_other_communities_keep_using_the_platform_secret() -> None:
    cfg = config(communities={"discourse": {"other-forum.example.org": [OTHER_SECRET]}})
    assert isinstance(deliver(COMMENTS["discourse"], cfg, secret=SECRET), Accepted)


@pytest.mark.parametrize(("platform", "community"), [("slack", "T123ABC456"), ("bettermode", "CAxOmI7I7t")])
def test_community_secrets_are_found_from_the_payload(platform: str, community: str) -> None:
    cfg = config(communities={platform: {community: [OTHER_SECRET]}})
    assert deliver(COMMENTS[platform], cfg, secret=SECRET) == Rejected(401, BAD_SIGNATURE)
    assert isinstance(deliver(COMMENTS[platform], cfg, secret=OTHER_SECRET), Accepted)


def test_github_owner_secret_covers_its_repositories_and_a_repository_secret_wins() -> None:
    f = COMMENTS["github"]  # Codertocat/Hello-World
    by_owner = config(communities={"github": {"Codertocat": [OTHER_SECRET]}})
    assert isinstance(deliver(f, by_owner, secret=OTHER_SECRET), Accepted)
    assert deliver(f, by_owner, secret=SECRET) == Rejected(401, BAD_SIGNATURE)
    both = config(
        communities={"github": {"Codertocat": [OTHER_SECRET], "Codertocat/Hello-World": ["repo-secret"]}}
    )
    assert isinstance(deliver(f, both, secret="repo-secret"), Accepted)
    assert deliver(f, both, secret=OTHER_SECRET) == Rejected(401, BAD_SIGNATURE)


def test_a_community_override_cannot_be_dodged_by_a_forged_community() -> None:
    # The community used to pick the secret is the one the events carry: claiming another
    # community to use the platform secret would produce events for that other community.
    cfg = config(communities={"bettermode": {"CAxOmI7I7t": [OTHER_SECRET]}})
    f = COMMENTS["bettermode"]
    forged = dict(f.payload, networkId="SomeOtherNet")
    body = json.dumps(forged).encode()
    result = handle_webhook("bettermode", sign("bettermode", f.headers, body, SECRET), body, NOW, cfg)
    assert isinstance(result, Accepted)
    assert all(e.community_id == "SomeOtherNet" for e in result.events)


# --- refusals ---------------------------------------------------------------------------


def test_an_unknown_platform_is_404() -> None:
    result = handle_webhook("myspace", {}, b"{}", NOW, config())
    assert result == Rejected(404, UNKNOWN_PLATFORM)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_platform_without_any_secret_is_refused_as_no_secret(platform: str) -> None:
    others = config(platforms={p: [SECRET] for p in PLATFORMS if p != platform})
    result = deliver(COMMENTS[platform], others)
    assert isinstance(result, Rejected)
    assert (result.status, result.reason) == (503, NO_SECRET)
    assert f"ENGAGE_WEBHOOK_SECRET_{platform.upper()}" in result.detail


def test_only_community_secrets_and_an_unknown_community_is_no_secret() -> None:
    cfg = config(platforms={}, communities={"slack": {"T999OTHER": [SECRET]}})
    result = deliver(COMMENTS["slack"], cfg)
    assert isinstance(result, Rejected) and result.reason == NO_SECRET


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    "body", [b"not json at all", b"<xml/>", b"[1, 2, 3]", b"\xff\xfe\x00", b"payload=%7Bbroken"]
)
def test_a_signed_body_that_is_not_a_json_object_is_415(platform: str, body: bytes) -> None:
    f = COMMENTS[platform]
    result = handle_webhook(platform, sign(platform, f.headers, body), body, NOW, config())
    assert result == Rejected(415, NOT_JSON)


def test_an_unsigned_non_json_body_is_a_bad_signature_not_415() -> None:
    result = handle_webhook("github", {"X-GitHub-Event": "ping"}, b"garbage", NOW, config())
    assert result == Rejected(401, BAD_SIGNATURE)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_handshakes_must_be_signed_too(platform: str) -> None:
    name = {
        "slack": "url_verification",
        "discourse": "ping",
        "github": "ping",
        "bettermode": "test_challenge",
    }[platform]
    f = fixture(platform, name)
    assert isinstance(deliver(f), Handshake)
    assert deliver(f, secret="forged") == Rejected(401, BAD_SIGNATURE)


def test_rejection_reasons_are_a_bounded_set() -> None:
    assert REASONS == {BAD_SIGNATURE, STALE_TIMESTAMP, NOT_JSON, INVALID, UNKNOWN_PLATFORM, NO_SECRET}
    with pytest.raises(ValueError, match="not one of"):
        Rejected(400, "something the metric label would explode on")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_rejection_details_never_show_the_secret(platform: str) -> None:
    for result in (
        deliver(COMMENTS[platform], secret="wrong"),
        deliver(COMMENTS[platform], config(platforms={p: [SECRET] for p in PLATFORMS if p != platform})),
    ):
        assert isinstance(result, Rejected)
        assert SECRET not in repr(result) and SECRET not in result.detail
