"""Prompt templates: every placeholder is one the code fills, and every filled name is present."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsv2cli import prompts
from dsv2cli.errors import UsageError


def test_every_shipped_template_is_known_to_the_code() -> None:
    assert set(prompts.template_names()) == set(prompts.FILLED)


@pytest.mark.parametrize("name", sorted(prompts.FILLED))
def test_template_placeholders_match_what_the_code_fills(name: str) -> None:
    assert prompts.placeholders(prompts.load(name)) == set(prompts.FILLED[name])


def test_fill_never_rescans_inserted_text() -> None:
    out = prompts.fill("A {{ document }} B", {"document": "{{ document }} and {{ other }}"})
    assert out == "A {{ document }} and {{ other }} B"


def test_user_template_without_document_placeholder_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "t.txt"
    bad.write_text("Summarize please.")
    with pytest.raises(UsageError, match=r"lacks \{\{ document \}\}"):
        prompts.load_user_template(bad, frozenset({"document"}))


def test_user_template_with_unknown_placeholder_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "t.txt"
    bad.write_text("{{ document }} in {{ language }}")
    with pytest.raises(UsageError, match="unknown placeholder"):
        prompts.load_user_template(bad, frozenset({"document"}))
