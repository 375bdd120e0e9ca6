"""Flags that a path does not honour are refused with a usage error, never silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app

runner = CliRunner()


@pytest.mark.parametrize("flag", [["-s", "Be brief."], ["-t", "brief"]])
def test_summarize_each_refuses_system_and_template_it_would_ignore(tmp_path: Path, flag: list[str]) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("The notice period is 30 days.\n", encoding="utf-8")
    result = runner.invoke(app, ["summarize", "--each", str(doc), *flag])
    assert result.exit_code == 2, result.output
    assert "do not apply to --each" in result.output
