"""The HTTP gateway: webhooks and canonical events in, Kafka out."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from streams.api_tokens import TokenError, read_table
from streams.config import Settings
from streams.embedded_sql import ping
from streams.gateway.app import build_app
from streams.gateway.producer import EventProducer


def run_gateway(settings: Settings) -> None:
    """Serve the gateway until SIGINT/SIGTERM."""
    try:
        tokens = read_table(settings.tokens_path)
    except TokenError as exc:
        raise SystemExit(f"gateway: {exc}; fix or remove it (engage token create writes a new one)") from exc
    if not tokens.tokens:
        logging.getLogger(__name__).warning(
            "no API tokens in %s: /v1/events and /v1/moderation refuse every request until "
            "`engage token create` adds one (webhooks are unaffected)",
            settings.tokens_path,
        )
    producer = EventProducer(settings.bootstrap, envelope_limits=settings.envelope_limits())

    async def clickhouse_ready() -> tuple[bool, str]:
        return await asyncio.to_thread(ping, settings)

    app = build_app(settings, producer, clickhouse_ready)
    web.run_app(app, host=settings.gateway_host, port=settings.gateway_port, print=None, access_log=None)
