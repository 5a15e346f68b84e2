"""What `handle_webhook` answers: accepted events, a handshake, an ignored delivery or a rejection.

The gateway turns these into HTTP responses and metrics. `Rejected.reason` is a
metric label, so it is always one of `REASONS`; the human-readable story goes in
`detail` (never a secret, never comment text).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import CanonicalEvent

BAD_SIGNATURE = "bad_signature"
STALE_TIMESTAMP = "stale_timestamp"
NOT_JSON = "not_json"
INVALID = "invalid"
UNKNOWN_PLATFORM = "unknown_platform"
NO_SECRET = "no_secret"
REASONS = frozenset({BAD_SIGNATURE, STALE_TIMESTAMP, NOT_JSON, INVALID, UNKNOWN_PLATFORM, NO_SECRET})


@dataclass(frozen=True)
class Accepted:
    """A verified delivery and the canonical events it maps to (one or more)."""

    events: list[CanonicalEvent]


@dataclass(frozen=True)
class Handshake:
    """A verified setup request (challenge, ping): answer it exactly like this."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Ignored:
    """A verified delivery of a kind the pipeline does not use, or in a shape it cannot map: answer 200.

    `unmapped` is the path of the required field the delivery lacks (a bounded metric label:
    paths are spelled in the adapters' code); None for a kind we do not use.
    """

    reason: str
    unmapped: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A delivery refused with `status`; `reason` is one of `REASONS`, `path` names the bad field."""

    status: int
    reason: str
    path: str | None = None
    detail: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"Rejected.reason {self.reason!r} is not one of {sorted(REASONS)}")


@dataclass(frozen=True)
class Forget:
    """A verified deletion of a member on the platform: forget them (docs/privacy.md).

    `member_id` is the stored form (pseudonymized when configured); `community_id` is the
    platform-level community, whose erasure covers its channels or categories too."""

    community_id: str
    member_id: str
    reason: str


WebhookResult = Accepted | Handshake | Ignored | Rejected | Forget
