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
    assert payload["window"] == 8192
    # not measured (--no-measure): the embedded model's default speed, named as such
    assert payload["speed_measured_now"] is False and payload["estimates"]["prompt_eval"] == "default"
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


FAST_PLAN = ["--json", "--ctx", "1024", "--max-tokens", "64"]


def _corpus(root: Path) -> Path:
    """33 small modules, one chunk each (an index build of 32 or more chunks records its rate):
    about 3,000 tokens, far more than a 1024-token window holds, so ask would retrieve."""
    root.mkdir()
    for i in range(33):
        (root / f"module_{i:02d}.py").write_text(
            "\n".join(
                f"def helper_{i}_{k}(value):\n    '''Scale by {k}.'''\n    return value * {k}\n" for k in range(2)
            )
        )
    return root


def test_plan_estimates_indexing_until_ask_has_built_the_index(tmp_path: Path) -> None:
    from dsv2cli import planning
    from dsv2cli.index.chunking import chunk_document
    from dsv2cli.sources import load_inputs

    repo = _corpus(tmp_path / "src")
    args = ["plan", "--repo", str(repo), *FAST_PLAN, "--no-measure"]
    before = json.loads(runner.invoke(app, args).stdout)
    assert before["strategy"]["ask"] == "retrieve" and before["index_state"] == "missing"
    docs, _ = load_inputs([], repo=str(repo))
    chunks = sum(len(chunk_document(d)) for d in docs)
    assert before["index_chunks"] == before["index_chunks_to_embed"] == chunks  # the index's own chunker
    assert before["embed_chunks_per_s"] == planning.DEFAULT_EMBED_CHUNKS_PER_S
    assert before["estimated_index_s"] == round(chunks / planning.DEFAULT_EMBED_CHUNKS_PER_S, 1)
    assert before["estimates"]["index"] == "default"
    text = runner.invoke(app, [a for a in args if a != "--json"]).stdout
    assert f"{chunks:,} to embed" in text and "(default, not measured: run dsv2 plan --measure)" in text

    # ask builds the index (a dry run embeds and ranks without loading the language model)
    built = runner.invoke(
        app, ["ask", "--repo", str(repo), "What scales by 5?", "--dry-run", "--json", "--ctx", "1024"]
    )
    assert built.exit_code == 0, built.output
    after = json.loads(runner.invoke(app, args).stdout)
    assert after["index_state"] == "ready" and after["index_chunks"] == chunks
    assert after["index_chunks_to_embed"] == 0 and after["estimated_index_s"] == 0
    assert "nothing to embed" in runner.invoke(app, [a for a in args if a != "--json"]).stdout

    # one file changed: its chunks alone, at the rate that index build measured on this machine
    (repo / "module_00.py").write_text("def changed(value):\n    return value + 1\n")
    changed = json.loads(runner.invoke(app, args).stdout)
    assert changed["index_chunks_to_embed"] == 1
    assert changed["estimates"]["index"] == "measured" and changed["embed_chunks_per_s"] > 0
    text = runner.invoke(app, [a for a in args if a != "--json"]).stdout
    assert "1 to embed" in text and "(measured on this machine)" in text

    # the rate is kept per offload, resolved as the embedder resolves it: 3 layers were never
    # measured; 0 is the measured run on a build that cannot offload (ask left --gpu-layers unset)
    from dsv2cli.llama import supports_gpu_offload

    other = json.loads(runner.invoke(app, [*args, "--gpu-layers", "3"]).stdout)
    assert other["estimates"]["index"] == "default"
    cpu = json.loads(runner.invoke(app, [*args, "--gpu-layers", "0"]).stdout)
    assert cpu["estimates"]["index"] == ("default" if supports_gpu_offload() else "measured")


def test_plan_json_names_where_each_estimate_comes_from(tmp_path: Path) -> None:
    from dsv2cli import planning

    sample = str(SAMPLES / "harbor-light-annual-report.md")
    payload = json.loads(runner.invoke(app, ["plan", sample, "--json", "--no-measure", "--max-tokens", "100"]).stdout)
    # nothing measured here: the embedded model's speeds on the project's machine stand in, and say so
    assert payload["estimates"] == {"prompt_eval": "default", "generation": "default", "index": None}
    assert payload["estimates_measured_now"] == []
    assert payload["output_tokens_per_s"] == planning.EMBEDDED_OUTPUT_TOKENS_PER_S
    assert payload["estimated_generation_s"] == round(100 / planning.EMBEDDED_OUTPUT_TOKENS_PER_S, 1)
    assert payload["index_chunks_to_embed"] is None  # it fits: ask needs no index
    text = runner.invoke(app, ["plan", sample, "--no-measure"]).stdout
    assert "prompt evaluation ~" in text and "generation up to ~" in text
    assert text.count("(default, not measured: run dsv2 plan --measure)") == 2


def test_plan_measure_compares_thread_counts_and_later_plans_reuse_them() -> None:
    from dsv2cli.parallel import cpu_counts

    args = ["plan", str(SAMPLES / "code"), "--json", "--ctx", "768", "--max-tokens", "64", "--threads", "1"]
    first = runner.invoke(app, [*args, "--measure"])
    assert first.exit_code == 0, first.output
    measured = json.loads(first.stdout)
    counts = [row["threads"] for row in measured["threads"]]
    assert counts == sorted({*cpu_counts().candidates(), 1}, reverse=True)
    assert all(row["prompt_tokens_per_s"] > 0 and row["output_tokens_per_s"] > 0 for row in measured["threads"])
    assert measured["threads_in_use"] == 1 and measured["threads_measured_now"] is True
    assert measured["estimates"]["prompt_eval"] == measured["estimates"]["generation"] == "measured"
    assert {"prompt_eval", "generation", "threads"} <= set(measured["estimates_measured_now"])
    assert measured["estimated_generation_s"] > 0
    again = json.loads(runner.invoke(app, [*args, "--no-measure"]).stdout)
    assert again["threads"] == measured["threads"] and again["threads_measured_now"] is False
    assert again["output_tokens_per_s"] == measured["output_tokens_per_s"]
    text = runner.invoke(app, [a for a in args if a != "--json"] + ["--no-measure"]).stdout
    assert "threads:   1 in use (--threads)" in text
    assert "1 thread: prompt" in text and "<- in use" in text


def test_an_index_rebuild_records_the_rate_plan_estimates_with(tmp_path: Path, minilm_gguf: Path) -> None:
    repo = _corpus(tmp_path / "src")
    embed = ["--embed-model", str(minilm_gguf), "--threads", "1"]
    args = ["plan", "--repo", str(repo), *FAST_PLAN, "--no-measure", *embed]
    assert json.loads(runner.invoke(app, args).stdout)["estimates"]["index"] == "default"
    rebuilt = runner.invoke(app, ["index", "rebuild", "--repo", str(repo), *embed])
    assert rebuilt.exit_code == 0, rebuilt.output
    (repo / "module_00.py").write_text("def changed(value):\n    return value + 1\n")
    changed = json.loads(runner.invoke(app, args).stdout)
    assert changed["index_chunks_to_embed"] == 1
    assert changed["estimates"]["index"] == "measured" and changed["embed_chunks_per_s"] > 0
