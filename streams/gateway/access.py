"""Who may write, how much, and when: the gateway's checks before anything is produced.

- `/v1/events` and `/v1/moderation` need `Authorization: Bearer <token>` with the endpoint's
  scope (401 without or with an unknown token, 403 with the wrong scope or a community the
  token is not for). The tokens file is reread within a second of a change.
- Rate limits: each token has a bucket (its own rate, or the default), each platform community
  sending webhooks has one too; 429 with Retry-After when empty.
- Event time: refused (422, with the field path and how far off) beyond the clock plus the
  allowed skew, or before the floor (streams/event_time.py).

Every refusal is a `Refusal` (rendered by the app) and counted with a bounded reason label;
no token, digest or community id ever reaches a log or a metric.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from schemas.events import FieldError, format_location
from streams import metrics
from streams.api_tokens import ApiToken, TokenStore, TokenTable, bearer_token
from streams.config import Settings
from streams.event_time import check_event_time, event_time_label
from streams.gateway.rate_limit import RateLimiter, retry_after

_CHALLENGE = 'Bearer realm="engage"'


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str
    message: str
    errors: tuple[FieldError, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)


def field_path(index: int | None, name: str) -> str:
    """`occurred_at` for a single event, `[3].occurred_at` for the fourth of an array."""
    return format_location((name,) if index is None else (index, name))


class Access:
    def __init__(
        self,
        settings: Settings,
        store: TokenStore | None = None,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store or TokenStore(
            settings.tokens_path, on_load=_count_tokens, on_error=lambda _: metrics.API_TOKENS_RELOAD_ERRORS.inc()
        )
        self.wall_clock = wall_clock
        self.clock = clock
        self.skew_s = settings.event_time_max_skew_seconds
        self.floor_ts = settings.event_time_floor_ts
        self.per_token = RateLimiter()
        self.per_community = RateLimiter()

    # --- tokens ---------------------------------------------------------------------
    def authenticate(self, header: str | None, scope: str, endpoint: str, platform: str) -> ApiToken | Refusal:
        """The token's record when it is known and has `scope`; otherwise the 401 or 403."""
        presented = bearer_token(header)
        if presented is None:
            return self._unauthorized(
                endpoint, platform, "missing_token", "send `Authorization: Bearer <token>` (engage token create)"
            )
        token = self.store.current().find(presented)
        if token is None:
            return self._unauthorized(
                endpoint, platform, "unknown_token", "the token is unknown or revoked; ask for a new one"
            )
        if scope not in token.scopes:
            return self._forbidden(
                endpoint,
                platform,
                "wrong_scope",
                f"token {token.name!r} lacks the scope {scope!r} (it has {', '.join(sorted(token.scopes))})",
                error="insufficient_scope",
            )
        return token

    def communities(
        self, token: ApiToken, community_ids: Sequence[str], endpoint: str, platform: str, single: bool
    ) -> Refusal | None:
        """403 naming every event whose community the token may not write to."""
        bad = [
            FieldError(
                path=field_path(None if single else i, "community_id"),
                message=f"token {token.name!r} may not write to this community",
                kind="wrong_community",
            )
            for i, cid in enumerate(community_ids)
            if not token.allows(cid)
        ]
        if not bad:
            return None
        return self._forbidden(
            endpoint,
            platform,
            "wrong_community",
            f"{len(bad)} event(s) for communities token {token.name!r} is not for; nothing was accepted",
            errors=tuple(bad),
        )

    def _unauthorized(self, endpoint: str, platform: str, reason: str, message: str) -> Refusal:
        metrics.GATEWAY_AUTH_REFUSED.labels(endpoint, reason).inc()
        metrics.count_rejected(platform, "unauthorized")
        return Refusal(401, "unauthorized", message, headers={"WWW-Authenticate": _CHALLENGE})

    def _forbidden(
        self,
        endpoint: str,
        platform: str,
        reason: str,
        message: str,
        error: str = "forbidden",
        errors: tuple[FieldError, ...] = (),
    ) -> Refusal:
        metrics.GATEWAY_AUTH_REFUSED.labels(endpoint, reason).inc()
        metrics.count_rejected(platform, "forbidden")
        return Refusal(403, error, message, errors)

    # --- rate limits ----------------------------------------------------------------
    def _token_limits(self, token: ApiToken) -> tuple[float, float]:
        rate = token.rate if token.rate is not None else self.settings.api_rate_per_token
        burst = token.burst if token.burst is not None else self.settings.api_burst_per_token
        return rate, float(burst)

    def token_exhausted(self, token: ApiToken, platform: str) -> Refusal | None:
        """429 before the body is even read, when the token's bucket cannot pass one event."""
        rate, burst = self._token_limits(token)
        wait = self.per_token.wait_for_one(token.name, rate, burst, self.clock())
        return None if wait == 0 else self._limited(platform, "token", wait, f"token {token.name!r}", rate, burst)

    def token_budget(self, token: ApiToken, cost: int, platform: str) -> Refusal | None:
        """Take `cost` events from the token's bucket, or 429."""
        rate, burst = self._token_limits(token)
        wait = self.per_token.take(token.name, cost, rate, burst, self.clock())
        return None if wait == 0 else self._limited(platform, "token", wait, f"token {token.name!r}", rate, burst, cost)

    def community_budget(self, platform: str, community_ids: Sequence[str]) -> Refusal | None:
        """Take one event per id from each platform community's bucket, or 429 (nothing taken then)."""
        rate = self.settings.webhook_rate_per_community
        burst = float(self.settings.webhook_burst_per_community)
        costs: dict[str, int] = {}
        for cid in community_ids:
            costs[cid] = costs.get(cid, 0) + 1
        now = self.clock()
        for cid, cost in costs.items():
            wait = self.per_community.take(f"{platform}\x00{cid}", cost, rate, burst, now)
            if wait:
                return self._limited(platform, "community", wait, "this community", rate, burst, cost)
        return None

    def _limited(
        self, platform: str, limit: str, wait: float, who: str, rate: float, burst: float, cost: int = 1
    ) -> Refusal:
        metrics.GATEWAY_RATE_LIMITED.labels(platform, limit).inc()
        metrics.count_rejected(platform, "rate_limited")
        if math.isinf(wait):
            return Refusal(
                429,
                "rate_limited",
                f"{cost} events in one request is more than {who} may send at once ({burst:.0f}); split it",
                headers={"Retry-After": "1"},
            )
        seconds = retry_after(wait)
        return Refusal(
            429,
            "rate_limited",
            f"{who} is over its limit of {rate:g} events/s (bursts of {burst:.0f}); retry after {seconds} s",
            headers={"Retry-After": str(seconds)},
        )

    # --- event time -----------------------------------------------------------------
    def event_times(self, times: Sequence[float], name: str, platform: str, single: bool) -> Refusal | None:
        """422 naming every event time out of bounds, and how far off each is."""
        now = self.wall_clock()
        errors: list[FieldError] = []
        for i, ts in enumerate(times):
            why = check_event_time(ts, now, self.skew_s, self.floor_ts)
            if why is not None:
                label = event_time_label(ts, now)
                metrics.EVENTS_REJECTED.labels(platform, f"event_time_{label}").inc()
                errors.append(FieldError(path=field_path(None if single else i, name), message=why, kind=label))
        if not errors:
            return None
        metrics.GATEWAY_DELIVERIES.labels(platform, "rejected").inc()
        return Refusal(
            422,
            "event_time_out_of_bounds",
            f"{len(errors)} event time(s) out of bounds; nothing from this request was accepted",
            tuple(errors),
        )


def _count_tokens(table: TokenTable) -> None:
    metrics.API_TOKENS.set(len(table.tokens))
