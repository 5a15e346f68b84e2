"""Webhook mapping details: handshakes, communities, pseudonyms, roles, ids and invalid payloads."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re

import pytest
from webhook_deliveries import NOW, Fixture, config, deliver, fixture

from schemas.events import ActorRole, CanonicalEvent, EventType
from streams.webhooks import INVALID, Accepted, Handshake, Ignored, Rejected

PSEUDO_KEY = "pseudonymize-key-for-tests"


def events(f: Fixture, **kwargs: object) -> list[CanonicalEvent]:
    result = deliver(f, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, Accepted), result
    return result.events


def variant(f: Fixture, edit: object) -> Fixture:
    """A copy of `f` whose payload `edit(payload)` changed in place."""
    payload = copy.deepcopy(f.payload)
    edit(payload)  # type: ignore[operator]
    return Fixture(f.platform, f.name, dict(f.headers), payload, f.expect, f.encoding)


# --- handshakes ---------------------------------------------------------------------------


def test_slack_url_verification_echoes_the_challenge_as_plain_text() -> None:
    f = fixture("slack", "url_verification")
    result = deliver(f)
    assert result == Handshake(200, f.payload["challenge"].encode(), "text/plain")


def test_bettermode_test_answers_type_status_and_the_same_challenge() -> None:
    f = fixture("bettermode", "test_challenge")
    result = deliver(f)
    assert isinstance(result, Handshake)
    assert (result.status, result.content_type) == (200, "application/json")
    assert json.loads(result.body) == {
        "type": "TEST",
        "status": "SUCCEEDED",
        "data": {"challenge": f.payload["data"]["challenge"]},
    }


@pytest.mark.parametrize("platform", ["github", "discourse"])
def test_pings_get_a_200(platform: str) -> None:
    result = deliver(fixture(platform, "ping"))
    assert isinstance(result, Handshake) and result.status == 200


def unmapped(result: object) -> str | None:
    """The field path an ignored delivery lacked (None: not ignored as unmapped)."""
    assert isinstance(result, Ignored), result
    assert result.reason
    return result.unmapped


def test_a_challenge_without_its_value_is_invalid() -> None:
    f = variant(fixture("slack", "url_verification"), lambda p: p.pop("challenge"))
    assert deliver(f) == Rejected(422, INVALID, "challenge")


# --- communities ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "name", "platform_level", "channel_level"),
    [
        ("slack", "message", "T123ABC456", "T123ABC456/C123ABC456"),
        ("slack", "reaction_added", "T123ABC456", "T123ABC456/C123ABC456"),
        ("slack", "member_joined_channel", "T123ABC456", "T123ABC456/C123ABC456"),
        ("discourse", "post_created_reply", "forum.example.com", "forum.example.com/5"),
        ("discourse", "post_liked", "forum.example.com", "forum.example.com/5"),
        ("discourse", "user_created", "forum.example.com", "forum.example.com"),
        ("github", "issue_comment_created", "Codertocat/Hello-World", "Codertocat/Hello-World"),
        ("bettermode", "post_published", "CAxOmI7I7t", "CAxOmI7I7t/kBMLH6nwC78J"),
        ("bettermode", "space_membership_added_by_admin", "CAxOmI7I7t", "CAxOmI7I7t/ky4X0Ci6q4M5"),
        ("bettermode", "member_created", "CAxOmI7I7t", "CAxOmI7I7t"),
    ],
)
def test_community_granularity(platform: str, name: str, platform_level: str, channel_level: str) -> None:
    f = fixture(platform, name)
    assert {e.community_id for e in events(f)} == {platform_level}
    assert {e.community_id for e in events(f, cfg=config(community_granularity="channel"))} == {channel_level}


def test_discourse_community_is_the_instance_host_whatever_its_spelling() -> None:
    f = fixture("discourse", "post_created_reply")
    for instance in ("https://Forum.Example.com", "https://forum.example.com/", "forum.example.com"):
        headers = dict(f.headers, **{"X-Discourse-Instance": instance})
        result = deliver(f, headers=headers)
        assert isinstance(result, Accepted)
        assert result.events[0].community_id == "forum.example.com"


def test_discourse_without_instance_header_is_ignored_as_unmapped() -> None:
    f = fixture("discourse", "post_created_reply")
    headers = {k: v for k, v in f.headers.items() if k != "X-Discourse-Instance"}
    assert unmapped(deliver(f, headers=headers)) == "headers.x-discourse-instance"


# --- pseudonymization ------------------------------------------------------------------------


def _pseudonym(platform: str, community: str, member: str, key: str = PSEUDO_KEY) -> str:
    digest = hmac.new(key.encode(), f"{platform}:{community}:{member}".encode(), hashlib.sha256).hexdigest()
    return "p_" + digest[:32]


def test_pseudonyms_follow_the_documented_formula() -> None:
    cfg = config(pseudonymize_key=PSEUDO_KEY)
    (like,) = events(fixture("slack", "reaction_added"), cfg=cfg)
    assert like.member_id == _pseudonym("slack", "T123ABC456", "U222222222")
    assert like.target_author_id == _pseudonym("slack", "T123ABC456", "U123ABC456")
    assert re.fullmatch(r"p_[0-9a-f]{32}", like.member_id)


def test_pseudonyms_are_deterministic_and_link_authors_to_their_likes() -> None:
    cfg = config(pseudonymize_key=PSEUDO_KEY)
    (message,) = events(fixture("slack", "message"), cfg=cfg)
    (like,) = events(fixture("slack", "reaction_added"), cfg=cfg)
    (again,) = events(fixture("slack", "message"), cfg=cfg, now=NOW + 10)
    assert message.member_id == again.member_id
    assert like.target_author_id == message.member_id  # U123ABC456 wrote it, U222222222 liked it
    assert like.member_id != message.member_id


def test_pseudonyms_do_not_change_with_channel_granularity() -> None:
    plain = config(pseudonymize_key=PSEUDO_KEY)
    fine = config(pseudonymize_key=PSEUDO_KEY, community_granularity="channel")
    (a,) = events(fixture("slack", "message"), cfg=plain)
    (b,) = events(fixture("slack", "message"), cfg=fine)
    assert a.community_id != b.community_id
    assert a.member_id == b.member_id


def test_another_key_gives_other_pseudonyms() -> None:
    (a,) = events(fixture("github", "star_created"), cfg=config(pseudonymize_key=PSEUDO_KEY))
    (b,) = events(fixture("github", "star_created"), cfg=config(pseudonymize_key="another-key"))
    assert a.member_id != b.member_id
    assert a.event_id == b.event_id


RAW_IDS = {
    ("slack", "thread_reply"): ["U222222222", "U123ABC456"],
    ("slack", "share_with_message"): ["U043H11ES4V"],
    ("discourse", "post_created_reply"): ["12", "7"],
    ("discourse", "post_liked"): ["42", "12"],
    ("discourse", "user_created"): ["88"],
    ("github", "issue_comment_created"): ["5550123", "21031067"],
    ("github", "organization_member_added"): ["39652351"],
    ("bettermode", "post_published"): ["olQ88vTqYp"],
    ("bettermode", "member_created"): ["zENywtyv1G"],
}


@pytest.mark.parametrize(("platform", "name"), sorted(RAW_IDS))
def test_pseudonymization_hides_member_ids(platform: str, name: str) -> None:
    raw = RAW_IDS[(platform, name)]
    f = fixture(platform, name)
    plain = events(f)
    hidden = events(f, cfg=config(pseudonymize_key=PSEUDO_KEY))
    shown = {e.member_id for e in plain} | {e.target_author_id for e in plain if e.target_author_id}
    assert set(raw) <= shown  # without a key the raw ids are there...
    for event in hidden:  # ...with one they are nowhere: not as ids, not inside the event id
        assert event.member_id.startswith("p_")
        assert event.target_author_id is None or event.target_author_id.startswith("p_")
        for value in (event.member_id, event.target_author_id, event.event_id, event.target_id):
            assert value is None or not any(
                re.search(rf"(?<![0-9A-Za-z]){re.escape(r)}(?![0-9A-Za-z])", value) for r in raw
            )


# --- idempotency ------------------------------------------------------------------------------


def test_discourse_retries_with_a_new_event_id_header_keep_the_event_id() -> None:
    f = fixture("discourse", "post_liked")
    first = events(f)
    retry = events(f, headers=dict(f.headers, **{"X-Discourse-Event-Id": "99999"}), now=NOW + 300)
    assert [e.event_id for e in first] == [e.event_id for e in retry]
    assert first[0].occurred_at != retry[0].occurred_at  # likes carry no time: request time


def test_github_event_id_is_the_delivery_guid() -> None:
    f = fixture("github", "star_created")
    other = dict(f.headers, **{"X-GitHub-Delivery": "00000000-1111-2222-3333-444444444444"})
    assert events(f)[0].event_id == "github:" + f.headers["X-GitHub-Delivery"]
    assert events(f, headers=other)[0].event_id == "github:00000000-1111-2222-3333-444444444444"


def test_github_without_delivery_header_is_ignored_as_unmapped() -> None:
    f = fixture("github", "star_created")
    headers = {k: v for k, v in f.headers.items() if k != "X-GitHub-Delivery"}
    assert unmapped(deliver(f, headers=headers)) == "headers.x-github-delivery"


def test_an_overlong_event_id_is_hashed_stably() -> None:
    f = fixture("discourse", "user_created")
    headers = dict(
        f.headers, **{"X-Discourse-Instance": "https://" + "very-long-subdomain." * 8 + "example.com"}
    )
    a = events(f, headers=headers)[0].event_id
    b = events(f, headers=headers, now=NOW + 5)[0].event_id
    assert a == b
    assert a.startswith("discourse:h:") and len(a) <= 128


# --- mapping details --------------------------------------------------------------------------


def test_slack_thread_parent_is_not_a_reply() -> None:
    # The first message of a thread carries thread_ts == ts: it answers nothing.
    f = variant(fixture("slack", "message"), lambda p: p["event"].update(thread_ts=p["event"]["ts"]))
    (event,) = events(f)
    assert event.target_id is None


def test_slack_thread_broadcast_is_a_reply_comment() -> None:
    f = variant(fixture("slack", "thread_reply"), lambda p: p["event"].update(subtype="thread_broadcast"))
    (event,) = events(f)
    assert event.type is EventType.COMMENT
    assert event.target_id == "C123ABC456:1355517523.000005"


def test_slack_message_from_an_app_with_a_bot_user_is_a_bot_comment() -> None:
    f = variant(fixture("slack", "message"), lambda p: p["event"].update(bot_id="B0APP00001"))
    (event,) = events(f)
    assert (event.member_id, event.actor_role) == ("U123ABC456", ActorRole.BOT)


def test_slack_message_without_any_author_is_ignored_as_unmapped() -> None:
    f = variant(fixture("slack", "message"), lambda p: p["event"].pop("user"))
    assert unmapped(deliver(f)) == "event.user"


def test_slack_event_callback_without_event_is_ignored_as_unmapped() -> None:
    f = variant(fixture("slack", "message"), lambda p: p.pop("event"))
    assert unmapped(deliver(f)) == "event"


def test_slack_message_whose_channel_is_out_of_shape_is_invalid() -> None:
    # there but not an id: malformed, not a shape to ignore
    f = variant(fixture("slack", "bot_message"), lambda p: p["event"].update(channel=["C123ABC456"]))
    assert deliver(f) == Rejected(422, INVALID, "event.channel")


def test_slack_bot_message_naming_a_channel_is_a_bot_comment_and_without_one_is_unmapped() -> None:
    (event,) = events(fixture("slack", "bot_message"))
    assert (event.type, event.actor_role, event.member_id) == (EventType.COMMENT, ActorRole.BOT, "BB12033")
    assert unmapped(deliver(fixture("slack", "bot_message_without_channel"))) == "event.channel"


def test_a_kind_we_do_not_use_is_ignored_without_an_unmapped_field() -> None:
    assert unmapped(deliver(fixture("slack", "message_changed"))) is None


def test_slack_unknown_payload_type_is_ignored() -> None:
    f = variant(fixture("slack", "message"), lambda p: p.update(type="app_rate_limited"))
    assert isinstance(deliver(f), Ignored)


def test_discourse_system_user_posts_as_a_bot() -> None:
    f = variant(fixture("discourse", "post_created_reply"), lambda p: p["post"].update(user_id=-1))
    (event,) = events(f)
    assert event.actor_role is ActorRole.BOT


def test_discourse_moderator_post_is_a_moderator_comment() -> None:
    f = variant(fixture("discourse", "post_created_reply"), lambda p: p["post"].update(moderator=True))
    (event,) = events(f)
    assert event.actor_role is ActorRole.MODERATOR


def test_discourse_post_with_a_bad_date_is_invalid() -> None:
    f = variant(
        fixture("discourse", "post_created_reply"), lambda p: p["post"].update(created_at="last tuesday")
    )
    assert deliver(f) == Rejected(422, INVALID, "post.created_at")


def test_discourse_like_without_user_is_ignored_as_unmapped() -> None:
    f = variant(fixture("discourse", "post_liked"), lambda p: p["like"].pop("user"))
    assert unmapped(deliver(f)) == "like.user"


def test_github_bot_comment_is_a_bot_comment() -> None:
    f = variant(fixture("github", "issue_comment_created"), lambda p: p["comment"]["user"].update(type="Bot"))
    (event,) = events(f)
    assert event.actor_role is ActorRole.BOT


def test_github_owner_starring_their_own_repository_is_the_owner() -> None:
    f = variant(fixture("github", "star_created"), lambda p: p.update(sender=p["repository"]["owner"]))
    (event,) = events(f)
    assert event.actor_role is ActorRole.OWNER


def test_github_star_without_starred_at_happened_at_request_time() -> None:
    f = variant(fixture("github", "star_created"), lambda p: p.update(starred_at=None))
    (event,) = events(f)
    assert event.occurred_at.timestamp() == NOW


def test_github_comment_without_user_is_ignored_as_unmapped() -> None:
    f = variant(fixture("github", "issue_comment_created"), lambda p: p["comment"].pop("user"))
    assert unmapped(deliver(f)) == "comment.user"


def test_bettermode_reaction_without_a_post_is_ignored_as_unmapped() -> None:
    def strip(p: dict) -> None:  # type: ignore[type-arg]
        p["data"]["object"].pop("postId")
        p["data"]["target"].pop("postId")

    f = variant(fixture("bettermode", "reaction_added"), strip)
    assert unmapped(deliver(f)) == "data.object.postId"


def test_bettermode_html_link_counts_once_and_markup_is_not_text() -> None:
    (event,) = events(fixture("bettermode", "post_published"))
    assert event.link_count == 1
    same_words = variant(
        fixture("bettermode", "post_published"),
        lambda p: p["data"]["object"].update(
            mappingFields=[
                {"key": "title", "value": json.dumps("How do you onboard new members?")},
                {
                    "key": "content",
                    "value": json.dumps(
                        "We wrote a short welcome guide, it is on https://example.com/welcome "
                        "and I would love your feedback on the first steps"
                    ),
                },
            ]
        ),
    )
    assert events(same_words)[0].content_fingerprint == event.content_fingerprint


def test_a_field_the_schema_refuses_is_invalid_with_its_path() -> None:
    f = variant(fixture("github", "star_created"), lambda p: p["sender"].update(id="x" * 300))
    assert deliver(f) == Rejected(422, INVALID, "member_id")


def test_a_comment_without_text_has_no_fingerprint() -> None:
    f = variant(fixture("slack", "message"), lambda p: p["event"].update(text="   ", subtype="file_share"))
    (event,) = events(f)
    assert event.type is EventType.COMMENT
    assert event.content_fingerprint is None and event.link_count == 0
