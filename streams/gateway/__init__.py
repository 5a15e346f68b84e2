"""The HTTP gateway: webhooks and canonical events in, Kafka out.

`run_gateway` serves until SIGINT, SIGTERM or SIGHUP, then stops within
`shutdown_seconds` whatever Kafka's state: it stops listening, lets requests in
flight finish (each waits at most the producer's timeout for Kafka's
acknowledgement), closes the producer, and exits 0; if that does not finish in
time it exits `EXIT_ABANDONED` (see streams/shutdown.py).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from streams.api_tokens import TokenError, read_table
from streams.config import Settings
from streams.embedded_sql import ping
from streams.gateway.app import build_app
from streams.gateway.producer import EventProducer
from streams.shutdown import EXIT_ABANDONED, EXIT_OK, STOP_SIGNALS, StopDeadline

log = logging.getLogger(__name__)


def run_gateway(settings: Settings) -> int:
    """Serve the gateway until asked to stop; the process exit code."""
    try:
        tokens = read_table(settings.tokens_path)
    except TokenError as exc:
        raise SystemExit(f"gateway: {exc}; fix or remove it (engage token create writes a new one)") from exc
    if not tokens.tokens:
        log.warning(
            "no API tokens in %s: /v1/events and /v1/moderation refuse every request until "
            "`engage token create` adds one (webhooks are unaffected)",
            settings.tokens_path,
        )
    deadline = StopDeadline("gateway", settings.shutdown_seconds)
    return asyncio.run(_serve(settings, deadline))


async def _serve(settings: Settings, deadline: StopDeadline) -> int:
    producer = EventProducer(settings.bootstrap, envelope_limits=settings.envelope_limits())

    async def clickhouse_ready() -> tuple[bool, str]:
        return await asyncio.to_thread(ping, settings)

    app = build_app(settings, producer, clickhouse_ready)
    # requests in flight get most of the budget; closing the producer the rest
    drain_s = max(0.5, settings.shutdown_seconds * 0.5)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=drain_s)
    await runner.setup()
    site = web.TCPSite(runner, settings.gateway_host, settings.gateway_port, shutdown_timeout=drain_s)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    deadline.install_signal_handlers()  # after the loop's: a busy loop cannot delay the clock
    await stop.wait()
    try:
        await asyncio.wait_for(runner.cleanup(), max(1.0, settings.shutdown_seconds - 1.0))
    except TimeoutError:
        print(
            f"gateway: could not stop cleanly within {settings.shutdown_seconds:g}s (Kafka unreachable?); "
            f"exiting with {EXIT_ABANDONED}, unacknowledged requests are retried by their senders",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_ABANDONED
    return EXIT_OK
