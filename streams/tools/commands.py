"""What the `engage` subcommands do, beyond starting a single process.

A mistake or failure a person can meet is raised as `CommandError`: one line
(what happened, why, what to do) and the exit code (2 usage, 1 failure).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
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
from streams.envelopes import HEADERS, EnvelopePacker
from streams.tools.local_stack import LocalStack

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CommandError(Exception):
    """One line for the person who typed the command, and the exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def usage_error(message: str) -> CommandError:
    return CommandError(message, EXIT_USAGE)




def embedded_store(settings: Settings) -> Path | None:
    """The directory of the embedded store, when the DSN is one."""
    return Path(settings.dsn.split("://", 1)[1]) if settings.embedded else None


def check_store_exists(settings: Settings) -> None:
    """Refuse to read an embedded store that does not exist (opening it would create an empty one)."""
    path = embedded_store(settings)
    if path is not None and owner_url(settings) is None and not path.exists():
        raise CommandError(
            f"there is no ClickHouse store at {path} yet: start the stack with `engage run` (its worker "
            "creates it), or point --data-dir or --dsn at an existing one"
        )


def explain(exc: QueryError, settings: Settings) -> CommandError:
    text = " ".join(str(exc).split())
    if "UNKNOWN_DATABASE" in text or "Database engagement does not exist" in text:
        return CommandError(
            f"ClickHouse at {settings.dsn} has no `engagement` database yet: apply the migrations with "
            "`engage migrate`, or start the stack with `engage run` (its worker applies them)"
        )
    return CommandError(f"query failed: {text[:400]}")


def sql_rows(settings: Settings, sql: str, fmt: str) -> bytes:
    """`query`, with a failure explained in one line."""
    try:
        return query(settings, sql, fmt)
    except QueryError as exc:
        raise explain(exc, settings) from exc


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
    check_store_exists(settings)
    out = sql_rows(settings, sql, fmt)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return 0


def _lines(path: str) -> Iterator[bytes]:
    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as fh:
        yield from fh


def read_input(path: str, what: str, hint: str = "") -> Iterable[bytes]:
    """The lines of an input file (or stdin, read once into memory), or a usage error naming the file."""
    if path == "-":
        return list(sys.stdin.buffer)
    p = Path(path)
    try:
        with p.open("rb"):
            pass
    except FileNotFoundError:
        raise usage_error(f"no such {what} file: {path}" + (f"; {hint}" if hint else "")) from None
    except IsADirectoryError:
        raise usage_error(f"{path} is a directory, not a {what} file") from None
    except OSError as exc:
        raise usage_error(f"cannot read {what} file {path}: {exc.strerror}") from None
    return _Reread(path)


class _Reread:
    """A file's lines, read afresh each time they are iterated (validate, then send)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __iter__(self) -> Iterator[bytes]:
        return _lines(self.path)


def validate_lines(lines: Iterable[bytes]) -> tuple[int, list[str], int]:
    """(valid events, the first problems as 'line N: field: why', invalid lines)."""
    valid = bad = 0
    problems: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            CanonicalEvent.model_validate_json(line)
        except ValidationError as exc:
            bad += 1
            if len(problems) < 20:
                first = exc.errors()[0]
                where = format_location(tuple(first["loc"])) or "line"
                problems.append(f"line {lineno}: {where}: {first['msg']}")
            continue
        valid += 1
    return valid, problems, bad


def kafka_reachable(bootstrap: str, timeout_s: float = 3.0) -> str | None:
    """None when some bootstrap server accepts a connection, else why not."""
    why = "no bootstrap server given"
    for server in filter(None, (s.strip() for s in bootstrap.split(","))):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or server, int(port or 9092)), timeout=timeout_s):
                return None
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
    return why


def replay_command(settings: Settings, path: str, dry_run: bool = False) -> int:
    """Validate the whole file first; then send every event to Kafka keyed by community.

    Nothing is sent when a line is invalid, or with `dry_run`; Kafka is needed only to send.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    from tqdm import tqdm

    name = "stdin" if path == "-" else path
    lines = read_input(path, "events", "write one with `engage simulate --events FILE`")
    valid, problems, bad = validate_lines(lines)
    if dry_run:
        for problem in problems:
            print(f"{name} {problem}")
        more = f" (first {len(problems)} shown)" if bad > len(problems) else ""
        print(f"{name}: {valid} valid events, {bad} invalid line(s){more}; nothing sent (--dry-run)")
        return 0 if bad == 0 else EXIT_USAGE
    if bad:
        more = f" (and {bad - 1} more invalid line(s))" if bad > 1 else ""
        raise usage_error(
            f"{name} {problems[0]}{more}; nothing was sent: fix the file "
            f"(`engage replay --dry-run {path}` lists the problems)"
        )
    if valid == 0:
        print(f"{name} has no events; nothing sent")
        return 0
    unreachable = kafka_reachable(settings.bootstrap)
    if unreachable is not None:
        raise CommandError(
            f"cannot reach Kafka at {settings.bootstrap} ({unreachable}): start the stack with "
            "`engage run --no-demo` or pass --bootstrap; nothing was sent"
        )
    sent = 0
    try:
        producer = KafkaProducer(
            bootstrap_servers=settings.bootstrap,
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            enable_idempotence=True,
            max_in_flight_requests_per_connection=5,
            max_block_ms=15_000,
        )
        packer = EnvelopePacker(len(producer.partitions_for(TOPIC_EVENTS)), settings.envelope_limits())
        try:
            for line in tqdm(lines, total=valid, unit="ev", file=sys.stderr):
                if not line.strip():
                    continue
                event = CanonicalEvent.model_validate_json(line)
                for partition, value in packer.add(event.community_id, line.rstrip(b"\r\n")):
                    producer.send(TOPIC_EVENTS, value=value, partition=partition, headers=HEADERS)
                sent += 1
            for partition, value in packer.flush():
                producer.send(TOPIC_EVENTS, value=value, partition=partition, headers=HEADERS)
            producer.flush(timeout=120)
        finally:
            producer.close(timeout=10)
    except KafkaError as exc:
        raise CommandError(
            f"Kafka at {settings.bootstrap} failed after {sent} of {valid} events were handed to it "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); replaying the whole file again is "
            "safe (events are deduplicated by event_id)"
        ) from exc
    print(f"sent {sent} events to {TOPIC_EVENTS}")
    return 0


def post_events(gateway_url: str, events: list[dict[str, Any]], token: str, timeout_s: float = 10.0) -> int:
    """POST up to 1,000 canonical events with an API token; retry on 503 and 429; return how many were accepted."""
    body = orjson.dumps(events)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    for attempt in range(20):
        req = urllib.request.Request(f"{gateway_url}/v1/events", data=body, method="POST", headers=headers)
        wait = min(5.0, 0.2 * 2**attempt)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return int(orjson.loads(resp.read())["accepted"])
        except urllib.error.HTTPError as exc:
            if exc.code == 429:  # over the token's rate limit: wait as told
                wait = float(exc.headers.get("Retry-After") or 1)
            elif exc.code != 503:
                raise RuntimeError(f"gateway refused a batch: {exc.code} {exc.read()[:500]!r}") from exc
        except urllib.error.URLError:
            pass
        time.sleep(wait)
    raise RuntimeError("gateway kept answering 503 (or 429) for a minute; is Kafka up, is the token over its limit?")


def chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def count_rows(settings: Settings, sql: str) -> int:
    return int(query(settings, sql, "TSV").strip() or 0)


def demo_events(seed: int, events: int) -> list[dict[str, Any]]:
    """A synthetic community of roughly `events` events, oldest first."""
    from streams.tools.demo_feed import demo_community

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
        sent = sum(post_events(settings.gateway_url, batch, stack.api_token) for batch in chunks(feed, 1000))
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
                    stack.check_children()  # a child that dies stops everything, with its reason
                    time.sleep(1.0)
        except KeyboardInterrupt:
            stack.say("\nstopping…")
    return 0 if stack.clean else EXIT_FAILURE


def _feed_forever(settings: Settings, stack: LocalStack, rate: float) -> None:
    from streams.tools.demo_feed import live_feed

    stack.say(f"feeding a synthetic community at ~{rate:.0f} events/s; Ctrl-C stops everything")
    sent = 0
    last_report = time.monotonic()
    for batch in live_feed(seed=int(time.time()), rate=rate):
        stack.check_children()
        sent += post_events(settings.gateway_url, batch, stack.api_token)
        now = time.monotonic()
        if now - last_report >= 5:
            stored = count_rows(settings, "SELECT count() FROM engagement.events")
            stack.say(f"sent {sent} events; {stored} rows in engagement.events")
            last_report = now


def check_writable(path: str, flag: str) -> None:
    """A usage error unless `path` can be created: its directory exists and it is not a directory."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise usage_error(f"{path} is a directory; give {flag} a file name")
    if not parent.is_dir():
        raise usage_error(f"directory {parent} does not exist (for {flag} {path}): create it or pick another path")
    if not os.access(parent, os.W_OK):
        raise usage_error(f"cannot write in {parent} (for {flag} {path}): pick another path")


def simulate_command(
    events_path: str, labels_path: str, seed: int, communities: int, members: int | str, days: float,
    spam: int | None,
) -> int:
    from streams.tools.simulate import draw_sizes, spam_for_size, write_simulation

    for flag, out in (("--events", events_path), ("--labels", labels_path)):
        check_writable(out, flag)
    text = str(members)
    lo, sep, hi = text.partition("-")
    if not (lo.isdigit() and (not sep or hi.isdigit())) or int(lo) < 1 or (sep and int(hi) < int(lo)):
        raise usage_error(f"simulate: --members {text!r} is neither a size (2000) nor a range LO-HI (10-10000)")
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

    from streams.tools.spam_evaluation import evaluate

    hint = f"write one with `engage simulate --labels {labels_path}`"
    labels = []
    for lineno, line in enumerate(read_input(labels_path, "labels", hint), start=1):
        if not line.strip():
            continue
        try:
            label = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise usage_error(f"{labels_path} line {lineno} is not JSON ({exc}); {hint}") from None
        if not isinstance(label, dict) or "community_id" not in label or "member_id" not in label:
            raise usage_error(f"{labels_path} line {lineno} is not a label (no community_id/member_id); {hint}")
        labels.append(label)
    if not labels:
        raise usage_error(f"no labels in {labels_path}; {hint}")
    check_store_exists(settings)
    communities = sorted({str(lab["community_id"]) for lab in labels})
    where = "community_id IN (" + ",".join(f"'{c}'" for c in communities) + ")"

    def rows(sql: str) -> list[list[Any]]:
        return [orjson.loads(line) for line in sql_rows(settings, sql, "JSONCompactEachRow").splitlines() if line]

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
