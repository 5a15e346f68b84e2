"""API tokens: who may write events and decisions (and, later, read SQL or erase members).

A token is `engage_` and 43 url-safe characters (32 random bytes, 256 bits). It is shown once,
when created; the tokens file keeps only a keyed BLAKE2b digest of it, with its name, scopes,
the communities it may touch (none listed: every community) and its own rate limit if it has
one. The file is JSON, written atomically (0600) under a lock, so `engage token` can change it
while a gateway reads it: `TokenStore` notices a new file within a second and reloads it.

Nothing here logs or returns a token except `create_token`, to its caller.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

EVENTS_WRITE = "events:write"
MODERATION_WRITE = "moderation:write"
SQL_READ = "sql:read"
ERASURE_WRITE = "erasure:write"  # reserved for a future /v1/erasures endpoint
SCOPES = (EVENTS_WRITE, MODERATION_WRITE, SQL_READ, ERASURE_WRITE)

TOKEN_PREFIX = "engage_"
SECRET_BYTES = 32
_TOKEN_SHAPE = re.compile(r"^engage_[A-Za-z0-9_-]{43}$")
NAME_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
FILE_VERSION = 1
_PERSON = b"engage-api-tok"  # BLAKE2b personalisation: these digests mean nothing elsewhere


class TokenError(ValueError):
    """A tokens file that cannot be read, or a change to it that cannot be made (one line, for a person)."""


@dataclass(frozen=True)
class ApiToken:
    """One token as the file keeps it: everything but the secret."""

    name: str
    digest: str  # hex BLAKE2b-256 of the token, keyed with the file's hash key
    scopes: frozenset[str]
    communities: frozenset[str] | None = None  # None: every community
    rate: float | None = None  # events per second; None: the gateway's default
    burst: int | None = None  # events at once; None: the gateway's default
    created_at: str = ""

    def allows(self, community_id: str) -> bool:
        return self.communities is None or community_id in self.communities

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "scopes": sorted(self.scopes),
            "communities": None if self.communities is None else sorted(self.communities),
            "rate": self.rate,
            "burst": self.burst,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ApiToken:
        if not isinstance(data, dict):
            raise TokenError(f"{where}: expected an object")
        try:
            name, digest, scopes = data["name"], data["digest"], data["scopes"]
        except KeyError as exc:
            raise TokenError(f"{where}: missing {exc.args[0]!r}") from exc
        if not (isinstance(name, str) and NAME_SHAPE.match(name)):
            raise TokenError(f"{where}: bad name {name!r}")
        if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise TokenError(f"{where}: digest must be 64 hex digits")
        if not (isinstance(scopes, list) and scopes and all(s in SCOPES for s in scopes)):
            raise TokenError(f"{where}: scopes must be a non-empty list of {', '.join(SCOPES)}")
        communities = data.get("communities")
        if communities is not None and not (
            isinstance(communities, list) and communities and all(isinstance(c, str) for c in communities)
        ):
            raise TokenError(f"{where}: communities must be null or a non-empty list of ids")
        rate, burst = data.get("rate"), data.get("burst")
        if rate is not None and not (isinstance(rate, int | float) and rate > 0):
            raise TokenError(f"{where}: rate must be a positive number of events per second")
        if burst is not None and not (isinstance(burst, int) and burst >= 1):
            raise TokenError(f"{where}: burst must be a positive whole number of events")
        return cls(
            name=name,
            digest=digest,
            scopes=frozenset(scopes),
            communities=None if communities is None else frozenset(communities),
            rate=None if rate is None else float(rate),
            burst=burst,
            created_at=str(data.get("created_at", "")),
        )


@dataclass(frozen=True)
class TokenTable:
    """The tokens file's contents: the hash key and the tokens."""

    hash_key: bytes = b""
    tokens: tuple[ApiToken, ...] = field(default_factory=tuple)

    def digest_of(self, token: str) -> bytes:
        return hashlib.blake2b(token.encode(), key=self.hash_key, digest_size=32, person=_PERSON).digest()

    def find(self, token: str) -> ApiToken | None:
        """The token's record, or None. Compares with every record in constant time, no early exit."""
        if not self.hash_key or not looks_like_token(token):
            return None
        presented = self.digest_of(token)
        found: ApiToken | None = None
        for record in self.tokens:
            if hmac.compare_digest(bytes.fromhex(record.digest), presented):
                found = record
        return found

    def named(self, name: str) -> ApiToken | None:
        return next((t for t in self.tokens if t.name == name), None)

    def to_bytes(self) -> bytes:
        body = {"version": FILE_VERSION, "hash_key": self.hash_key.hex(), "tokens": [t.to_json() for t in self.tokens]}
        return orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> TokenTable:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise TokenError(f"{where} is not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
            raise TokenError(f"{where}: expected an object with \"version\": {FILE_VERSION}")
        key = data.get("hash_key")
        if not (isinstance(key, str) and re.fullmatch(r"[0-9a-f]{64}", key)):
            raise TokenError(f"{where}: hash_key must be 64 hex digits")
        items = data.get("tokens")
        if not isinstance(items, list):
            raise TokenError(f"{where}: tokens must be a list")
        tokens = tuple(ApiToken.from_json(t, f"{where} tokens[{i}]") for i, t in enumerate(items))
        names = [t.name for t in tokens]
        if len(set(names)) != len(names):
            raise TokenError(f"{where}: a token name appears twice")
        return cls(hash_key=bytes.fromhex(key), tokens=tokens)


def looks_like_token(text: str) -> bool:
    return bool(_TOKEN_SHAPE.match(text))


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def read_table(path: Path) -> TokenTable:
    """The file's tokens; an empty table when there is no file yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return TokenTable()
    except OSError as exc:
        raise TokenError(f"cannot read the tokens file {path}: {exc.strerror}") from exc
    return TokenTable.from_bytes(raw, str(path))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: Path, table: TokenTable) -> None:
    """Replace the file atomically (a reader sees the old file or the new one, never half)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(table.to_bytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _checked(
    name: str, scopes: Iterable[str], communities: Iterable[str] | None
) -> tuple[frozenset[str], frozenset[str] | None]:
    if not NAME_SHAPE.match(name):
        raise TokenError(f"token name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    wanted = frozenset(scopes)
    if not wanted:
        raise TokenError(f"a token needs at least one scope: {', '.join(SCOPES)}")
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise TokenError(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    allowed = None if communities is None else frozenset(communities)
    if allowed is not None and (not allowed or "" in allowed):
        raise TokenError("a community list needs at least one non-empty community id")
    return wanted, allowed


def create_token(
    path: Path,
    name: str,
    scopes: Iterable[str],
    communities: Iterable[str] | None = None,
    rate: float | None = None,
    burst: int | None = None,
    replace: bool = False,
) -> str:
    """Add a token named `name` and return it (the only time it exists outside its holder).

    With `replace`, a token of that name is revoked in the same write; otherwise the name must be new.
    """
    wanted, allowed = _checked(name, scopes, communities)
    if rate is not None and rate <= 0:
        raise TokenError("rate must be a positive number of events per second")
    if burst is not None and burst < 1:
        raise TokenError("burst must be at least 1 event")
    with _locked(path):
        table = read_table(path)
        if table.named(name) is not None and not replace:
            raise TokenError(f"a token named {name!r} exists; revoke it first or choose another name")
        key = table.hash_key or secrets.token_bytes(32)
        table = TokenTable(key, tuple(t for t in table.tokens if t.name != name))
        token = new_token()
        record = ApiToken(
            name=name,
            digest=table.digest_of(token).hex(),
            scopes=wanted,
            communities=allowed,
            rate=rate,
            burst=burst,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        _write(path, TokenTable(key, (*table.tokens, record)))
    return token


def revoke_token(path: Path, name: str) -> bool:
    """Remove the token named `name`; False when there is none."""
    with _locked(path):
        table = read_table(path)
        if table.named(name) is None:
            return False
        _write(path, TokenTable(table.hash_key, tuple(t for t in table.tokens if t.name != name)))
    return True


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when absent or not Bearer."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


class TokenStore:
    """The tokens file as the gateway sees it: reloaded when it changes, checked at most every second.

    A file that turns unreadable keeps the last good table (and is reported through `on_error`),
    so a bad edit cannot lock every client out or let everyone in.
    """

    def __init__(
        self,
        path: Path,
        check_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_load: Callable[[TokenTable], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.check_every_s = check_every_s
        self.clock = clock
        self.on_load = on_load
        self.on_error = on_error
        self._table = TokenTable()
        self._seen: tuple[int, int, int] | None = None
        self._checked_at = -float("inf")
        self.refresh()

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self) -> None:
        self._checked_at = self.clock()
        sig = self._signature()
        if sig == self._seen:
            return
        try:
            table = read_table(self.path)
        except TokenError as exc:
            log.error("keeping the previous API tokens: %s", exc)
            if self.on_error is not None:
                self.on_error(str(exc))
            self._seen = sig  # report a broken file once, not on every request
            return
        self._seen = sig
        self._table = table
        log.info("loaded %d API token(s) from %s", len(table.tokens), self.path)
        if self.on_load is not None:
            self.on_load(table)

    def current(self) -> TokenTable:
        if self.clock() - self._checked_at >= self.check_every_s:
            self.refresh()
        return self._table
