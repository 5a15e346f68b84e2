"""Benchmark load: canonical events built by hand (generating must not be the bottleneck),
topics filled with one event per message or with envelopes, and a paced envelope feed."""

from __future__ import annotations

import asyncio
import random
import time

from streams.envelopes import HEADERS, EnvelopePacker

TYPES = ("like", "like", "like", "share", "comment", "join")


def event_line(
    i: int, communities: int, members: int, start: float, step_s: float, rnd: random.Random
) -> tuple[str, bytes]:
    """(community_id, one canonical event as JSON); event i happens at start + i * step_s.

    `members` is the total: each community has members / communities of its own (a member is a
    person inside one community), and likes, shares and replies go to content of the same
    community's members."""
    c = rnd.randrange(communities)
    per = max(1, members // communities)
    m = c + communities * rnd.randrange(per)
    author = c + communities * rnd.randrange(per)
    t = TYPES[rnd.randrange(len(TYPES))]
    ts = start + step_s * i
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
    if t == "join":
        extra = ',"join_source":"organic"'
    elif t == "comment":
        extra = (
            f',"target_id":"p{rnd.randrange(1000)}","target_author_id":"m{author}",'
            f'"content_fingerprint":{rnd.getrandbits(64)},"link_count":0'
        )
    else:
        extra = f',"target_id":"p{rnd.randrange(1000)}","target_author_id":"m{author}"'
    community = f"c{c}"
    body = (
        f'{{"event_id":"b{i}","type":"{t}","community_id":"{community}","member_id":"m{m}",'
        f'"occurred_at":"{iso}","source":"bench"{extra}}}'
    )
    return community, body.encode()


async def fill(
    bootstrap: str, topic: str, n: int, communities: int, members: int, *, envelopes: bool, seed: int = 1
) -> float:
    """Fill `topic` with n events over three days of event time; return events/s of producing."""
    from aiokafka import AIOKafkaProducer

    rnd = random.Random(seed)
    start_ts = time.time() - 3 * 86400
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=50, max_batch_size=1 << 20, max_request_size=1 << 21
    )
    await producer.start()
    t0 = time.perf_counter()
    try:
        partitions = len(await producer.partitions_for(topic))
        packer = EnvelopePacker(partitions)
        pending = []
        for i in range(n):
            community, line = event_line(i, communities, members, start_ts, 3 * 86400 / max(n, 1), rnd)
            if envelopes:
                for p, value in packer.add(community, line):
                    pending.append(await producer.send(topic, value=value, partition=p, headers=HEADERS))
            else:
                pending.append(await producer.send(topic, value=line, key=community.encode()))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        for p, value in packer.flush():
            pending.append(await producer.send(topic, value=value, partition=p, headers=HEADERS))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return n / (time.perf_counter() - t0)


async def paced(
    bootstrap: str, topic: str, rate: float, seconds: float, communities: int, members: int, linger_s: float = 0.02
) -> int:
    """Envelopes at `rate` events/s for `seconds`, flushed every `linger_s` as the gateway does."""
    from aiokafka import AIOKafkaProducer

    rnd = random.Random(99)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0, max_request_size=1 << 21)
    await producer.start()
    sent = 0
    try:
        packer = EnvelopePacker(len(await producer.partitions_for(topic)))
        total = int(rate * seconds)
        t0 = time.perf_counter()
        while sent < total:
            due = min(total, int((time.perf_counter() - t0 + linger_s) * rate))
            ready = []
            for i in range(sent, due):
                community, line = event_line(10_000_000 + i, communities, members, time.time(), 0.0, rnd)
                ready.extend(packer.add(community, line))
            sent = max(sent, due)
            ready.extend(packer.flush())
            for p, value in ready:
                await producer.send(topic, value=value, partition=p, headers=HEADERS)
            await asyncio.sleep(linger_s)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
