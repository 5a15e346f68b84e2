"""Bettermode (formerly Tribe) webhooks: posts, replies, reactions and memberships.

Verify: `X-Bettermode-Signature: <hex HMAC-SHA256 of "{X-Bettermode-Request-Timestamp}:{body}">`,
timestamp within 15 minutes (Bettermode's own recommendation; the header is in
milliseconds, seconds are accepted too). Idempotency: `data.id` (unique per
event, kept on retries). Community: `networkId` (`networkId/spaceId` with channel
granularity when the event names a space).

- `type: TEST` -> handshake: `{"type":"TEST","status":"SUCCEEDED","data":{"challenge":…}}`.
- `post.published` (post or reply) -> comment; a reply targets `post:<repliedToId>`.
- `reaction.added` -> like of `post:<postId>`.
- `member.created` -> join: invite when the member came with an invitation, else organic.
- `space_membership.created` -> join: invite when someone else added the member, else organic.
Not used: `post.created` (fires before moderation, and again as `post.published` once
visible: subscribe to `post.published`), `member.verified`, updates and deletions.
Roles: actor `roleType` admin -> owner, moderator -> moderator.
The reaction payload is not shown in Bettermode's docs; its post id is read from
`data.object.postId`, `data.target.postId` or `data.object.post.id`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson

from schemas.events import ActorRole, EventType, JoinSource
from streams.webhooks.adapter import Outcome
from streams.webhooks.canonical import Context, Draft
from streams.webhooks.config import Secret
from streams.webhooks.payload import (
    JsonObject,
    MappingError,
    handshake_fields,
    iso_time,
    obj,
    opt_ident,
    opt_iso_time,
    opt_obj,
    opt_str,
    opt_text,
    text,
)
from streams.webhooks.results import Handshake, Ignored, Rejected
from streams.webhooks.signing import check_timestamped_hmac

REPLAY_WINDOW_SECONDS = 15 * 60
SIGNATURE = "X-Bettermode-Signature"
TIMESTAMP = "X-Bettermode-Request-Timestamp"
ROLES = {"admin": ActorRole.OWNER, "moderator": ActorRole.MODERATOR}
REACTION_EVENTS = frozenset({"reaction.added", "reaction.created"})
_ANCHOR = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["']([^"']*)["'][^>]*>.*?</a>""", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def html_to_text(markup: str) -> str:
    """Plain text of Bettermode's HTML content; a link becomes its URL, once."""
    return html.unescape(_TAG.sub(" ", _ANCHOR.sub(lambda m: f" {m.group(1)} ", markup)))


class BettermodeAdapter:
    def secret_scopes(self, payload: JsonObject, headers: Mapping[str, str]) -> Sequence[str]:
        network = opt_ident(payload, "networkId")
        return (network,) if network else ()

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[Secret], now: float) -> Rejected | None:
        return check_timestamped_hmac(
            headers,
            body,
            secrets,
            now,
            timestamp_header=TIMESTAMP,
            signature_header=SIGNATURE,
            prefix="",
            version=b"",
            window_seconds=REPLAY_WINDOW_SECONDS,
        )

    def map(self, payload: JsonObject, headers: Mapping[str, str], ctx: Context) -> Outcome:
        kind = payload.get("type")
        if kind == "TEST":
            with handshake_fields():
                challenge = text(obj(payload, "data"), "challenge", "data")
            answer = {"type": "TEST", "status": "SUCCEEDED", "data": {"challenge": challenge}}
            return Handshake(200, orjson.dumps(answer), "application/json")
        if kind != "SUBSCRIPTION":
            return Ignored(f"bettermode payload type {kind!r} is not used")
        network = text(payload, "networkId")
        data = obj(payload, "data")
        name = opt_str(data, "name", "data")
        key = f"{network}:{text(data, 'id', 'data')}"
        if name == "post.published":
            return _post(data, network, key, ctx)
        if name in REACTION_EVENTS:
            return _reaction(data, network, key, ctx)
        if name == "member.created":
            return _member(data, network, key, ctx)
        if name == "space_membership.created":
            return _space_membership(data, network, key, ctx)
        return Ignored(f"bettermode event {name!r} is not used")


def _time(data: JsonObject, holder: JsonObject | None, holder_path: str) -> datetime:
    """The object's own `createdAt`, else the event's `data.time`."""
    own = opt_iso_time(holder, "createdAt", holder_path) if holder is not None else None
    return own or iso_time(data, "time", "data")


def _actor(data: JsonObject) -> tuple[str | None, ActorRole]:
    actor = opt_obj(data, "actor")
    if actor is None:
        return None, ActorRole.MEMBER
    role_type = actor.get("roleType")
    role = ROLES.get(role_type, ActorRole.MEMBER) if isinstance(role_type, str) else ActorRole.MEMBER
    return opt_ident(actor, "id"), role


def _space(*holders: JsonObject | None) -> str | None:
    for holder in holders:
        space = opt_ident(holder, "spaceId") if holder is not None else None
        if space:
            return space
    return None


def _post_text(post: JsonObject) -> str | None:
    """Title and content from `mappingFields` (JSON-encoded HTML strings), else `shortContent`."""
    fields = post.get("mappingFields")
    parts: list[str] = []
    if isinstance(fields, list):
        for field in fields:
            if not isinstance(field, dict) or field.get("key") not in ("title", "content"):
                continue
            value = field.get("value")
            if isinstance(value, str):
                try:
                    decoded = orjson.loads(value)
                except orjson.JSONDecodeError:
                    decoded = value
                if isinstance(decoded, str):
                    parts.append(html_to_text(decoded))
    if not parts:
        short = opt_text(post, "shortContent")
        if short:
            parts.append(html_to_text(short))
    return "\n".join(parts) or None


def _post(data: JsonObject, network: str, key: str, ctx: Context) -> Outcome:
    post = obj(data, "object", "data")
    actor_id, actor_role = _actor(data)
    member = opt_ident(post, "createdById") or opt_ident(post, "ownerId") or actor_id
    if member is None:
        raise MappingError("data.object.createdById", "required id (string or integer) is missing", missing=True)
    replied_to = opt_ident(post, "repliedToId")
    ancestors = post.get("repliedToIds")
    if replied_to is None and isinstance(ancestors, list) and ancestors and isinstance(ancestors[-1], str):
        replied_to = ancestors[-1] or None
    is_reply = post.get("isReply") is True and replied_to is not None
    return [
        Draft(
            key=key,
            type=EventType.COMMENT,
            base_community=network,
            community_id=ctx.community(network, _space(post, opt_obj(data, "target"))),
            member_id=member,
            occurred_at=_time(data, post, "data.object"),
            actor_role=actor_role if member == actor_id else ActorRole.MEMBER,
            target_id=f"post:{replied_to}" if is_reply else None,
            text=_post_text(post),
        )
    ]


def _reaction(data: JsonObject, network: str, key: str, ctx: Context) -> Outcome:
    reaction = opt_obj(data, "object")
    target = opt_obj(data, "target")
    nested_post = opt_obj(reaction, "post") if reaction else None
    post_id = (
        (opt_ident(reaction, "postId") if reaction else None)
        or (opt_ident(target, "postId") if target else None)
        or (opt_ident(nested_post, "id") if nested_post else None)
    )
    if post_id is None:
        raise MappingError("data.object.postId", "the reacted-to post id is missing", missing=True)
    actor_id, actor_role = _actor(data)
    member = actor_id or (opt_ident(reaction, "participantId") if reaction else None)
    if member is None:
        raise MappingError("data.actor.id", "required id (string or integer) is missing", missing=True)
    author = opt_ident(nested_post, "createdById") if nested_post else None
    return [
        Draft(
            key=key,
            type=EventType.LIKE,
            base_community=network,
            community_id=ctx.community(network, _space(reaction, target, nested_post)),
            member_id=member,
            occurred_at=iso_time(data, "time", "data"),
            actor_role=actor_role,
            target_id=f"post:{post_id}",
            target_author_id=author,
        )
    ]


def _member(data: JsonObject, network: str, key: str, ctx: Context) -> Outcome:
    member = obj(data, "object", "data")
    invited = opt_obj(data, "with")
    by_invitation = (invited is not None and invited.get("hasInvitation") is True) or bool(
        opt_ident(member, "invitationLinkId")
    )
    return [
        Draft(
            key=key,
            type=EventType.JOIN,
            base_community=network,
            community_id=network,  # a new member belongs to no space yet
            member_id=opt_ident(member, "id") or _required_member(data),
            occurred_at=_time(data, member, "data.object"),
            join_source=JoinSource.INVITE if by_invitation else JoinSource.ORGANIC,
        )
    ]


def _required_member(data: JsonObject) -> str:
    target = opt_obj(data, "target")
    member = opt_ident(target, "memberId") if target else None
    if member is None:
        raise MappingError("data.object.id", "required id (string or integer) is missing", missing=True)
    return member


def _space_membership(data: JsonObject, network: str, key: str, ctx: Context) -> Outcome:
    membership = opt_obj(data, "object")
    target = opt_obj(data, "target")
    member = (opt_ident(membership, "memberId") if membership else None) or (
        opt_ident(target, "memberId") if target else None
    )
    if member is None:
        raise MappingError("data.object.memberId", "required id (string or integer) is missing", missing=True)
    actor_id, _ = _actor(data)
    added_by_someone_else = actor_id is not None and actor_id != member
    return [
        Draft(
            key=key,
            type=EventType.JOIN,
            base_community=network,
            community_id=ctx.community(network, _space(membership, target)),
            member_id=member,
            occurred_at=_time(data, membership, "data.object"),
            join_source=JoinSource.INVITE if added_by_someone_else else JoinSource.ORGANIC,
        )
    ]
