"""Pure data models of the pipeline: what travels on the wire. Imports nothing of ours."""

from schemas.events import (
    SCHEMA_VERSION,
    ActorRole,
    CanonicalEvent,
    EventType,
    FieldError,
    JoinSource,
    format_location,
)
from schemas.outputs import ModerationAction, ModerationDecision, SpamFlag, SpamStatus, Tier, TierChange

__all__ = [
    "SCHEMA_VERSION",
    "ActorRole",
    "CanonicalEvent",
    "EventType",
    "FieldError",
    "JoinSource",
    "ModerationAction",
    "ModerationDecision",
    "SpamFlag",
    "SpamStatus",
    "Tier",
    "TierChange",
    "format_location",
]
