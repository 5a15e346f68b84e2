"""The Kafka topics the pipeline owns, and their creation (idempotent).

Keys: `engagement.events` is keyed by community_id so one community's events
stay in one partition, in order; derived topics use the same key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.config import (
    TOPIC_DLQ,
    TOPIC_ERASURES,
    TOPIC_EVENTS,
    TOPIC_MODERATION,
    TOPIC_SPAM_FLAGS,
    TOPIC_TIER_CHANGES,
    Settings,
)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    purpose: str
    config: Mapping[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    p = settings.partitions
    return [
        TopicSpec(TOPIC_EVENTS, p, "canonical events, key = community_id"),
        TopicSpec(TOPIC_DLQ, 1, "bytes the worker could not read, with the reason in headers"),
        TopicSpec(TOPIC_TIER_CHANGES, p, "one record per tier transition"),
        TopicSpec(TOPIC_SPAM_FLAGS, p, "spam flags and their moderation status"),
        # Same partition count as events: a community's decisions meet its events in one worker.
        TopicSpec(TOPIC_MODERATION, p, "moderation decisions (confirm/clear), key = community_id"),
        # Every record is written to every partition (an erasure covers sub-communities anywhere);
        # compacted: the newest record per (community, member) is kept for ever (docs/privacy.md).
        TopicSpec(
            TOPIC_ERASURES, p, "forget requests, key = community|member_key", {"cleanup.policy": "compact"}
        ),
    ]


def admin_client(settings: Settings, timeout_s: float = 30.0) -> KafkaAdminClient:
    """An admin client, retrying while the broker starts."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="engage-admin")
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"Kafka at {settings.bootstrap} did not answer within {timeout_s:.0f}s ({exc}); "
                    "start it with `deploy/local/kafka.sh start` or set ENGAGE_KAFKA_BOOTSTRAP"
                ) from exc
            time.sleep(0.5)


def ensure_topics(settings: Settings) -> list[str]:
    """Create any missing topic; return the names created now."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        missing = [s for s in topic_specs(settings) if s.name not in existing]
        created = []
        for spec in missing:
            try:
                admin.create_topics([NewTopic(spec.name, spec.partitions, 1, topic_configs=dict(spec.config))])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
