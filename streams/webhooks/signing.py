"""Signature and replay-window checks shared by the platform adapters.

Each check returns None when the delivery passes, else the `Rejected` to answer.
The signature is checked before the timestamp, so a forged request reads as
`bad_signature` and `stale_timestamp` always means "genuinely signed, but old".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streams.webhooks.config import Secret
from streams.webhooks.results import BAD_SIGNATURE, STALE_TIMESTAMP, Rejected

# Timestamps above this are milliseconds (Bettermode's Tribe heritage); below, seconds.
_MILLIS_THRESHOLD = 100_000_000_000


def any_secret_matches(secrets: Sequence[Secret], message: bytes, provided_hex: str) -> bool:
    """Whether any accepted secret (rotation: old and new) produced `provided_hex` over `message`."""
    matched = False
    for secret in secrets:  # no early exit: every secret is tried whatever the outcome
        matched = secret.matches(message, provided_hex) or matched
    return matched


def check_prefixed_hmac(
    headers: Mapping[str, str],
    header: str,
    prefix: str,
    secrets: Sequence[Secret],
    message: bytes,
) -> Rejected | None:
    """`header` must be `prefix` + hex HMAC-SHA256 of `message` under one of `secrets`."""
    provided = headers.get(header.lower())
    if not provided:
        return Rejected(401, BAD_SIGNATURE, None, f"the {header} header is missing: is a secret set on the webhook?")
    if not provided.startswith(prefix):
        return Rejected(401, BAD_SIGNATURE, None, f"the {header} header does not start with {prefix!r}")
    if not any_secret_matches(secrets, message, provided[len(prefix) :]):
        return Rejected(
            401, BAD_SIGNATURE, None, f"{header} matches none of the configured secrets: compare the secrets"
        )
    return None


def parse_timestamp(raw: str | None, header: str) -> tuple[float | None, Rejected | None]:
    """The request time in Unix seconds from a seconds- or milliseconds-valued header."""
    if not raw or not raw.strip().isdigit():
        return None, Rejected(401, BAD_SIGNATURE, None, f"the {header} header is missing or not an integer")
    value = int(raw.strip())
    return (value / 1000 if value >= _MILLIS_THRESHOLD else float(value)), None


def check_window(sent_at: float, now: float, window_seconds: float, header: str) -> Rejected | None:
    """The request must have been signed within `window_seconds` of `now` (either direction: clock skew)."""
    age = now - sent_at
    if abs(age) > window_seconds:
        when = f"{age:.0f}s old" if age > 0 else f"{-age:.0f}s in the future"
        return Rejected(
            401,
            STALE_TIMESTAMP,
            None,
            f"{header} is {when}, outside the {window_seconds:.0f}s replay window: "
            "a replayed request, or a clock out of sync",
        )
    return None


def check_timestamped_hmac(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[Secret],
    now: float,
    *,
    timestamp_header: str,
    signature_header: str,
    prefix: str,
    version: bytes,
    window_seconds: float,
) -> Rejected | None:
    """Slack's and Bettermode's scheme: `signature_header` is `prefix` + hex HMAC-SHA256 of
    `version` + timestamp + `:` + body, and the timestamp must be inside the replay window."""
    raw_ts = headers.get(timestamp_header.lower())
    sent_at, bad = parse_timestamp(raw_ts, timestamp_header)
    if bad is not None or sent_at is None or raw_ts is None:
        return bad
    message = version + raw_ts.strip().encode() + b":" + body
    return check_prefixed_hmac(headers, signature_header, prefix, secrets, message) or check_window(
        sent_at, now, window_seconds, timestamp_header
    )
