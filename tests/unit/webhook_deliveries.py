"""Webhook test deliveries: the fixtures in tests/fixtures/webhooks, signed the way each platform signs.

Fixtures hold a documented payload, its headers (no signature) and what it must
map to; tests sign them here with a test secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from streams.webhooks import PLATFORMS, WebhookConfig, WebhookResult, handle_webhook

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
SECRET = "test-signing-secret-0001"
OTHER_SECRET = "test-signing-secret-0002"
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@dataclass(frozen=True)
class Fixture:
    platform: str
    name: str
    headers: Mapping[str, str]
    payload: dict[str, Any]
    expect: dict[str, Any]
    encoding: str = "json"
    about: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        return f"{self.platform}/{self.name}"

    def body(self) -> bytes:
        raw = json.dumps(self.payload, ensure_ascii=False, separators=(",", ":"))
        if self.encoding == "form":
            return urlencode({"payload": raw}).encode()
        return raw.encode()


def load(platform: str) -> list[Fixture]:
    out = []
    for path in sorted((FIXTURES / platform).glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out.append(
            Fixture(
                platform=platform,
                name=path.stem,
                headers=doc["headers"],
                payload=doc["payload"],
                expect=doc["expect"],
                encoding=doc.get("encoding", "json"),
                about=doc.get("about", ""),
            )
        )
    return out


def all_fixtures() -> list[Fixture]:
    return [f for platform in PLATFORMS for f in load(platform)]


def fixture(platform: str, name: str) -> Fixture:
    for f in load(platform):
        if f.name == name:
            return f
    raise KeyError(f"no fixture {platform}/{name}")


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(
    platform: str, headers: Mapping[str, str], body: bytes, secret: str = SECRET, sent_at: float = NOW
) -> dict[str, str]:
    """`headers` plus the signature (and timestamp) `platform` would send."""
    out = dict(headers)
    if platform == "slack":
        ts = str(int(sent_at))
        out["X-Slack-Request-Timestamp"] = ts
        out["X-Slack-Signature"] = "v0=" + _hex(secret, b"v0:" + ts.encode() + b":" + body)
    elif platform == "discourse":
        out["X-Discourse-Event-Signature"] = "sha256=" + _hex(secret, body)
    elif platform == "github":
        out["X-Hub-Signature-256"] = "sha256=" + _hex(secret, body)
    elif platform == "bettermode":
        ts = str(int(sent_at * 1000))  # Bettermode sends milliseconds
        out["X-Bettermode-Request-Timestamp"] = ts
        out["X-Bettermode-Signature"] = _hex(secret, ts.encode() + b":" + body)
    else:
        raise ValueError(platform)
    return out


def config(**kwargs: Any) -> WebhookConfig:
    """Every platform accepts `SECRET`; keyword arguments go to `WebhookConfig.from_secrets`."""
    platforms = kwargs.pop("platforms", {p: [SECRET] for p in PLATFORMS})
    return WebhookConfig.from_secrets(platforms, **kwargs)


def deliver(
    f: Fixture,
    cfg: WebhookConfig | None = None,
    *,
    secret: str = SECRET,
    now: float = NOW,
    sent_at: float | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> WebhookResult:
    """Sign `f` (at `sent_at`, default `now`) and hand it to `handle_webhook`."""
    raw = f.body() if body is None else body
    signed = sign(
        f.platform,
        f.headers if headers is None else headers,
        raw,
        secret,
        now if sent_at is None else sent_at,
    )
    return handle_webhook(f.platform, signed, raw, now, cfg or config())


def sentences(value: object) -> list[str]:
    """Every string in a payload that looks like written text (a space and 12+ characters)."""
    if isinstance(value, str):
        return [value] if " " in value.strip() and len(value) >= 12 else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in sentences(v)]
    if isinstance(value, list):
        return [s for v in value for s in sentences(v)]
    return []
