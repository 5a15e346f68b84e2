"""Slack Events API: `event_callback` envelopes to joins, likes, shares and comments.

Verify: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{body}">`,
timestamp within 5 minutes. Idempotency: the envelope's `event_id` (Slack keeps it
on its retries). Community: `team_id` (`team_id/channel` with channel granularity).

- `url_verification` -> handshake: the challenge echoed as text/plain.
- `reaction_added` on a message -> like of `channel:ts`, target author `item_user`.
- `message` (plain, thread reply, `thread_broadcast`, `file_share`, `me_message`) -> comment;
  a thread reply targets `channel:thread_ts`, target author `parent_user_id`.
- `message` sharing/forwarding a message (attachment `is_share` / `is_msg_unfurl`) -> share
  of `channel_id:ts`, target author `author_id`; plus a comment when the sharer wrote text.
- `message` from an app (`bot_message`, or `bot_id` set) -> comment with actor_role bot; one
  that names no channel (Slack's own `bot_message` example has none) cannot be mapped: ignored.
- `member_joined_channel` -> join: invite when `inviter` is set, else organic.
- `user_change` with `user.deleted: true` (a deactivated account) -> forget the user in the
  workspace (docs/privacy.md); other profile changes are not used.
Not used: edits/deletions and other message subtypes (`message_changed`, `message_deleted`,
`channel_join` - `member_joined_channel` carries the join - ...), direct messages
(`channel_type` im/mpim: private), reactions to files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from schemas.events import ActorRole, EventType, JoinSource
from streams.webhooks.adapter import Outcome
from streams.webhooks.canonical import Context, Draft
from streams.webhooks.config import Secret
from streams.webhooks.payload import (
    JsonObject,
    MappingError,
    epoch_seconds,
    handshake_fields,
    ident,
    obj,
    opt_ident,
    opt_int,
    opt_str,
    opt_text,
    text,
)
from streams.webhooks.results import Forget, Handshake, Ignored, Rejected
from streams.webhooks.signing import check_timestamped_hmac

REPLAY_WINDOW_SECONDS = 5 * 60
SIGNATURE = "X-Slack-Signature"
TIMESTAMP = "X-Slack-Request-Timestamp"
COMMENT_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "me_message", "bot_message"})
PRIVATE_CHANNEL_TYPES = frozenset({"im", "mpim"})


class SlackAdapter:
    def secret_scopes(self, payload: JsonObject, headers: Mapping[str, str]) -> Sequence[str]:
        team = opt_ident(payload, "team_id")
        return (team,) if team else ()

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[Secret], now: float) -> Rejected | None:
        return check_timestamped_hmac(
            headers,
            body,
            secrets,
            now,
            timestamp_header=TIMESTAMP,
            signature_header=SIGNATURE,
            prefix="v0=",
            version=b"v0:",
            window_seconds=REPLAY_WINDOW_SECONDS,
        )

    def map(self, payload: JsonObject, headers: Mapping[str, str], ctx: Context) -> Outcome:
        kind = payload.get("type")
        if kind == "url_verification":
            with handshake_fields():
                return Handshake(200, text(payload, "challenge").encode(), "text/plain")
        if kind != "event_callback":
            return Ignored(f"slack payload type {kind!r} is not used")
        team = ident(payload, "team_id")
        event_id = text(payload, "event_id")
        event = obj(payload, "event")
        event_type = event.get("type")
        if event_type == "reaction_added":
            return _reaction(payload, event, team, event_id, ctx)
        if event_type == "message":
            return _message(event, team, event_id, ctx)
        if event_type == "member_joined_channel":
            return _joined(payload, event, team, event_id, ctx)
        if event_type == "user_change":
            user = obj(event, "user", "event")
            if user.get("deleted") is not True:
                return Ignored("slack user_change without deleted is not used")
            return Forget(team, ctx.member_ref(team, ident(user, "id", "event.user")), "slack user deleted")
        return Ignored(f"slack event type {event_type!r} is not used")


def _event_time(payload: JsonObject, event: JsonObject) -> datetime:
    """The event's own `event_ts` when present, else the envelope's `event_time`."""
    event_ts = opt_text(event, "event_ts")
    if event_ts is not None:
        return epoch_seconds(event_ts, "event.event_ts")
    seconds = opt_int(payload, "event_time")
    if seconds is None:
        raise MappingError("event_time", "required Unix time is missing", missing=True)
    return epoch_seconds(str(seconds), "event_time")


def _reaction(payload: JsonObject, event: JsonObject, team: str, event_id: str, ctx: Context) -> Outcome:
    item = obj(event, "item", "event")
    if item.get("type") != "message":
        return Ignored(f"slack reactions to a {item.get('type')!r} are not used")
    channel = ident(item, "channel", "event.item")
    return [
        Draft(
            key=f"{team}:{event_id}",
            type=EventType.LIKE,
            base_community=team,
            community_id=ctx.community(team, channel),
            member_id=ident(event, "user", "event"),
            occurred_at=_event_time(payload, event),
            target_id=f"{channel}:{text(item, 'ts', 'event.item')}",
            target_author_id=opt_ident(event, "item_user"),
        )
    ]


def _message(event: JsonObject, team: str, event_id: str, ctx: Context) -> Outcome:
    subtype = opt_str(event, "subtype", "event")
    if subtype not in COMMENT_SUBTYPES:
        return Ignored(f"slack message subtype {subtype!r} is not used")
    if opt_str(event, "channel_type", "event") in PRIVATE_CHANNEL_TYPES:
        return Ignored("slack direct messages are private and not used")
    if event.get("hidden") is True:
        return Ignored("slack hidden messages are not used")
    bot_id = opt_ident(event, "bot_id")
    is_bot = subtype == "bot_message" or bot_id is not None
    member = opt_ident(event, "user") or (bot_id if is_bot else None)
    if member is None:
        raise MappingError("event.user", "required id (string or integer) is missing", missing=True)
    channel = ident(event, "channel", "event")
    ts = text(event, "ts", "event")
    key = f"{team}:{event_id}"
    base = Draft(
        key=key,
        type=EventType.COMMENT,
        base_community=team,
        community_id=ctx.community(team, channel),
        member_id=member,
        occurred_at=epoch_seconds(ts, "event.ts"),
        actor_role=ActorRole.BOT if is_bot else ActorRole.MEMBER,
    )
    drafts = [
        replace(
            base,
            key=key if i == 0 else f"{key}:share{i}",
            type=EventType.SHARE,
            target_id=f"{shared_channel}:{shared_ts}",
            target_author_id=author,
        )
        for i, (shared_channel, shared_ts, author) in enumerate(_shared_messages(event))
    ]
    words = event.get("text")
    if not drafts or (isinstance(words, str) and words.strip()):
        # A plain message, or the text the sharer wrote along with the shared message.
        thread_ts = opt_text(event, "thread_ts")
        in_thread = thread_ts is not None and thread_ts != ts
        drafts.append(
            replace(
                base,
                key=key if not drafts else f"{key}:comment",
                target_id=f"{channel}:{thread_ts}" if in_thread else None,
                target_author_id=opt_ident(event, "parent_user_id") if in_thread else None,
                text=words if isinstance(words, str) else None,
            )
        )
    return drafts


def _shared_messages(event: JsonObject) -> list[tuple[str, str, str | None]]:
    """(channel, ts, author) of each message this one shares or forwards."""
    attachments = event.get("attachments")
    if not isinstance(attachments, list):
        return []
    shared = []
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        if not (attachment.get("is_share") is True or attachment.get("is_msg_unfurl") is True):
            continue
        channel, ts = opt_ident(attachment, "channel_id"), opt_text(attachment, "ts")
        if channel and ts:
            shared.append((channel, ts, opt_ident(attachment, "author_id")))
    return shared


def _joined(payload: JsonObject, event: JsonObject, team: str, event_id: str, ctx: Context) -> Outcome:
    channel = ident(event, "channel", "event")
    return [
        Draft(
            key=f"{team}:{event_id}",
            type=EventType.JOIN,
            base_community=team,
            community_id=ctx.community(team, channel),
            member_id=ident(event, "user", "event"),
            occurred_at=_event_time(payload, event),
            join_source=JoinSource.INVITE if opt_ident(event, "inviter") else JoinSource.ORGANIC,
        )
    ]
