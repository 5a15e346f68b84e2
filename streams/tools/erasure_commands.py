"""`engage forget` and `engage compact-log`: ask to forget a member; rewrite the log without them.

`forget` writes the erasure record (schemas/erasures.py) to every partition of
`engagement.erasures`, as the gateway's `POST /v1/erasures` does; `--wait` waits until every
partition's worker recorded it in ClickHouse (`engagement.erasures`).

`compact-log --to TOPIC` copies `engagement.events` into a new topic, partition by
partition, message by message (Kafka timestamps kept, so a replay refuses exactly what
the live worker refused), leaving out every line of a forgotten member at or before their
erasure and blanking `target_author_id` where it names one. docs/privacy.md has the swap
procedure; the copy is what remains of the member in Kafka once the old topic is deleted.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.erasures import ErasureRecord, ErasureRequest, record_for
from schemas.outputs import ModerationDecision
from streams.config import TOPIC_ERASURES, TOPIC_EVENTS, Settings
from streams.envelopes import HEADERS, envelope, split_lines
from streams.forgotten import ForgottenMembers
from streams.worker import moderation


def forget_command(
    settings: Settings,
    community: str,
    member: str,
    reason: str,
    requested_by: str,
    platform: str | None,
    wait_s: float,
) -> int:
    from kafka import KafkaProducer

    if platform is not None:
        from streams.webhooks.config import PLATFORMS, WebhookConfig

        if platform not in PLATFORMS:
            print(f"forget: unknown platform {platform!r}; use one of {', '.join(PLATFORMS)}", file=sys.stderr)
            return 2
        member = WebhookConfig.from_settings(settings).member_ref(platform, community, member)
    try:
        request = ErasureRequest(community_id=community, member_id=member, reason=reason, requested_by=requested_by)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"forget: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}", file=sys.stderr)
        return 2
    record = record_for(request, "cli", datetime.now(UTC))
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True)
    try:
        partitions = sorted(producer.partitions_for(TOPIC_ERASURES) or ())
        if not partitions:
            print(f"forget: topic {TOPIC_ERASURES} does not exist; run `engage topics` first", file=sys.stderr)
            return 1
        value = record.model_dump_json().encode()
        for fut in [producer.send(TOPIC_ERASURES, value=value, key=record.topic_key, partition=p) for p in partitions]:
            fut.get(timeout=30)
    finally:
        producer.close()
    print(f"erasure {record.erasure_id} (member key {record.member_key}) sent to {len(partitions)} partitions")
    if wait_s > 0:
        return _wait_applied(settings, record, len(partitions), wait_s)
    return 0


def _wait_applied(settings: Settings, record: ErasureRecord, partitions: int, wait_s: float) -> int:
    from streams.embedded_sql import QueryError, query

    sql = (
        "SELECT uniqExact(kafka_partition) FROM engagement.erasures"
        f" WHERE erasure_id = '{record.erasure_id}'"  # 32 hex characters: nothing to escape
    )
    deadline = time.monotonic() + wait_s
    done = 0
    while time.monotonic() < deadline:
        try:
            done = int(query(settings, sql, "TSV").strip() or 0)
        except QueryError:
            done = 0
        if done >= partitions:
            print(f"applied on all {partitions} partitions")
            return 0
        time.sleep(0.5)
    print(
        f"forget: applied on {done} of {partitions} partitions after {wait_s:.0f}s; "
        "the worker goes on, watch engage_erasures_pending",
        file=sys.stderr,
    )
    return 1


def read_erasures(settings: Settings) -> ForgottenMembers:
    """Every erasure on the topic (each is on every partition: partition 0 is enough, all are read)."""
    forgotten = ForgottenMembers()
    for msg in read_topic(settings, TOPIC_ERASURES):
        try:
            record = ErasureRecord.model_validate_json(msg.value or b"")
        except ValidationError:
            continue
        forgotten.add(record.community_id, record.member_key, record.erased_at.timestamp())
    return forgotten


def read_topic(settings: Settings, topic: str, partition: int | None = None) -> Any:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts) if partition is None or p == partition]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > consumer.position(tp)}
        while remaining:
            for tp, msgs in consumer.poll(timeout_ms=1000, max_records=2000).items():
                for msg in msgs:
                    if msg.offset < ends[tp]:
                        yield msg
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


@dataclass
class CompactCounts:
    messages: int = 0
    lines: int = 0
    dropped: int = 0
    blanked: int = 0


def compact_line(line: bytes, forgotten: ForgottenMembers, counts: CompactCounts) -> bytes | None:
    """The line as the compacted log holds it (None: left out). Unreadable lines are kept: the
    worker sends them to the DLQ with their reason, as it did the first time."""
    try:
        event = orjson.loads(line)
        community, member = event["community_id"], event["member_id"]
        at = datetime.fromisoformat(event["occurred_at"]).timestamp()
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return line
    if not isinstance(community, str) or not isinstance(member, str):
        return line
    if forgotten.is_forgotten(community, member, at):
        counts.dropped += 1
        return None
    author = event.get("target_author_id")
    if isinstance(author, str) and forgotten.is_forgotten(community, author, at):
        del event["target_author_id"]
        counts.blanked += 1
        return orjson.dumps(event)
    return line


def _is_empty(settings: Settings, topic: str) -> bool:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return all(offset == 0 for offset in consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def compact_log_command(settings: Settings, to_topic: str, from_topic: str = TOPIC_EVENTS) -> int:
    """Copy `from_topic` into `to_topic` (new, or existing and empty) without forgotten members."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from streams.topics import admin_client

    if to_topic == from_topic or to_topic == TOPIC_ERASURES:
        print(f"compact-log: cannot write into {to_topic}: copy into a new (or empty) topic", file=sys.stderr)
        return 2
    forgotten = read_erasures(settings)
    admin = admin_client(settings)
    try:
        if from_topic not in admin.list_topics():
            print(f"compact-log: no topic {from_topic}", file=sys.stderr)
            return 2
        partitions = len(admin.describe_topics([from_topic])[0]["partitions"])
        try:
            admin.create_topics([NewTopic(to_topic, partitions, 1)])
        except TopicAlreadyExistsError:
            if not _is_empty(settings, to_topic):
                print(f"compact-log: topic {to_topic} exists and is not empty; choose another", file=sys.stderr)
                return 2
    finally:
        admin.close()
    return _copy(settings, from_topic, to_topic, forgotten)


def _copy(settings: Settings, from_topic: str, to_topic: str, forgotten: ForgottenMembers) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True, max_request_size=2 << 20
    )
    counts = CompactCounts()
    try:
        for msg in read_topic(settings, from_topic):
            counts.messages += 1
            if moderation.is_decision(msg.value):  # a sequenced decision: copied whole, unless about them
                decision = ModerationDecision.model_validate_json(msg.value[len(moderation.PREFIX) :])
                if forgotten.is_forgotten(decision.community_id, decision.member_id, decision.decided_at.timestamp()):
                    counts.dropped += 1
                    continue
                producer.send(
                    to_topic,
                    value=msg.value,
                    key=msg.key,
                    partition=msg.partition,
                    timestamp_ms=msg.timestamp,
                    headers=list(msg.headers or ()),
                )
                continue
            kept = []
            for line in split_lines(msg.value or b""):
                counts.lines += 1
                out = compact_line(line, forgotten, counts)
                if out is not None:
                    kept.append(out)
            if kept:
                producer.send(
                    to_topic,
                    value=envelope(kept),
                    key=msg.key,
                    partition=msg.partition,
                    timestamp_ms=msg.timestamp,
                    headers=HEADERS,
                )
        producer.flush()
    finally:
        producer.close()
    print(
        f"copied {counts.messages} messages ({counts.lines} lines) of {from_topic} into {to_topic}: "
        f"{counts.dropped} events of {len(forgotten)} forgotten members left out, "
        f"{counts.blanked} references blanked"
    )
    return 0
