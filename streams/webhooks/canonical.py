"""From an adapter's draft to a `CanonicalEvent`: ids, pseudonyms, fingerprint; the text stops here.

Adapters describe what happened in a `Draft` (raw platform ids, the comment text)
and `build` turns it into the canonical event: the event id gets its platform
prefix, member and target author ids are pseudonymized when a key is configured,
and comment text becomes `content_fingerprint` + `link_count` and is dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from schemas.events import ActorRole, CanonicalEvent, EventType, JoinSource
from streams.fingerprint import count_links, simhash64
from streams.webhooks.config import WebhookConfig

MAX_EVENT_ID = 128
MAX_LINKS = 10_000


@dataclass(frozen=True)
class Context:
    """What an adapter needs besides the payload: the platform, the config and the request time."""

    platform: str
    config: WebhookConfig
    now: datetime

    def community(self, base: str, channel: str | None) -> str:
        """`base` (workspace, forum, repo, network), or `base/channel` with channel granularity."""
        if self.config.community_granularity == "channel" and channel:
            return f"{base}/{channel}"
        return base

    def member_ref(self, base_community: str, member_id: str) -> str:
        """The stored form of a member id (pseudonymized per platform-level community when configured)."""
        return self.config.member_ref(self.platform, base_community, member_id)


@dataclass(frozen=True)
class Draft:
    """One event as an adapter sees it. `key` must be stable across the platform's retries."""

    key: str
    type: EventType
    base_community: str  # platform-level community: pseudonyms are derived from it
    community_id: str  # after granularity
    member_id: str  # raw platform id
    occurred_at: datetime
    actor_role: ActorRole = ActorRole.MEMBER
    target_id: str | None = None
    target_author_id: str | None = None  # raw platform id
    join_source: JoinSource | None = None
    text: str | None = field(default=None, repr=False)  # comments only; never stored


def event_id(platform: str, key: str) -> str:
    """`platform:key`, or `platform:h:<hash of key>` when that would exceed the schema's 128 characters."""
    candidate = f"{platform}:{key}"
    if len(candidate) <= MAX_EVENT_ID:
        return candidate
    return f"{platform}:h:{hashlib.blake2b(key.encode(), digest_size=24).hexdigest()}"


def build(ctx: Context, draft: Draft) -> CanonicalEvent:
    """The canonical event for `draft` (raises pydantic's ValidationError when a field does not fit)."""
    fingerprint: int | None = None
    links = 0
    if draft.type is EventType.COMMENT and draft.text and draft.text.strip():
        fingerprint = simhash64(draft.text)
        links = min(count_links(draft.text), MAX_LINKS)
    target_author = (
        ctx.member_ref(draft.base_community, draft.target_author_id) if draft.target_author_id else None
    )
    return CanonicalEvent(
        event_id=event_id(ctx.platform, draft.key),
        type=draft.type,
        community_id=draft.community_id,
        member_id=ctx.member_ref(draft.base_community, draft.member_id),
        occurred_at=draft.occurred_at,
        source=ctx.platform,
        actor_role=draft.actor_role,
        target_id=draft.target_id,
        target_author_id=target_author,
        join_source=draft.join_source,
        content_fingerprint=fingerprint,
        link_count=links,
    )
