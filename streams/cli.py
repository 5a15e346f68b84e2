"""`engage`: one obvious way to run every part of the pipeline.

Flags override `ENGAGE_*` variables, which override the defaults in streams/config.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.config import Settings


def _common(p: argparse.ArgumentParser) -> None:
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
    return Settings.from_env(**{k: getattr(args, k, None) for k in keys})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="engage", description=__doc__.splitlines()[0] if __doc__ else None)
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

    ev = sub.add_parser("eval-spam", help="compare spam flags in ClickHouse with a simulation's labels")
    ev.add_argument("labels", nargs="?", help="labels file written by `engage simulate` (not with --seeds)")
    ev.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ev.add_argument("--seeds", type=int, default=0,
                    help="instead: run the spam core in-process over this many simulated seeds, report the worst case")
    ev.add_argument("--first-seed", type=int, default=1001, help="with --seeds: the first seed (default 1001)")
    _common(ev)

    gw = sub.add_parser("gateway", help="serve the HTTP gateway")
    _common(gw)
    wk = sub.add_parser("worker", help="run the Faust worker")
    wk.add_argument("--loglevel", default="warning")
    _common(wk)
    tp = sub.add_parser("topics", help="create the pipeline's Kafka topics (idempotent)")
    _common(tp)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings_from(args)
    cmd = args.command
    if cmd == "worker":
        from streams.worker import run_worker

        sys.argv = [sys.argv[0]]  # Faust's worker reads argv; it must see none of ours
        run_worker(settings, loglevel=args.loglevel)
        return 0
    if cmd == "gateway":
        from streams.gateway import run_gateway

        run_gateway(settings)
        return 0
    if cmd == "topics":
        from streams.topics import ensure_topics

        created = ensure_topics(settings)
        print("created: " + (", ".join(created) if created else "nothing (all exist)"))
        return 0
    if cmd == "migrate":
        from streams.commands import migrate_command

        return migrate_command(settings)
    if cmd == "query":
        from streams.commands import query_command

        return query_command(settings, args.sql, args.format)
    if cmd == "replay":
        from streams.commands import replay_command

        return replay_command(settings, args.file)
    if cmd == "bench":
        import json

        from streams.benchmark import report, run

        results = run(args.events, args.members, args.communities, args.baseline_events, settings)
        print(report(results))
        if args.json:
            print(json.dumps(results))
        return 0
    if cmd == "simulate":
        from streams.commands import simulate_command

        return simulate_command(
            args.events, args.labels, args.seed, args.communities, args.members, args.days, args.spam
        )
    if cmd == "eval-spam":
        if args.seeds:
            from streams.spam.evaluation import seeds_command

            return seeds_command(args.seeds, args.first_seed, args.check)
        if not args.labels:
            print("eval-spam: give a labels file, or --seeds N to evaluate in-process", file=sys.stderr)
            return 2
        from streams.commands import eval_spam_command

        return eval_spam_command(settings, args.labels, args.check)
    if cmd == "run":
        from streams.commands import run_command

        return run_command(settings, demo=not args.no_demo, rate=args.rate)
    if cmd == "demo":
        from streams.commands import demo_command

        return demo_command(settings, events=args.events, seed=args.seed)
    raise AssertionError(cmd)


if __name__ == "__main__":
    sys.exit(main())
