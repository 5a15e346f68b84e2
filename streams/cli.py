"""`engage`: one obvious way to run every part of the pipeline.

Flags override `ENGAGE_*` variables, which override the defaults in streams/config.py.
Every mistake reads as one line on stderr; exit codes: 0 done, 1 the command failed
(Kafka or ClickHouse unreachable, a query refused, a process that had to be stopped),
2 the command line is wrong (an unknown option, a missing or unreadable input file);
`--debug` shows the traceback instead. `engage worker` and `engage gateway` exit 75
when they had to abandon work to stop in time (see streams/shutdown.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from streams.api_tokens import SCOPES
from streams.config import Settings

EXIT_USAGE = 2
EXIT_FAILURE = 1


def one_line(exc: BaseException) -> str:
    """An exception's message as one line for a person (the first non-empty line, capped)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def version() -> str:
    try:
        return metadata.version("engage")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")
    g = p.add_argument_group("where things are (flags override ENGAGE_* variables)")
    g.add_argument("--data-dir", help="data directory (ENGAGE_DATA_DIR, default ./.engage-data)")
    g.add_argument("--kafka-port", type=int, help="local Kafka port (ENGAGE_KAFKA_PORT, default 9092)")
    g.add_argument(
        "--bootstrap", dest="kafka_bootstrap", help="Kafka bootstrap servers (ENGAGE_KAFKA_BOOTSTRAP)"
    )
    g.add_argument(
        "--dsn",
        dest="clickhouse_dsn",
        help="ClickHouse DSN (ENGAGE_CLICKHOUSE_DSN, default chdb://DATA/clickhouse)",
    )
    g.add_argument("--gateway-port", type=int, help="gateway HTTP port (ENGAGE_GATEWAY_PORT, default 8080)")
    g.add_argument("--worker-port", type=int, help="worker HTTP port (ENGAGE_WORKER_PORT, default 6066)")


def settings_from(args: argparse.Namespace) -> Settings:
    keys = ("data_dir", "kafka_port", "kafka_bootstrap", "clickhouse_dsn", "gateway_port", "worker_port")
    return Settings.from_env(**{k: getattr(args, k, None) for k in (*keys, "api_tokens_file")})


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="engage", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"engage {version()}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="the whole local stack, with a synthetic demo feed; Ctrl-C stops it")
    run.add_argument("--no-demo", action="store_true", help="start the stack without the synthetic feed")
    run.add_argument("--rate", type=float, default=200.0, help="demo feed, events per second (default 200)")
    _common(run)

    demo = sub.add_parser("demo", help="feed a synthetic community, wait until stored, print a summary")
    demo.add_argument("--events", type=int, default=5000, help="about how many events (default 5000)")
    demo.add_argument("--seed", type=int, default=7)
    _common(demo)

    replay = sub.add_parser("replay", help="send a JSON Lines file of canonical events through Kafka")
    replay.add_argument("file", help="JSON Lines, one canonical event per line ('-' for stdin)")
    replay.add_argument(
        "--dry-run", action="store_true", help="validate every line and report; send nothing, need no Kafka"
    )
    _common(replay)

    mig = sub.add_parser("migrate", help="apply ClickHouse migrations (idempotent)")
    _common(mig)

    q = sub.add_parser("query", help="run read-only SQL on the configured ClickHouse")
    q.add_argument("sql")
    q.add_argument("--format", default="PrettyCompactMonoBlock", help="any ClickHouse output format")
    _common(q)

    bench = sub.add_parser("bench", help="measure the hot path on the local broker and print the numbers")
    bench.add_argument("--events", type=int, default=500_000, help="events in the topic (default 500,000)")
    bench.add_argument("--members", type=int, default=100_000, help="distinct members (default 100,000)")
    bench.add_argument("--communities", type=int, default=100, help="communities (default 100)")
    bench.add_argument("--baseline-events", type=int, default=100_000, help="events the Faust baseline reads")
    bench.add_argument("--json", action="store_true", help="print the results as JSON too")
    bench.add_argument("--no-scale", action="store_true", help="skip (8), the runs with 10x members and communities")
    _common(bench)

    sim = sub.add_parser("simulate", help="write a seeded simulated community (events and spam labels, JSON Lines)")
    sim.add_argument("--events", default="simulation-events.jsonl", help="events file to write")
    sim.add_argument("--labels", default="simulation-labels.jsonl", help="ground-truth labels file to write")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--communities", type=int, default=4)
    sim.add_argument("--members", default="2000",
                     help="members per community, or LO-HI: sizes drawn log-uniformly per community (10-10000)")
    sim.add_argument("--days", type=float, default=14.0)
    sim.add_argument("--spam", type=int, default=None,
                     help="planted spam profiles per community (default 24; with LO-HI, 1 per 40 members, 3-60)")
    sim.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")

    ev = sub.add_parser("eval-spam", help="compare spam flags in ClickHouse with a simulation's labels")
    ev.add_argument("labels", nargs="?", help="labels file written by `engage simulate` (not with --seeds)")
    ev.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ev.add_argument("--seeds", type=int, default=0,
                    help="instead: run the spam core in-process over this many simulated seeds, report the worst case")
    ev.add_argument("--first-seed", type=int, default=1001, help="with --seeds: the first seed (default 1001)")
    _common(ev)

    ch = sub.add_parser(
        "chaos", help="fault drills on a local stack of its own: kill -9, broker restart, two workers, outages"
    )
    ch.add_argument(
        "--scenario", action="append", help="kill9, kafka-restart, two-workers, moderation-kill, "
        "clickhouse-outage (repeatable; default: all)"
    )
    ch.add_argument("--events", type=int, default=3000, help="about how many events each scenario sends")
    ch.add_argument("--seed", type=int, default=1)
    ch.add_argument("--feed-seconds", type=float, default=40.0, help="each scenario's events spread over this long")
    ch.add_argument("--broker-down-seconds", type=float, default=30.0, help="kafka-restart: how long Kafka is down")
    ch.add_argument(
        "--clickhouse-down-seconds", type=float, default=60.0, help="clickhouse-outage: how long writes fail"
    )
    ch.add_argument("--json", action="store_true", help="one JSON object per scenario and line, no table")
    ch.add_argument("--keep", action="store_true", help="keep the drill's data directory (logs, stores)")

    gw = sub.add_parser("gateway", help="serve the HTTP gateway")
    _common(gw)
    wk = sub.add_parser("worker", help="run the Faust worker")
    wk.add_argument("--loglevel", default="warning")
    _common(wk)
    tp = sub.add_parser("topics", help="create the pipeline's Kafka topics (idempotent)")
    _common(tp)
    _token_parser(sub)

    fg = sub.add_parser("forget", help="forget a member of a community, everywhere (docs/privacy.md)")
    fg.add_argument("community", help="community id; its sub-communities (COMMUNITY/...) are covered too")
    fg.add_argument("member", help="member id as stored (the pseudonym when pseudonymization is on)")
    fg.add_argument("--reason", default="", help="why, for the audit record")
    fg.add_argument("--by", default="operator", help="who asks, for the audit record (default operator)")
    fg.add_argument(
        "--platform", help="MEMBER is a raw platform id: pseudonymize it as that platform's adapter does"
    )
    fg.add_argument("--wait", type=float, default=0.0, help="wait up to this many seconds until applied")
    _common(fg)

    cl = sub.add_parser("compact-log", help="copy engagement.events to a new topic without forgotten members")
    cl.add_argument("--to", required=True, help="the topic to write (new, or existing and empty)")
    cl.add_argument("--from", dest="source", default="engagement.events", help="the topic to read")
    _common(cl)
    return p


def _token_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    tok = sub.add_parser("token", help="create, list or revoke the gateway's API tokens (docs/security.md)")
    actions = tok.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new token, printed once as the last line")
    create.add_argument("--name", required=True, help="who holds it; recorded as the moderator of decisions")
    create.add_argument("--scope", action="append", required=True, choices=SCOPES, help="repeat for several")
    create.add_argument("--community", action="append", help="only these communities (repeat); default all")
    create.add_argument("--rate", type=float, help="events/s (default ENGAGE_API_RATE_PER_TOKEN)")
    create.add_argument("--burst", type=int, help="events at once (default ENGAGE_API_BURST_PER_TOKEN)")
    revoke = actions.add_parser("revoke", help="remove a token by name")
    revoke.add_argument("name")
    listing = actions.add_parser("list", help="the tokens' names, scopes and communities (never the tokens)")
    for p in (create, revoke, listing):
        p.add_argument(
            "--tokens-file", dest="api_tokens_file", help="ENGAGE_API_TOKENS_FILE (default DATA/api-tokens.json)"
        )
        _common(p)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    prog = f"engage {args.command}"
    try:
        settings = settings_from(args)
    except SystemExit as exc:  # an ENGAGE_* variable that does not parse
        if args.debug or not isinstance(exc.code, str):
            raise
        print(f"{prog}: {exc.code}", file=sys.stderr)
        return EXIT_USAGE
    from streams.embedded_sql import QueryError
    from streams.tools.commands import CommandError
    from streams.tools.local_stack import StackError

    try:
        return dispatch(args, settings)
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:  # a message for a person (Kafka did not answer, ...)
        if args.debug or not isinstance(exc.code, str):
            raise
        print(f"{prog}: {one_line(SystemExit(exc.code))}", file=sys.stderr)
        return EXIT_FAILURE
    except CommandError as exc:
        if args.debug:
            raise
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    except (StackError, QueryError) as exc:
        if args.debug:
            raise
        print(f"{prog}: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"{prog}: {type(exc).__name__}: {one_line(exc)} (run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    cmd = args.command
    if cmd == "worker":
        from streams.worker import run_worker

        sys.argv = [sys.argv[0]]  # Faust's worker reads argv; it must see none of ours
        run_worker(settings, loglevel=args.loglevel)
        return 0
    if cmd == "gateway":
        from streams.gateway import run_gateway

        return run_gateway(settings)
    if cmd == "topics":
        from streams.topics import ensure_topics

        created = ensure_topics(settings)
        print("created: " + (", ".join(created) if created else "nothing (all exist)"))
        return 0
    if cmd == "forget":
        from streams.tools.erasure_commands import forget_command

        return forget_command(
            settings, args.community, args.member, args.reason, args.by, args.platform, args.wait
        )
    if cmd == "compact-log":
        from streams.tools.erasure_commands import compact_log_command

        return compact_log_command(settings, args.to, args.source)
    if cmd == "migrate":
        from streams.tools.commands import migrate_command

        return migrate_command(settings)
    if cmd == "query":
        from streams.tools.commands import query_command

        return query_command(settings, args.sql, args.format)
    if cmd == "replay":
        from streams.tools.commands import replay_command

        return replay_command(settings, args.file, dry_run=args.dry_run)
    if cmd == "bench":
        import json

        from streams.tools.bench.run import report, run

        results = run(
            args.events, args.members, args.communities, args.baseline_events, settings, scale=not args.no_scale
        )
        print(report(results))
        if args.json:
            print(json.dumps(results))
        return 0
    if cmd == "simulate":
        from streams.tools.commands import simulate_command

        return simulate_command(
            args.events, args.labels, args.seed, args.communities, args.members, args.days, args.spam
        )
    if cmd == "eval-spam":
        if args.seeds:
            from streams.tools.spam_evaluation import seeds_command

            return seeds_command(args.seeds, args.first_seed, args.check)
        if not args.labels:
            print("eval-spam: give a labels file, or --seeds N to evaluate in-process", file=sys.stderr)
            return 2
        from streams.tools.commands import eval_spam_command

        return eval_spam_command(settings, args.labels, args.check)
    if cmd == "chaos":
        from streams.tools.chaos import SCENARIOS, Plan, chaos_command

        plan = Plan(
            events=args.events, seed=args.seed, feed_seconds=args.feed_seconds,
            broker_down_seconds=args.broker_down_seconds, clickhouse_down_seconds=args.clickhouse_down_seconds,
        )
        return chaos_command(settings, args.scenario or list(SCENARIOS), plan, args.json, args.keep)
    if cmd == "run":
        from streams.tools.commands import run_command

        return run_command(settings, demo=not args.no_demo, rate=args.rate)
    if cmd == "token":
        from streams.tools import token_command

        if args.token_action == "create":
            return token_command.token_create(
                settings, args.name, args.scope, args.community, args.rate, args.burst
            )
        if args.token_action == "revoke":
            return token_command.token_revoke(settings, args.name)
        return token_command.token_list(settings)
    if cmd == "demo":
        from streams.tools.commands import demo_command

        return demo_command(settings, events=args.events, seed=args.seed)
    raise AssertionError(cmd)


if __name__ == "__main__":
    sys.exit(main())
