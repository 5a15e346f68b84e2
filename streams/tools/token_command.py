"""`engage token create|list|revoke`: manage the gateway's API tokens file (docs/security.md).

`create` prints the new token once, as the last line on stdout (what it is, on stderr), so
`TOKEN=$(engage token create ...)` captures it. The file keeps only its keyed digest.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from streams.api_tokens import TokenError, create_token, read_table, revoke_token
from streams.config import Settings


def token_create(
    settings: Settings,
    name: str,
    scopes: Sequence[str],
    communities: Sequence[str] | None,
    rate: float | None,
    burst: int | None,
) -> int:
    path = settings.tokens_path
    try:
        token = create_token(path, name, scopes, communities, rate=rate, burst=burst)
    except TokenError as exc:
        print(f"token create: {exc}", file=sys.stderr)
        return 1
    where = "every community" if not communities else "communities " + ", ".join(sorted(set(communities)))
    print(
        f"created token {name!r} ({', '.join(sorted(set(scopes)))}; {where}) in {path}; "
        "it is shown only now, on the next line: keep it secret",
        file=sys.stderr,
    )
    print(token, flush=True)
    return 0


def token_list(settings: Settings) -> int:
    try:
        table = read_table(settings.tokens_path)
    except TokenError as exc:
        print(f"token list: {exc}", file=sys.stderr)
        return 1
    if not table.tokens:
        print(f"no tokens in {settings.tokens_path}; add one with `engage token create`")
        return 0
    rows = [("name", "scopes", "communities", "limit", "created")]
    for t in sorted(table.tokens, key=lambda t: t.name):
        rate = "default" if t.rate is None else f"{t.rate:g}/s"
        limit = f"{rate}, burst {'default' if t.burst is None else t.burst}"
        communities = "all" if t.communities is None else ",".join(sorted(t.communities))
        rows.append((t.name, ",".join(sorted(t.scopes)), communities, limit, t.created_at))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


def token_revoke(settings: Settings, name: str) -> int:
    try:
        revoked = revoke_token(settings.tokens_path, name)
    except TokenError as exc:
        print(f"token revoke: {exc}", file=sys.stderr)
        return 1
    if not revoked:
        print(f"token revoke: no token named {name!r} in {settings.tokens_path} (engage token list)", file=sys.stderr)
        return 1
    print(f"revoked {name!r}; running gateways refuse it within 5 s")
    return 0
