"""Discourse webhooks: posts, likes and new users to comments, likes and joins.

Verify: `X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256 of the body>`. No
timestamp is signed, so there is no replay window: duplicates are absorbed by the
event id, built from the object's own id and the event name
(`X-Discourse-Event-Id` changes on every retry and is not used). The body is JSON
even when the webhook's content type is set to form-urlencoded.
Community: the host of `X-Discourse-Instance` (`host/category_id` with channel
granularity, for posts and likes).

- `ping` -> handshake: 200.
- `post_created` (regular post, not in a private message) -> comment on `topic:<topic_id>`,
  target author the replied-to user.
- `topic_created` -> ignored: a new topic also fires `post_created` for its opening post
  (post_number 1), which carries the text and the author's admin/moderator flags; the
  topic payload has neither, so mapping both would count the opening post twice.
- `post_liked` -> like of `post:<post_id>` by `like.user`; occurred_at = request time
  (the payload carries no time).
- `user_created` -> join: invite when `invited_by` is set, else organic.
- `user_destroyed` -> forget `user.id` in the forum (docs/privacy.md).
Roles: admin -> owner, moderator -> moderator, negative user ids
(system, discobot) -> bot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from schemas.events import ActorRole, EventType, JoinSource
from streams.webhooks.adapter import Outcome
from streams.webhooks.canonical import Context, Draft
from streams.webhooks.config import Secret
from streams.webhooks.payload import (
    JsonObject,
    MappingError,
    ident,
    iso_time,
    obj,
    opt_ident,
    opt_int,
    opt_obj,
)
from streams.webhooks.results import Forget, Handshake, Ignored, Rejected
from streams.webhooks.signing import check_prefixed_hmac

SIGNATURE = "X-Discourse-Event-Signature"
INSTANCE = "x-discourse-instance"
REGULAR_POST = 1
PING_ANSWER = b'{"ok":true}'


def instance_host(headers: Mapping[str, str]) -> str | None:
    """`forum.example.com` from `X-Discourse-Instance: https://forum.example.com`."""
    raw = headers.get(INSTANCE, "").strip()
    if not raw:
        return None
    host = urlsplit(raw).netloc if "://" in raw else raw
    return host.lower().rstrip("/") or None


class DiscourseAdapter:
    def secret_scopes(self, payload: JsonObject, headers: Mapping[str, str]) -> Sequence[str]:
        host = instance_host(headers)
        return (host,) if host else ()

    def verify(
        self, headers: Mapping[str, str], body: bytes, secrets: Sequence[Secret], now: float
    ) -> Rejected | None:
        return check_prefixed_hmac(headers, SIGNATURE, "sha256=", secrets, body)

    def map(self, payload: JsonObject, headers: Mapping[str, str], ctx: Context) -> Outcome:
        name = headers.get("x-discourse-event", "")
        if name == "ping" or headers.get("x-discourse-event-type") == "ping":
            return Handshake(200, PING_ANSWER, "application/json")
        host = instance_host(headers)
        if host is None:
            raise MappingError(f"headers.{INSTANCE}", "required header is missing", missing=True)
        if name == "post_created":
            return _post(obj(payload, "post"), "post", host, ctx)
        if name == "topic_created":
            return Ignored("discourse topic_created is counted from post_created of the opening post")
        if name == "post_liked":
            like = obj(payload, "like")
            return _like(obj(like, "post", "like"), obj(like, "user", "like"), host, ctx)
        if name == "user_created":
            return _user(obj(payload, "user"), host, ctx)
        if name == "user_destroyed":
            member = ident(obj(payload, "user"), "id", "user")
            return Forget(host, ctx.member_ref(host, member), "discourse user_destroyed")
        return Ignored(f"discourse event {name!r} is not used")


def _role(user_id: str, flags: JsonObject) -> ActorRole:
    if user_id.startswith("-"):
        return ActorRole.BOT
    if flags.get("admin") is True:
        return ActorRole.OWNER
    if flags.get("moderator") is True:
        return ActorRole.MODERATOR
    return ActorRole.MEMBER


def _category(holder: JsonObject) -> str | None:
    category = opt_int(holder, "category_id")
    return str(category) if category is not None else None


def _post(post: JsonObject, path: str, host: str, ctx: Context) -> Outcome:
    if post.get("topic_archetype") == "private_message":
        return Ignored("discourse private messages are private and not used")
    post_type = opt_int(post, "post_type")
    if post_type is not None and post_type != REGULAR_POST:
        return Ignored(
            f"discourse post_type {post_type} (moderator action, small action, whisper) is not used"
        )
    member = ident(post, "user_id", path)
    topic = ident(post, "topic_id", path)
    opening = opt_int(post, "post_number") == 1  # a topic's opening post answers nothing
    reply_to = opt_obj(post, "reply_to_user")
    words = post.get("raw")
    return [
        Draft(
            key=f"{host}:post_created:{ident(post, 'id', path)}",
            type=EventType.COMMENT,
            base_community=host,
            community_id=ctx.community(host, _category(post)),
            member_id=member,
            occurred_at=iso_time(post, "created_at", path),
            actor_role=_role(member, post),
            target_id=None if opening else f"topic:{topic}",
            target_author_id=None if opening or reply_to is None else opt_ident(reply_to, "id"),
            text=words if isinstance(words, str) else None,
        )
    ]


def _like(post: JsonObject, user: JsonObject, host: str, ctx: Context) -> Outcome:
    if post.get("topic_archetype") == "private_message":
        return Ignored("discourse likes in private messages are not used")
    member = ident(user, "id", "like.user")
    post_id = ident(post, "id", "like.post")
    # A member likes a post at most once: post + member identifies the like across retries.
    return [
        Draft(
            key=f"{host}:post_liked:{post_id}:{ctx.member_ref(host, member)}",
            type=EventType.LIKE,
            base_community=host,
            community_id=ctx.community(host, _category(post)),
            member_id=member,
            occurred_at=ctx.now,
            actor_role=ActorRole.BOT if member.startswith("-") else ActorRole.MEMBER,
            target_id=f"post:{post_id}",
            target_author_id=opt_ident(post, "user_id"),
        )
    ]


def _user(user: JsonObject, host: str, ctx: Context) -> Outcome:
    member = ident(user, "id", "user")
    return [
        Draft(
            key=f"{host}:user_created:{ctx.member_ref(host, member)}",
            type=EventType.JOIN,
            base_community=host,
            community_id=host,  # a new user belongs to no category yet
            member_id=member,
            occurred_at=iso_time(user, "created_at", "user"),
            actor_role=_role(member, user),
            join_source=JoinSource.INVITE if user.get("invited_by") else JoinSource.ORGANIC,
        )
    ]
