"""`dsv2 pack` shows exactly what the model reads; `dsv2 plan` says how it would run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.tokens import Tokenizer

from .conftest import SAMPLES

runner = CliRunner()


def test_pack_renders_code_with_path_headers_and_line_numbers() -> None:
    result = runner.invoke(app, ["pack", "--repo", str(SAMPLES / "code")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert '<document source="' in out and out.count("<document ") == out.count("</document>")
    predict = (SAMPLES / "code" / "tidewater" / "predict.py").read_text().splitlines()
    # every line of the file appears with its number
    assert f"1 | {predict[0]}" in out and f"{len(predict)} | {predict[-1]}" in out
    assert "files" in result.stderr  # the reader's note on stderr, not stdout


def test_pack_marks_pdf_pages() -> None:
    result = runner.invoke(app, ["pack", str(SAMPLES / "contract-msa.pdf")])
    assert result.exit_code == 0, result.output
    assert "[§ 8.2, p. 3]" in result.stdout


def test_pack_json_counts_tokens_with_the_model_tokenizer(smollm2_tokenizer: Tokenizer, dsv2_home: Path) -> None:
    sample = SAMPLES / "harbor-light-annual-report.md"
    result = runner.invoke(app, ["pack", str(sample), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    segments = payload["documents"][0]["segments"]
    assert len(segments) > 3 and all(s["line_start"] for s in segments)
    from dsv2cli import sources
    from dsv2cli.packing import context_parts, render_context

    doc = sources.load(str(sample))
    assert payload["context_tokens"] == smollm2_tokenizer.count(render_context([doc]))
    # each segment as it stands in the context (marker, its share of tags and blank lines) ...
    assert [s["tokens"] for s in segments] == [smollm2_tokenizer.count(text) for _, text in context_parts([doc])]
    # ... so that the segments add up to the context
    assert sum(s["tokens"] for s in segments) == payload["context_tokens"]
    # the long context's count is cached by content hash
    with sqlite3.connect(dsv2_home / "cache" / "token-counts.sqlite") as db:
        assert db.execute("SELECT count(*) FROM counts").fetchone()[0] >= 1
    again = runner.invoke(app, ["pack", str(sample), "--json"])
    assert json.loads(again.stdout) == payload


def test_plan_reports_fit_strategy_and_largest_segments(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["plan", str(SAMPLES / "meridian-coast-annual-report-2025.pdf"), "--json", "--no-measure"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["fits"] is True and payload["strategy"] == {"summarize": "whole", "ask": "whole"}
    assert payload["window"] == 8192 and payload["estimated_prompt_eval_s"] is None
    tokens = [s["tokens"] for s in payload["largest"]]
    assert tokens == sorted(tokens, reverse=True) and all(s["page"] for s in payload["largest"])
    small = runner.invoke(
        app, ["plan", str(SAMPLES / "meridian-coast-annual-report-2025.pdf"), "--json", "--no-measure", "--ctx", "1024"]
    )
    payload = json.loads(small.stdout)
    assert payload["fits"] is False
    assert payload["strategy"] == {"summarize": "map-reduce", "ask": "retrieve"}


def test_plan_measures_prompt_speed_once_and_reuses_it() -> None:
    args = ["plan", str(SAMPLES / "code"), "--json", "--ctx", "2048"]
    first = json.loads(runner.invoke(app, args).stdout)
    assert first["speed_measured_now"] is True and first["prompt_tokens_per_s"] > 0
    assert first["estimated_prompt_eval_s"] > 0
    second = json.loads(runner.invoke(app, args).stdout)
    assert second["speed_measured_now"] is False
    assert second["prompt_tokens_per_s"] == first["prompt_tokens_per_s"]
