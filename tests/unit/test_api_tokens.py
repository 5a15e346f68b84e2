"""API tokens: only a keyed digest is stored, lookups are exact, scopes and communities hold,
and a running store sees created and revoked tokens without a restart."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest

from streams.api_tokens import (
    EVENTS_WRITE,
    MODERATION_WRITE,
    SQL_READ,
    TokenError,
    TokenStore,
    TokenTable,
    bearer_token,
    create_token,
    looks_like_token,
    read_table,
    revoke_token,
)
from streams.cli import main


def test_a_new_token_is_random_and_only_its_keyed_digest_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    first = create_token(path, "alice", [EVENTS_WRITE])
    second = create_token(path, "bob", [EVENTS_WRITE])
    assert looks_like_token(first) and looks_like_token(second) and first != second
    assert len(first) - len("engage_") == 43  # 32 random bytes, url-safe base64
    raw = path.read_bytes()
    assert first.encode() not in raw and first[len("engage_") :].encode() not in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    table = read_table(path)
    # the digest depends on the file's key: the same token under another key is another digest
    other = TokenTable(hash_key=b"\x01" * 32, tokens=table.tokens)
    assert table.digest_of(first) != other.digest_of(first)
    assert table.named("alice") is not None
    assert table.digest_of(first).hex() == table.named("alice").digest  # type: ignore[union-attr]


def test_find_matches_only_the_exact_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = create_token(path, "alice", [EVENTS_WRITE])
    table = read_table(path)
    found = table.find(token)
    assert found is not None and found.name == "alice"
    changed = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert table.find(changed) is None
    assert table.find("") is None
    assert table.find(token + "x") is None
    assert TokenTable().find(token) is None  # no file yet: nothing is known


def test_scopes_and_communities(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = create_token(path, "acme-bot", [EVENTS_WRITE, MODERATION_WRITE], communities=["acme", "acme-dev"])
    record = read_table(path).find(token)
    assert record is not None
    assert record.scopes == {EVENTS_WRITE, MODERATION_WRITE} and SQL_READ not in record.scopes
    assert record.allows("acme") and record.allows("acme-dev") and not record.allows("globex")
    ops = create_token(path, "ops", [SQL_READ])
    everyone = read_table(path).find(ops)
    assert everyone is not None and everyone.communities is None and everyone.allows("anything")


def test_bad_requests_are_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    create_token(path, "alice", [EVENTS_WRITE])
    with pytest.raises(TokenError, match="exists"):
        create_token(path, "alice", [EVENTS_WRITE])
    with pytest.raises(TokenError, match="unknown scope 'events:read'"):
        create_token(path, "bob", ["events:read"])
    with pytest.raises(TokenError, match="at least one scope"):
        create_token(path, "bob", [])
    with pytest.raises(TokenError, match="token name"):
        create_token(path, "has space", [EVENTS_WRITE])
    with pytest.raises(TokenError, match="community"):
        create_token(path, "bob", [EVENTS_WRITE], communities=[])


def test_replace_and_revoke(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    old = create_token(path, "stack", [EVENTS_WRITE])
    new = create_token(path, "stack", [EVENTS_WRITE], replace=True)
    table = read_table(path)
    assert table.find(old) is None and table.find(new) is not None and len(table.tokens) == 1
    assert revoke_token(path, "stack") is True
    assert read_table(path).find(new) is None
    assert revoke_token(path, "stack") is False


def test_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("{not json")
    with pytest.raises(TokenError, match="is not JSON"):
        read_table(path)
    path.write_bytes(orjson.dumps({"version": 1, "hash_key": "00" * 32, "tokens": [{"name": "a"}]}))
    with pytest.raises(TokenError, match=r"tokens\[0\]: missing 'digest'"):
        read_table(path)


def test_bearer_header() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_running_store_sees_new_and_revoked_tokens_within_its_check_interval(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    clock = FakeClock()
    loads: list[int] = []
    store = TokenStore(path, check_every_s=1.0, clock=clock, on_load=lambda t: loads.append(len(t.tokens)))
    assert store.current().tokens == ()  # no file yet
    token = create_token(path, "alice", [EVENTS_WRITE])
    assert store.current().find(token) is None  # not checked again yet
    clock.now += 1.0
    assert store.current().find(token) is not None
    revoke_token(path, "alice")
    clock.now += 1.0
    assert store.current().find(token) is None
    assert loads == [1, 0]


def test_a_store_keeps_the_last_good_tokens_when_the_file_breaks(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = create_token(path, "alice", [EVENTS_WRITE])
    clock = FakeClock()
    errors: list[str] = []
    store = TokenStore(path, clock=clock, on_error=errors.append)
    path.write_text("{broken")
    for _ in range(3):
        clock.now += 1.0
        assert store.current().find(token) is not None
    assert len(errors) == 1 and "is not JSON" in errors[0]  # reported once, not on every request
    fixed = create_token(path.with_name("other.json"), "bob", [EVENTS_WRITE])
    path.write_bytes(path.with_name("other.json").read_bytes())
    clock.now += 1.0
    assert store.current().find(fixed) is not None and store.current().find(token) is None


def test_cli_create_prints_the_token_last_and_list_never_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data-dir", str(tmp_path)]
    assert main(["token", "create", "--name", "ci", "--scope", "events:write", "--community", "acme", *args]) == 0
    out = capsys.readouterr()
    token = out.out.strip().splitlines()[-1]
    assert looks_like_token(token)
    assert token not in out.err
    record = read_table(tmp_path / "api-tokens.json").find(token)
    assert record is not None and record.communities == {"acme"}
    assert main(["token", "list", *args]) == 0
    listed = capsys.readouterr().out
    assert "ci" in listed and "acme" in listed and token not in listed and record.digest not in listed
    assert main(["token", "revoke", "ci", *args]) == 0
    assert main(["token", "revoke", "ci", *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no token named 'ci'" in err
