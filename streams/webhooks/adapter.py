"""The shape every platform adapter has: find the secret scope, verify, map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from streams.webhooks.canonical import Context, Draft
from streams.webhooks.config import Secret
from streams.webhooks.payload import JsonObject
from streams.webhooks.results import Forget, Handshake, Ignored, Rejected

Outcome = Handshake | Ignored | list[Draft] | Forget


class Adapter(Protocol):
    def secret_scopes(self, payload: JsonObject, headers: Mapping[str, str]) -> Sequence[str]:
        """Communities whose own secrets would apply, most specific first (from the unverified payload)."""
        ...

    def verify(
        self, headers: Mapping[str, str], body: bytes, secrets: Sequence[Secret], now: float
    ) -> Rejected | None:
        """None when the signature (and replay window) check out, else the rejection."""
        ...

    def map(self, payload: JsonObject, headers: Mapping[str, str], ctx: Context) -> Outcome:
        """The drafts a verified delivery maps to, its handshake answer, or why it is ignored."""
        ...
