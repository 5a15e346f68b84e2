"""The gateway's OpenAPI 3.1 description, built from the same pydantic models it validates with."""

from __future__ import annotations

from functools import cache
from typing import Any

from schemas.events import CanonicalEvent, FieldError
from schemas.outputs import ModerationDecision
from streams.webhooks.config import PLATFORMS


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _type_rules() -> list[dict[str, Any]]:
    """`CanonicalEvent`'s cross-field rules (its `_fields_fit_the_type` validator), which pydantic
    leaves out of the schema: without them the document admits events the gateway refuses."""
    no_comment_fields = {"content_fingerprint": {"type": "null"}, "link_count": {"const": 0}}
    return [
        {
            "properties": {
                "type": {"const": "join"},
                "join_source": {"$ref": "#/components/schemas/JoinSource"},
                **no_comment_fields,
            },
            "required": ["join_source"],
        },
        {"properties": {"type": {"const": "comment"}, "join_source": {"type": "null"}}},
        {
            "properties": {
                "type": {"enum": ["like", "share"]},
                "join_source": {"type": "null"},
                **no_comment_fields,
            }
        },
    ]


@cache
def openapi_document() -> dict[str, Any]:
    event_schema = CanonicalEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    event_schema["oneOf"] = _type_rules()
    defs = event_schema.pop("$defs", {})
    moderation = ModerationDecision.model_json_schema(ref_template="#/components/schemas/{model}")
    defs.update(moderation.pop("$defs", {}))
    # Who decided is the token's name, set by the gateway: a request does not name a moderator.
    moderation["properties"].pop("moderator")
    moderation["required"] = [f for f in moderation["required"] if f != "moderator"]
    moderation["description"] = (
        "A moderator's decision on a spam flag. The gateway records the API token's name as the moderator."
    )
    field_error = FieldError.model_json_schema()
    schemas: dict[str, Any] = {
        **defs,
        "CanonicalEvent": event_schema,
        "ModerationDecision": moderation,
        "FieldError": field_error,
        "Problem": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "description": "machine-readable reason"},
                "message": {"type": "string", "description": "what happened and what to do"},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            },
        },
    }
    common_errors = {
        "413": _problem("body over 1 MiB, or more than 1,000 events"),
        "415": _problem("the body is not JSON"),
        "422": _problem(
            "invalid, or an event time out of bounds: every violation with its field path; nothing was accepted"
        ),
        "503": _problem("Kafka cannot take events now; retry after Retry-After seconds"),
    }
    ok = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    token_errors = {
        "401": _problem("no token, or an unknown or revoked one (send Authorization: Bearer <token>)"),
        "403": _problem("the token lacks the endpoint's scope, or may not write to an event's community"),
        "429": _problem("over the token's rate limit; retry after Retry-After seconds"),
    }
    event_time = (
        "occurred_at (decided_at) must not be more than ENGAGE_EVENT_TIME_MAX_SKEW_SECONDS (300) ahead of "
        "the gateway's clock, nor before ENGAGE_EVENT_TIME_FLOOR (2000-01-01): otherwise 422."
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "engage gateway",
            "version": "1",
            "description": "Verifies and validates engagement events and publishes them to Kafka.",
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Accept one canonical event or an array of up to 1,000",
                    "description": "Needs a token with scope events:write. " + event_time,
                    "security": [{"bearerToken": ["events:write"]}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/CanonicalEvent"},
                                        {
                                            "type": "array",
                                            "maxItems": 1000,
                                            "items": {"$ref": "#/components/schemas/CanonicalEvent"},
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            {"type": "object", "properties": {"accepted": {"type": "integer"}}},
                            "all events acknowledged by Kafka",
                        ),
                        **common_errors,
                        **token_errors,
                    },
                }
            },
            "/webhooks/{platform}": {
                "post": {
                    "summary": "A platform's signed webhook delivery",
                    "parameters": [
                        {
                            "name": "platform",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "enum": list(PLATFORMS),
                            },
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                        },
                    },
                    "responses": {
                        "200": {"description": "accepted, ignored, or a handshake answered"},
                        "401": _problem("bad or missing signature, or outside the replay window"),
                        "404": _problem("unknown platform"),
                        "429": _problem("over the platform community's rate limit; retry after Retry-After"),
                        **common_errors,
                    },
                }
            },
            "/v1/moderation": {
                "post": {
                    "summary": "A moderator confirms or clears a spam flag",
                    "description": "Needs a token with scope moderation:write; its name is recorded as the "
                    "moderator. " + event_time,
                    "security": [{"bearerToken": ["moderation:write"]}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ModerationDecision"}
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "accepted": {"type": "integer"},
                                    "decision_id": {"type": "string"},
                                },
                            },
                            "decision acknowledged by Kafka",
                        ),
                        **common_errors,
                        **token_errors,
                    },
                }
            },
            "/healthz": {
                "get": {"summary": "The process is alive", "responses": {"200": _json(ok, "alive")}}
            },
            "/readyz": {
                "get": {
                    "summary": "Kafka and ClickHouse are reachable",
                    "responses": {"200": _json(ok, "ready"), "503": _json(ok, "not ready, with reasons")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {"description": "text exposition format", "content": {"text/plain": {}}}
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `engage token create` (docs/security.md).",
                }
            },
        },
    }
