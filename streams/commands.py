"""What the `engage` subcommands do, beyond starting a single process."""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.events import CanonicalEvent, format_location
from sinks.clickhouse import connect
from sinks.migrate import migrate
from streams.config import TOPIC_EVENTS, Settings
from streams.embedded_sql import QueryError, owner_url, query
from streams.local_stack import LocalStack


def migrate_command(settings: Settings) -> int:
    url = owner_url(settings) if settings.embedded else None
    if url is not None:
        print(
            f"the worker at {url} owns the embedded store and applies migrations when it starts; nothing to do"
        )
        return 0
    applied = migrate(connect(settings.dsn))
    print("applied: " + (", ".join(applied) if applied else "nothing (schema is current)"))
    return 0


def query_command(settings: Settings, sql: str, fmt: str) -> int:
    try:
        out = query(settings, sql, fmt)
    except QueryError as exc:
        print(f"query failed: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return 0


def _lines(path: str) -> Iterator[bytes]:
    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as fh:
        yield from fh


def replay_command(settings: Settings, path: str) -> int:
    """Validate each line, send the valid ones to Kafka keyed by community; report the rest."""
    from kafka import KafkaProducer
    from tqdm import tqdm

    if path != "-" and not Path(path).is_file():
        print(f"replay: no such file {path!r}", file=sys.stderr)
        return 2
    total = None if path == "-" else sum(1 for _ in _lines(path))
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
        enable_idempotence=True,
        max_in_flight_requests_per_connection=5,
    )
    sent = bad = 0
    try:
        for lineno, line in enumerate(tqdm(_lines(path), total=total, unit="ev", file=sys.stderr), start=1):
            if not line.strip():
                continue
            try:
                event = CanonicalEvent.model_validate_json(line)
            except ValidationError as exc:
                bad += 1
                if bad <= 10:
                    first = exc.errors()[0]
                    print(
                        f"line {lineno}: {format_location(tuple(first['loc']))}: {first['msg']}",
                        file=sys.stderr,
                    )
                continue
            producer.send(TOPIC_EVENTS, value=line.rstrip(b"\r\n"), key=event.community_id.encode())
            sent += 1
        producer.flush()
    finally:
        producer.close()
    print(f"sent {sent} events to {TOPIC_EVENTS}; skipped {bad} invalid line(s)")
    return 0 if bad == 0 else 1


def post_events(gateway_url: str, events: list[dict[str, Any]], timeout_s: float = 10.0) -> int:
    """POST up to 1,000 canonical events; retry on 503; return how many were accepted."""
    body = orjson.dumps(events)
    for attempt in range(20):
        req = urllib.request.Request(
            f"{gateway_url}/v1/events", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return int(orjson.loads(resp.read())["accepted"])
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise RuntimeError(f"gateway refused a batch: {exc.code} {exc.read()[:500]!r}") from exc
        except urllib.error.URLError:
            pass
        time.sleep(min(5.0, 0.2 * 2**attempt))
    raise RuntimeError("gateway kept answering 503 for a minute; is Kafka up?")


def chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def count_rows(settings: Settings, sql: str) -> int:
    return int(query(settings, sql, "TSV").strip() or 0)


def demo_events(seed: int, events: int) -> list[dict[str, Any]]:
    """A synthetic community of roughly `events` events, oldest first."""
    from streams.demo_feed import demo_community

    return list(demo_community(seed=seed, target_events=events))


def print_summary(settings: Settings) -> None:
    sys.stdout.buffer.write(
        query(
            settings,
            "SELECT type, count() AS events, uniqExact(member_id) AS members, "
            "min(occurred_at) AS first, max(occurred_at) AS last "
            "FROM engagement.events FINAL GROUP BY type ORDER BY type",
            "PrettyCompactMonoBlock",
        )
    )
    with contextlib.suppress(QueryError):
        sys.stdout.buffer.write(
            query(
                settings,
                # scores at each community's clock: stored rows are decayed to their own as_of
                "SELECT tier, count() AS members, round(avg(creation_now), 2) AS avg_creation, "
                "round(avg(curation_now), 2) AS avg_curation FROM engagement.v_member_current "
                "WHERE actor_role = 'member' GROUP BY tier ORDER BY members DESC",
                "PrettyCompactMonoBlock",
            )
        )
    sys.stdout.flush()


def demo_command(settings: Settings, events: int, seed: int) -> int:
    started = time.monotonic()
    feed = demo_events(seed, events)
    ids = {e["event_id"] for e in feed}
    communities = ",".join(f"'{c}'" for c in sorted({e["community_id"] for e in feed}))
    # counted by the feed's own communities, so running the demo twice works (the second adds nothing)
    progress = f"SELECT uniqExact(event_id) FROM engagement.events WHERE community_id IN ({communities})"
    with LocalStack(settings) as stack:
        sent = sum(post_events(settings.gateway_url, batch) for batch in chunks(feed, 1000))
        stack.say(f"sent {sent} events through the gateway; waiting until ClickHouse has them all")
        deadline = time.monotonic() + 180
        stored = 0
        while time.monotonic() < deadline:
            stored = count_rows(settings, progress)
            if stored >= len(ids):
                break
            time.sleep(0.5)
        if stored < len(ids):
            print(f"demo: only {stored} of {len(ids)} events reached ClickHouse in 180s", file=sys.stderr)
            return 1
        print(f"demo: {len(ids)} events stored in ClickHouse in {time.monotonic() - started:.1f}s")
        print_summary(settings)
    return 0


def run_command(settings: Settings, demo: bool, rate: float) -> int:
    with LocalStack(settings) as stack:
        if not demo:
            stack.say("running; Ctrl-C stops everything")
        try:
            if demo:
                _feed_forever(settings, stack, rate)
            else:
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            stack.say("\nstopping…")
    return 0


def _feed_forever(settings: Settings, stack: LocalStack, rate: float) -> None:
    from streams.demo_feed import live_feed

    stack.say(f"feeding a synthetic community at ~{rate:.0f} events/s; Ctrl-C stops everything")
    sent = 0
    last_report = time.monotonic()
    for batch in live_feed(seed=int(time.time()), rate=rate):
        sent += post_events(settings.gateway_url, batch)
        now = time.monotonic()
        if now - last_report >= 5:
            stored = count_rows(settings, "SELECT count() FROM engagement.events")
            stack.say(f"sent {sent} events; {stored} rows in engagement.events")
            last_report = now


def simulate_command(
    events_path: str, labels_path: str, seed: int, communities: int, members: int | str, days: float,
    spam: int | None,
) -> int:
    from streams.simulate import draw_sizes, spam_for_size, write_simulation

    text = str(members)
    lo, sep, hi = text.partition("-")
    if not (lo.isdigit() and (not sep or hi.isdigit())) or int(lo) < 1 or (sep and int(hi) < int(lo)):
        print(f"simulate: --members {text!r} is neither a size (2000) nor a range LO-HI (10-10000)", file=sys.stderr)
        return 2
    sizes = draw_sizes(seed, communities, int(lo), int(hi)) if sep else [int(lo)] * communities
    counts = [spam if spam is not None else (spam_for_size(n) if sep else 24) for n in sizes]
    started = time.monotonic()
    n_events, n_labels = write_simulation(
        events_path, labels_path, seed=seed, communities=communities, members_per_community=sizes,
        days=days, spam_profiles_per_community=counts,
    )
    print(
        f"wrote {n_events} events to {events_path} and {n_labels} labels to {labels_path} "
        f"in {time.monotonic() - started:.1f}s (seed {seed}); send them with `engage replay {events_path}`"
    )
    return 0


SPAM_TARGETS = {"precision": 0.98, "recall": 0.95, "events_to_flag": 5}


def eval_spam_command(settings: Settings, labels_path: str, check: bool) -> int:
    """Compare the flags in ClickHouse with a simulation's ground-truth labels."""
    import math

    from streams.spam.evaluation import evaluate

    labels = [orjson.loads(line) for line in Path(labels_path).read_bytes().splitlines() if line.strip()]
    if not labels:
        print(f"eval-spam: no labels in {labels_path}", file=sys.stderr)
        return 2
    communities = sorted({str(lab["community_id"]) for lab in labels})
    where = "community_id IN (" + ",".join(f"'{c}'" for c in communities) + ")"

    def rows(sql: str) -> list[list[Any]]:
        return [orjson.loads(line) for line in query(settings, sql, "JSONCompactEachRow").splitlines() if line]

    flags = rows(
        "SELECT community_id, member_id, argMin(event_id, flagged_at), argMin(reasons, flagged_at) "
        f"FROM engagement.spam_flags FINAL WHERE {where} AND event_id != '' "
        "AND status NOT IN ('review', 'dismissed') GROUP BY community_id, member_id"
    )
    reviewed = rows(  # weak evidence sent to a moderator: neither a catch nor a false flag
        f"SELECT DISTINCT community_id, member_id FROM engagement.spam_flags FINAL WHERE {where} "
        "AND status IN ('review', 'dismissed')"
    )
    log_order = rows(f"SELECT community_id, member_id, event_id FROM engagement.events FINAL WHERE {where} "
                     "ORDER BY kafka_partition, kafka_offset")
    members = rows(
        f"SELECT community_id, member_id, creation FROM engagement.member_state FINAL WHERE {where} "
        "AND actor_role = 'member' ORDER BY community_id, creation DESC, member_id"
    )
    # ambassador tier judged without spam exclusion: the top max(1, ceil(1%)) by creation
    by_community: dict[str, list[str]] = {}
    for cid, mid, _ in members:
        by_community.setdefault(cid, []).append(mid)
    ambassadors = {
        (cid, mid) for cid, mids in by_community.items() for mid in mids[: max(1, math.ceil(0.01 * len(mids)))]
    }
    report = evaluate(
        [(c, m, e) for c, m, e, _ in flags], labels, [tuple(r) for r in log_order], ambassadors,
        {(c, m): r for c, m, _, r in flags}, {(c, m) for c, m in reviewed},
    )
    print("\n".join(report.lines()))
    fast = report.median_events_to_flag_of(("burst", "duplicate"))
    ok = (
        report.precision >= SPAM_TARGETS["precision"]
        and report.recall >= SPAM_TARGETS["recall"]
        and not report.ambassadors_flagged
        and (fast is None or fast <= SPAM_TARGETS["events_to_flag"])
    )
    print(
        f"targets: precision >= 0.98, recall >= 0.95, no ambassador flagged, burst/duplicate flagged within "
        f"5 events (median {'-' if fast is None else f'{fast:g}'}): {'met' if ok else 'MISSED'}"
    )
    return 0 if ok or not check else 1
