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


@pytest.mark.slow
def test_a_non_editable_wheel_ships_every_template(tmp_path: Path) -> None:
    """`pip install .` must find the templates: they are inside the wheel as dsv2cli/prompts/."""
    import subprocess
    import sys
    import zipfile

    from .conftest import ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("dsv2cli-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "prompts").glob("*.txt"):
        assert f"dsv2cli/prompts/{template.name}" in names
