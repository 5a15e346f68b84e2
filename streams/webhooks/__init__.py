"""Platform webhooks to canonical events: pure functions, no HTTP server, no Kafka.

The gateway calls `handle_webhook` for `POST /webhooks/{platform}` and turns the
result into a response (see docs/webhooks.md for status codes and setup):

1. unknown platform                               -> Rejected(404, unknown_platform)
2. peek at the (unverified) payload for the community, only to pick its secrets
   (a community may have its own); no secret at all    -> Rejected(503, no_secret)
3. signature, then replay window (Slack, Bettermode)   -> Rejected(401, bad_signature | stale_timestamp)
4. body is not a JSON object (nor `payload=<json>`)    -> Rejected(415, not_json)
5. handshake (challenge, ping)                         -> Handshake(status, body, content_type)
   a kind of event the pipeline does not use          -> Ignored(why)
   a required field absent: a shape we cannot map     -> Ignored(why, unmapped=path) (a 4xx would only
                                                         make the platform retry what can never map)
   a required field out of shape (type, format)       -> Rejected(422, invalid, path)
   a platform's deletion of a member                  -> Forget(community, member)
   otherwise                                          -> Accepted([CanonicalEvent, ...])
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.events import CanonicalEvent, format_location
from streams.webhooks.adapter import Adapter
from streams.webhooks.bettermode import BettermodeAdapter
from streams.webhooks.canonical import Context, build
from streams.webhooks.config import PLATFORMS, Secret, WebhookConfig
from streams.webhooks.discourse import DiscourseAdapter
from streams.webhooks.github import GitHubAdapter
from streams.webhooks.payload import MappingError, decode_body
from streams.webhooks.results import (
    BAD_SIGNATURE,
    INVALID,
    NO_SECRET,
    NOT_JSON,
    REASONS,
    STALE_TIMESTAMP,
    UNKNOWN_PLATFORM,
    Accepted,
    Forget,
    Handshake,
    Ignored,
    Rejected,
    WebhookResult,
)
from streams.webhooks.slack import SlackAdapter

__all__ = [
    "BAD_SIGNATURE",
    "INVALID",
    "NOT_JSON",
    "NO_SECRET",
    "PLATFORMS",
    "REASONS",
    "STALE_TIMESTAMP",
    "UNKNOWN_PLATFORM",
    "Accepted",
    "Forget",
    "Handshake",
    "Ignored",
    "Rejected",
    "Secret",
    "WebhookConfig",
    "WebhookResult",
    "handle_webhook",
]

ADAPTERS: Mapping[str, Adapter] = {
    "slack": SlackAdapter(),
    "discourse": DiscourseAdapter(),
    "github": GitHubAdapter(),
    "bettermode": BettermodeAdapter(),
}


def handle_webhook(
    platform: str, headers: Mapping[str, str], body: bytes, now: float, config: WebhookConfig
) -> WebhookResult:
    """Verify one delivery and map it; `now` is the request time in Unix seconds."""
    adapter = ADAPTERS.get(platform)
    if adapter is None:
        return Rejected(
            404,
            UNKNOWN_PLATFORM,
            None,
            f"no webhook adapter for {platform[:40]!r}; use one of {', '.join(ADAPTERS)}",
        )
    lowered = {name.lower(): value for name, value in headers.items()}
    payload = decode_body(body)
    scopes = adapter.secret_scopes(payload, lowered) if payload is not None else ()
    secrets = config.secrets_for(platform, scopes)
    if not secrets:
        return Rejected(
            503,
            NO_SECRET,
            None,
            f"no secret is configured for {platform}: set ENGAGE_WEBHOOK_SECRET_{platform.upper()} "
            "or add it to the secrets file",
        )
    rejected = adapter.verify(lowered, body, secrets, now)
    if rejected is not None:
        return rejected
    if payload is None:
        return Rejected(
            415, NOT_JSON, None, "the body is not a JSON object (nor a form field payload=<json>)"
        )
    ctx = Context(platform, config, datetime.fromtimestamp(now, tz=UTC))
    try:
        outcome = adapter.map(payload, lowered, ctx)
    except MappingError as exc:
        if exc.missing:
            return Ignored(f"{platform} payload has no {exc.path}: a shape we cannot map", unmapped=exc.path)
        return Rejected(422, INVALID, exc.path, f"{platform} payload: {exc}")
    if isinstance(outcome, Handshake | Ignored | Forget):
        return outcome
    events: list[CanonicalEvent] = []
    for draft in outcome:
        try:
            events.append(build(ctx, draft))
        except ValidationError as exc:
            first = exc.errors()[0]
            path = format_location(tuple(first["loc"]))
            # pydantic's message only, never the input: it could be comment text.
            return Rejected(422, INVALID, path, f"{platform} event field {path}: {first['msg']}")
    return Accepted(events)
