"""Webhook secrets, pseudonymization key and community granularity, built once from `Settings`.

Secrets come from `ENGAGE_WEBHOOK_SECRET_<PLATFORM>` (comma-separated, for rotation)
and/or the JSON file named by `ENGAGE_WEBHOOK_SECRETS_FILE`:

    {
      "platforms":   {"slack": ["new-secret", "old-secret"], "github": "one-secret"},
      "communities": {"discourse": {"forum.example.com": ["its-own-secret"]},
                      "github":    {"acme": ["org-hook-secret"], "acme/widgets": ["repo-hook-secret"]}}
    }

Every listed secret is accepted (old and new during a rotation). A community with
its own list accepts only that list, not the platform's. No secret is ever logged
or shown by `repr`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn, cast

from streams.config import Settings

PLATFORMS = ("slack", "discourse", "github", "bettermode")
GRANULARITIES = ("platform", "channel")
ENV_PREFIX = "ENGAGE_WEBHOOK_SECRET_"

Granularity = Literal["platform", "channel"]


class Secret:
    """A signing key that can sign but never shows itself (repr, str, logs, tracebacks)."""

    __slots__ = ("_key",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a webhook secret must not be empty")
        self._key = value.encode()

    def hex_hmac(self, message: bytes) -> str:
        """Hex HMAC-SHA256 of `message` under this secret."""
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def matches(self, message: bytes, provided_hex: str) -> bool:
        """Whether `provided_hex` is this secret's HMAC-SHA256 of `message` (constant-time compare)."""
        return hmac.compare_digest(self.hex_hmac(message).encode(), provided_hex.strip().lower().encode())

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


def _secrets(values: Iterable[str]) -> tuple[Secret, ...]:
    seen: list[str] = []
    for value in values:
        value = value.strip()
        if value and value not in seen:
            seen.append(value)
    return tuple(Secret(v) for v in seen)


def _as_list(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return cast(list[str], value)
    raise ValueError(f"{where} must be a secret string or a list of them, not {type(value).__name__}")


def _check_platform(name: str, where: str) -> str:
    if name not in PLATFORMS:
        raise ValueError(f"{where}: unknown platform {name!r}; expected one of {', '.join(PLATFORMS)}")
    return name


def _check_granularity(value: str) -> Granularity:
    if value not in GRANULARITIES:
        raise ValueError(f"ENGAGE_COMMUNITY_GRANULARITY={value!r} is not valid: use 'platform' or 'channel'")
    return cast(Granularity, value)


@dataclass(frozen=True, repr=False)
class WebhookConfig:
    """Which secrets each platform (and community) signs with, and how events are shaped."""

    platform_secrets: Mapping[str, tuple[Secret, ...]] = field(default_factory=dict)
    community_secrets: Mapping[tuple[str, str], tuple[Secret, ...]] = field(default_factory=dict)
    pseudonymize_key: Secret | None = None
    community_granularity: Granularity = "platform"

    def __post_init__(self) -> None:
        _check_granularity(self.community_granularity)

    @classmethod
    def from_secrets(
        cls,
        platforms: Mapping[str, str | Sequence[str]] | None = None,
        communities: Mapping[str, Mapping[str, str | Sequence[str]]] | None = None,
        pseudonymize_key: str = "",
        community_granularity: str = "platform",
    ) -> WebhookConfig:
        """Build from plain strings: `{"slack": ["new", "old"]}`, `{"discourse": {"forum.x.org": "s"}}`."""
        platform_secrets = {
            _check_platform(p, "platform secrets"): _secrets([v] if isinstance(v, str) else v)
            for p, v in (platforms or {}).items()
        }
        community_secrets = {
            (_check_platform(p, "community secrets"), community): _secrets([v] if isinstance(v, str) else v)
            for p, per_community in (communities or {}).items()
            for community, v in per_community.items()
        }
        return cls(
            platform_secrets={p: s for p, s in platform_secrets.items() if s},
            community_secrets={k: s for k, s in community_secrets.items() if s},
            pseudonymize_key=Secret(pseudonymize_key) if pseudonymize_key else None,
            community_granularity=_check_granularity(community_granularity),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookConfig:
        """Secrets from `ENGAGE_WEBHOOK_SECRET_<PLATFORM>` and the secrets file; env secrets come first."""
        platforms: dict[str, list[str]] = {}
        for name, raw in sorted(settings.extra.items()):
            if not name.startswith(ENV_PREFIX):
                continue
            platform = _check_platform(name[len(ENV_PREFIX) :].lower(), name)
            platforms.setdefault(platform, []).extend(raw.split(","))
        communities: dict[str, dict[str, list[str]]] = {}
        if settings.webhook_secrets_file:
            file_platforms, communities = _read_secrets_file(Path(settings.webhook_secrets_file))
            for platform, values in file_platforms.items():
                platforms.setdefault(platform, []).extend(values)
        return cls.from_secrets(
            platforms,
            communities,
            pseudonymize_key=settings.pseudonymize_key,
            community_granularity=settings.community_granularity,
        )

    def secrets_for(self, platform: str, scopes: Sequence[str] = ()) -> tuple[Secret, ...]:
        """The secrets a delivery must match: the first scope with its own list, else the platform's."""
        for scope in scopes:
            own = self.community_secrets.get((platform, scope))
            if own:
                return own
        return self.platform_secrets.get(platform, ())

    def member_ref(self, platform: str, community: str, member_id: str) -> str:
        """`member_id` as stored: itself, or `p_` + 32 hex of HMAC-SHA256(key, platform:community:id)."""
        if self.pseudonymize_key is None:
            return member_id
        return "p_" + self.pseudonymize_key.hex_hmac(f"{platform}:{community}:{member_id}".encode())[:32]

    def __repr__(self) -> str:
        counts = {p: len(s) for p, s in sorted(self.platform_secrets.items())}
        return (
            f"WebhookConfig(platform_secrets={counts}, community_overrides={len(self.community_secrets)}, "
            f"pseudonymize={self.pseudonymize_key is not None}, "
            f"community_granularity={self.community_granularity!r})"
        )


def _read_secrets_file(path: Path) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    where = f"ENGAGE_WEBHOOK_SECRETS_FILE={path}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(
            f"{where}: cannot read it ({exc.strerror}); fix the path or unset the variable"
        ) from None
    except json.JSONDecodeError as exc:
        # Say where, never echo the content: it holds secrets.
        raise ValueError(f"{where}: not valid JSON at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict) or set(data) - {"platforms", "communities"}:
        raise ValueError(f'{where}: expected an object with "platforms" and/or "communities" keys only')
    platforms_raw = data.get("platforms", {})
    communities_raw = data.get("communities", {})
    if not isinstance(platforms_raw, dict) or not isinstance(communities_raw, dict):
        raise ValueError(f'{where}: "platforms" and "communities" must be objects')
    platforms = {
        _check_platform(p, where): _as_list(v, f"{where}: platforms.{p}") for p, v in platforms_raw.items()
    }
    communities: dict[str, dict[str, list[str]]] = {}
    for p, per_community in communities_raw.items():
        _check_platform(p, where)
        if not isinstance(per_community, dict):
            raise ValueError(f"{where}: communities.{p} must map community ids to secrets")
        communities[p] = {c: _as_list(v, f"{where}: communities.{p}.{c}") for c, v in per_community.items()}
    return platforms, communities
