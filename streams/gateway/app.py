"""The HTTP gateway: verify and validate, then produce canonical events to Kafka.

Endpoints: `POST /v1/events` (canonical events, one or an array), `POST
/webhooks/{platform}`, `POST /v1/moderation`, `GET /healthz`, `GET /readyz`,
`GET /metrics`, `GET /openapi.json`. Every refusal says what, where and why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError

from schemas.erasures import ErasureRecord, ErasureRequest, Source, record_for
from schemas.events import CanonicalEvent, FieldError, format_location
from schemas.outputs import ModerationDecision
from streams import metrics
from streams.api_tokens import ERASURE_WRITE, EVENTS_WRITE, MODERATION_WRITE, ApiToken
from streams.config import TOPIC_ERASURES, TOPIC_MODERATION, Settings
from streams.gateway.access import Access, Refusal
from streams.gateway.openapi import openapi_document
from streams.gateway.producer import EventProducer, KafkaUnavailable
from streams.webhooks import (
    PLATFORMS,
    Accepted,
    Forget,
    Handshake,
    Ignored,
    Rejected,
    WebhookConfig,
    handle_webhook,
)

log = logging.getLogger(__name__)

_ONE = TypeAdapter(CanonicalEvent)
_MANY = TypeAdapter(list[CanonicalEvent])
_MODERATION = TypeAdapter(ModerationDecision)
_ERASURE = TypeAdapter(ErasureRequest)
JSON_TYPES = ("application/json", "text/json", "application/x-ndjson", "")

Readiness = Callable[[], Awaitable[tuple[bool, str]]]


def problem(
    status: int,
    error: str,
    message: str,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    body.update(extra)
    all_headers = {"Retry-After": "5"} if status == 503 else {}
    all_headers.update(headers or {})
    return web.json_response(
        body, status=status, headers=all_headers or None, dumps=lambda o: orjson.dumps(o).decode()
    )


def refused(refusal: Refusal) -> web.Response:
    return problem(refusal.status, refusal.error, refusal.message, refusal.errors, headers=refusal.headers)


def named_by_token(parsed: Any, field: str, token: ApiToken, recorded: str, summary: str) -> web.Response | None:
    """422 when the body names someone else in `field`: who acts is the token's name."""
    if not isinstance(parsed, dict) or parsed.get(field, token.name) == token.name:
        return None
    error = FieldError(
        path=field,
        message=f"{recorded} are recorded under the token's name {token.name!r}; leave {field} out",
        kind=f"{field}_from_token",
    )
    return problem(422, "invalid", summary, [error])


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    return [
        FieldError(path=format_location(tuple(e["loc"]), prefix), message=e["msg"], kind=e["type"])
        for e in exc.errors(include_url=False)
    ]


# Past this magnitude a float no longer spells its integer exactly.
_EXACT_FLOAT_INTS = 2**53


def whole_floats_as_ints(value: Any) -> Any:
    """`2.0` as `2`: the same JSON number, an integer to JSON Schema (and our OpenAPI document)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_FLOAT_INTS:
        return int(value)
    if isinstance(value, list):
        return [whole_floats_as_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: whole_floats_as_ints(v) for k, v in value.items()}
    return value


def validate_events(body: bytes, parsed: Any) -> list[CanonicalEvent]:
    """The events in `body` (`parsed` is its JSON); raises pydantic's ValidationError."""
    try:
        return _MANY.validate_json(body) if isinstance(parsed, list) else [_ONE.validate_json(body)]
    except ValidationError as exc:
        if not any(e["type"] == "int_type" and isinstance(e["input"], float) for e in exc.errors()):
            raise
    # The strict models take an integer only as `2`; `2.0` is retried here, off the hot path.
    fixed = orjson.dumps(whole_floats_as_ints(parsed))
    return _MANY.validate_json(fixed) if isinstance(parsed, list) else [_ONE.validate_json(fixed)]


class Gateway:
    def __init__(
        self,
        settings: Settings,
        producer: EventProducer,
        clickhouse_ready: Readiness,
        access: Access | None = None,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.clickhouse_ready = clickhouse_ready
        self.webhooks = WebhookConfig.from_settings(settings)
        self.access = access or Access(settings)

    def _authorized(self, request: web.Request, scope: str, endpoint: str, platform: str) -> ApiToken | Refusal:
        """The caller's token, when it may use this endpoint and its bucket is not empty."""
        token = self.access.authenticate(request.headers.get("Authorization"), scope, endpoint, platform)
        if isinstance(token, Refusal):
            return token
        return self.access.token_exhausted(token, platform) or token

    async def _read_body(self, request: web.Request, platform: str) -> bytes | web.Response:
        """The whole body, or 413 as soon as it passes the limit (never buffered past it)."""
        limit = self.settings.max_request_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._too_large(platform)
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(1 << 16):
            size += len(chunk)
            if size > limit:
                return self._too_large(platform)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, platform: str) -> web.Response:
        metrics.count_rejected(platform, "too_large")
        return problem(
            413, "too_large", f"request body over {self.settings.max_request_bytes} bytes; split it"
        )

    async def _produce(self, platform: str, events: Sequence[CanonicalEvent]) -> web.Response | None:
        lines = [(e.community_id, e.model_dump_json(exclude_none=True).encode()) for e in events]
        try:
            await self.producer.send_events(lines)
        except KafkaUnavailable as exc:
            metrics.count_rejected(platform, "kafka_unavailable", outcome="unavailable")
            log.warning("Kafka unavailable: %s", exc)
            return problem(503, "kafka_unavailable", "Kafka cannot take events right now; retry later")
        metrics.EVENTS_PRODUCED.labels(platform).inc(len(events))
        return None

    async def post_events(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await self._post_events(request)
        finally:
            metrics.GATEWAY_LATENCY.labels("canonical").observe(time.perf_counter() - started)

    async def _post_events(self, request: web.Request) -> web.Response:
        platform = "canonical"
        token = self._authorized(request, EVENTS_WRITE, "events", platform)
        if isinstance(token, Refusal):
            return refused(token)
        body = await self._read_body(request, platform)
        if isinstance(body, web.Response):
            return body
        ctype = request.content_type if request.headers.get("Content-Type") else ""
        try:
            if ctype not in JSON_TYPES:
                raise ValueError(f"Content-Type {ctype!r} is not application/json")
            parsed = orjson.loads(body)
        except (orjson.JSONDecodeError, ValueError) as exc:
            metrics.count_rejected(platform, "not_json")
            return problem(415, "not_json", f"send UTF-8 JSON (one event or an array): {exc}")
        if isinstance(parsed, list):
            if len(parsed) > self.settings.max_batch_events:
                metrics.count_rejected(platform, "too_large")
                return problem(
                    413,
                    "too_many_events",
                    f"{len(parsed)} events in one request; at most {self.settings.max_batch_events}",
                )
            count = len(parsed)
        else:
            count = 1
        metrics.EVENTS_RECEIVED.labels(platform).inc(count)
        try:
            events = validate_events(body, parsed)
        except ValidationError as exc:
            metrics.count_rejected(platform, "invalid", count)
            errors = field_errors(exc)
            return problem(
                422, "invalid", f"{len(errors)} problem(s); nothing from this request was accepted", errors
            )
        if not events:
            metrics.GATEWAY_DELIVERIES.labels(platform, "accepted").inc()
            return web.json_response({"accepted": 0}, status=202)
        single = not isinstance(parsed, list)
        refusal = (
            self.access.communities(token, [e.community_id for e in events], "events", platform, single)
            or self.access.event_times([e.occurred_at.timestamp() for e in events], "occurred_at", platform, single)
            or self.access.token_budget(token, len(events), platform)
        )
        if refusal is not None:
            return refused(refusal)
        failure = await self._produce(platform, events)
        if failure is not None:
            return failure
        metrics.GATEWAY_DELIVERIES.labels(platform, "accepted").inc()
        return web.json_response({"accepted": len(events)}, status=202)

    async def post_webhook(self, request: web.Request) -> web.StreamResponse:
        platform = request.match_info["platform"]
        label = platform if platform in PLATFORMS else "unknown"
        started = time.perf_counter()
        try:
            return await self._post_webhook(request, platform, label)
        finally:
            metrics.GATEWAY_LATENCY.labels(label).observe(time.perf_counter() - started)

    async def _post_webhook(self, request: web.Request, platform: str, label: str) -> web.Response:
        if platform not in PLATFORMS:
            return problem(
                404, "unknown_platform", f"no webhook adapter for {platform!r}; use one of {PLATFORMS}"
            )
        body = await self._read_body(request, label)
        if isinstance(body, web.Response):
            return body
        result = handle_webhook(platform, dict(request.headers), body, time.time(), self.webhooks)
        if isinstance(result, Rejected):
            metrics.count_rejected(label, result.reason)
            errors = (
                [FieldError(path=result.path, message=result.reason, kind=result.reason)]
                if result.path
                else []
            )
            return problem(result.status, result.reason, result.detail or result.reason, errors)
        if isinstance(result, Handshake):
            metrics.GATEWAY_DELIVERIES.labels(label, "handshake").inc()
            return web.Response(status=result.status, body=result.body, content_type=result.content_type)
        if isinstance(result, Forget):
            request_ = ErasureRequest(
                community_id=result.community_id,
                member_id=result.member_id,
                reason=result.reason,
                requested_by=f"{label} webhook",
            )
            source: Source = f"webhook:{label}"  # type: ignore[assignment]
            record = record_for(request_, source, datetime.now(UTC))
            failure = await self._produce_erasure(record)
            if failure is not None:
                return failure
            metrics.GATEWAY_DELIVERIES.labels(label, "accepted").inc()
            return web.json_response({"forgotten": 1, "erasure_id": record.erasure_id}, status=200)
        if isinstance(result, Ignored):
            metrics.GATEWAY_IGNORED.labels(label).inc()
            if result.unmapped is not None:
                metrics.GATEWAY_UNMAPPED.labels(label, result.unmapped).inc()
            metrics.GATEWAY_DELIVERIES.labels(label, "ignored").inc()
            return web.json_response({"ignored": result.reason}, status=200)
        assert isinstance(result, Accepted)
        metrics.EVENTS_RECEIVED.labels(label).inc(len(result.events))
        if result.events:
            single = len(result.events) == 1
            times = [e.occurred_at.timestamp() for e in result.events]
            refusal = self.access.event_times(times, "occurred_at", label, single) or self.access.community_budget(
                label, [e.community_id for e in result.events]
            )
            if refusal is not None:
                return refused(refusal)
            failure = await self._produce(label, result.events)
            if failure is not None:
                return failure
        metrics.GATEWAY_DELIVERIES.labels(label, "accepted").inc()
        return web.json_response({"accepted": len(result.events)}, status=200)

    async def post_moderation(self, request: web.Request) -> web.Response:
        platform = "moderation"
        token = self._authorized(request, MODERATION_WRITE, "moderation", platform)
        if isinstance(token, Refusal):
            return refused(token)
        body = await self._read_body(request, platform)
        if isinstance(body, web.Response):
            return body
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            metrics.count_rejected(platform, "not_json")
            return problem(415, "not_json", f"send a JSON object: {exc}")
        # Who decided is the token's name, never a name the caller chooses.
        other = named_by_token(parsed, "moderator", token, "decisions", "1 problem(s) in the decision")
        if other is not None:
            metrics.count_rejected(platform, "invalid")
            return other
        if isinstance(parsed, dict):
            body = orjson.dumps({**parsed, "moderator": token.name})
        try:
            decision = _MODERATION.validate_json(body)
        except ValidationError as exc:
            metrics.count_rejected(platform, "invalid")
            errors = field_errors(exc)
            return problem(422, "invalid", f"{len(errors)} problem(s) in the decision", errors)
        decision = decision.keyed()  # deterministic: a client retrying it does not make a second one
        refusal = (
            self.access.communities(token, [decision.community_id], "moderation", platform, single=True)
            or self.access.event_times([decision.decided_at.timestamp()], "decided_at", platform, single=True)
            or self.access.token_budget(token, 1, platform)
        )
        if refusal is not None:
            return refused(refusal)
        try:
            await self.producer.send_all(
                TOPIC_MODERATION, [(decision.community_id.encode(), decision.model_dump_json().encode())]
            )
        except KafkaUnavailable:
            metrics.count_rejected(platform, "kafka_unavailable", outcome="unavailable")
            return problem(503, "kafka_unavailable", "Kafka cannot take the decision right now; retry later")
        metrics.GATEWAY_DELIVERIES.labels(platform, "accepted").inc()
        return web.json_response({"accepted": 1, "decision_id": decision.decision_id}, status=202)

    async def post_erasures(self, request: web.Request) -> web.Response:
        """Forget a member (docs/privacy.md): a token with scope `erasure:write` (and the community,
        if the token lists communities); the token's name is recorded as who asked."""
        platform = "erasures"
        token = self._authorized(request, ERASURE_WRITE, "erasures", platform)
        if isinstance(token, Refusal):
            return refused(token)
        body = await self._read_body(request, platform)
        if isinstance(body, web.Response):
            return body
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return problem(415, "not_json", f"send a JSON object: {exc}")
        other = named_by_token(parsed, "requested_by", token, "erasures", "who asks is the token's name")
        if other is not None:
            return other
        try:
            erasure = _ERASURE.validate_json(body)
        except ValidationError as exc:
            errors = field_errors(exc)
            return problem(422, "invalid", f"{len(errors)} problem(s) in the erasure request", errors)
        wrong = self.access.communities(token, [erasure.community_id], "erasures", platform, single=True)
        if wrong is not None:
            return refused(wrong)
        erasure = erasure.model_copy(update={"requested_by": token.name})
        record = record_for(erasure, "api", datetime.now(UTC))
        failure = await self._produce_erasure(record)
        if failure is not None:
            return failure
        return web.json_response(
            {
                "accepted": 1,
                "erasure_id": record.erasure_id,
                "member_key": record.member_key,
                "erased_at": record.erased_at.isoformat(),
            },
            status=202,
        )

    async def _produce_erasure(self, record: ErasureRecord) -> web.Response | None:
        try:
            await self.producer.send_to_every_partition(
                TOPIC_ERASURES, record.topic_key, record.model_dump_json().encode()
            )
        except KafkaUnavailable:
            return problem(503, "kafka_unavailable", "Kafka cannot take the erasure right now; retry later")
        metrics.ERASURES_REQUESTED.labels(record.source).inc()
        return None

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, request: web.Request) -> web.Response:
        (k_ok, k_why), (c_ok, c_why) = await asyncio.gather(self.producer.ready(), self.clickhouse_ready())
        body = {"ok": k_ok and c_ok, "kafka": k_why, "clickhouse": c_why, "instance": self.settings.instance_id}
        return web.json_response(body, status=200 if k_ok and c_ok else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest())
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())


def build_app(
    settings: Settings, producer: EventProducer, clickhouse_ready: Readiness, access: Access | None = None
) -> web.Application:
    gw = Gateway(settings, producer, clickhouse_ready, access)
    app = web.Application(client_max_size=settings.max_request_bytes + 1024)
    app.add_routes(
        [
            web.post("/v1/events", gw.post_events),
            web.post("/webhooks/{platform}", gw.post_webhook),
            web.post("/v1/moderation", gw.post_moderation),
            web.post("/v1/erasures", gw.post_erasures),
            web.get("/healthz", gw.healthz),
            web.get("/readyz", gw.readyz),
            web.get("/metrics", gw.metrics_page),
            web.get("/openapi.json", gw.openapi),
        ]
    )

    async def _close(_: web.Application) -> None:
        await producer.close()

    app.on_cleanup.append(_close)
    return app
