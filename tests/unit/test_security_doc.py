"""docs/security.md's examples run: its `engage token` lines, and its 422 body is what the gateway says."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from streams.api_tokens import TokenStore, looks_like_token, read_table
from streams.cli import main
from streams.config import Settings
from streams.gateway.access import Access

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_token_commands_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [line.split("#")[0].strip() for line in blocks("sh")[0].splitlines()]
    commands = [shlex.split(line) for line in lines if line.startswith("engage token")]
    assert [c[2] for c in commands] == ["create", "create", "create", "list", "revoke"]
    for argv in commands:
        assert main([*argv[1:], "--data-dir", str(tmp_path)]) == 0, argv
        out = capsys.readouterr().out
        if argv[2] == "create":
            assert looks_like_token(out.strip().splitlines()[-1])
        if argv[2] == "list":
            assert all(name in out for name in ("ci-importer", "mod-ana", "backfill"))
    table = read_table(tmp_path / "api-tokens.json")
    assert sorted(t.name for t in table.tokens) == ["backfill", "mod-ana"]
    assert table.named("mod-ana").communities == {"acme"}  # type: ignore[union-attr]
    assert table.named("backfill").rate == 500  # type: ignore[union-attr]


def test_the_422_example_is_the_gateways_answer(tmp_path: Path) -> None:
    [example] = blocks("json")
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
    access = Access(settings, TokenStore(settings.tokens_path), wall_clock=lambda: now)
    refusal = access.event_times(
        [datetime(2099, 1, 1, tzinfo=UTC).timestamp()], "occurred_at", "canonical", single=True
    )
    assert refusal is not None and refusal.status == 422
    body = {"error": refusal.error, "message": refusal.message, "errors": [e.model_dump() for e in refusal.errors]}
    assert orjson.loads(example) == body
