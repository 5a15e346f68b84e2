"""What docs/analytics.md says about each `engagement` table and column, as the COMMENTs the
migrations give them (0004, 0005): the words a BI tool shows are the page's words.

A section `### \\`engagement.name\\`` describes one table or view: its first sentence is the
table's comment, and each row `| \\`col\\`, \\`col2\\` | meaning |` of its column table gives
those columns' comment ("as in \\`table\\`, ..." borrows that table's meaning of the column).
Backticks and bold marks are dropped, whitespace collapsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"
_SECTION = re.compile(r"^### `engagement\.([a-z0-9_]+)`\n(.*?)(?=^#{1,3} |\Z)", re.M | re.S)
_ROW = re.compile(r"^\| ((?:`[a-z0-9_]+`(?:, )?)+) \| (.+?) \|$", re.M)


def plain(text: str) -> str:
    return " ".join(text.replace("`", "").replace("**", "").split())


@dataclass
class Described:
    comment: str
    columns: dict[str, str] = field(default_factory=dict)


def described(text: str | None = None) -> dict[str, Described]:
    """Table or view name -> its comment and its columns' comments, from the page."""
    found: dict[str, Described] = {}
    for name, body in _SECTION.findall(DOC.read_text() if text is None else text):
        prose = body.strip().split("\n\n")[0]
        first = re.split(r"(?<=[.!?])\s", plain(prose), maxsplit=1)[0]
        entry = Described(first)
        for cols, meaning in _ROW.findall(body):
            for col in re.findall(r"`([a-z0-9_]+)`", cols):
                entry.columns[col] = plain(meaning)
        found[name] = entry
    for entry in found.values():  # "as in `member_state`, ..." borrows that table's words
        for col, meaning in entry.columns.items():
            m = re.match(r"as in ([a-z0-9_]+)(.*)$", meaning)
            if m and m.group(1) in found and col in found[m.group(1)].columns:
                entry.columns[col] = found[m.group(1)].columns[col] + m.group(2)
    return found


def sql_string(text: str) -> str:
    """`text` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
