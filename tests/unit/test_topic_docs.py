"""docs/topics.md's record formats are the ones the schemas/ models generate today."""

from __future__ import annotations

from schemas.outputs import SpamFlag, TierChange
from streams.tools import topic_docs


def test_the_topic_formats_in_the_docs_are_current() -> None:
    page = topic_docs.PAGE.read_text()
    assert topic_docs.current(page) == topic_docs.render(), "run `python -m streams.tools.topic_docs`"
    assert topic_docs.main(["--check"]) == 0


def test_every_field_of_an_output_model_is_documented() -> None:
    section = topic_docs.render()
    for model in (TierChange, SpamFlag):
        for name in model.model_fields:
            assert f"| `{name}` |" in section, f"{model.__name__}.{name} is missing from docs/topics.md"


def test_a_changed_model_makes_the_page_stale() -> None:
    page = topic_docs.PAGE.read_text()
    stale = page.replace("| `version` | integer (>= 1) |", "| `version` | integer |")
    assert stale != page and topic_docs.current(stale) != topic_docs.render()
    assert topic_docs.current(topic_docs.rewrite(stale)) == topic_docs.render()
