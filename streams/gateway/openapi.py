"""The gateway's OpenAPI 3.1 description, built from the same pydantic models it validates with."""

from __future__ import annotations

from functools import cache
from typing import Any

from schemas.events import CanonicalEvent, FieldError
from schemas.outputs import ModerationDecision


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
        "422": _problem("invalid: every violation with its field path; nothing was accepted"),
        "503": _problem("Kafka cannot take events now; retry after Retry-After seconds"),
    }
    ok = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
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
                                "enum": ["slack", "discourse", "github", "bettermode"],
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
                        **common_errors,
                    },
                }
            },
            "/v1/moderation": {
                "post": {
                    "summary": "A moderator confirms or clears a spam flag",
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
        "components": {"schemas": schemas},
    }
