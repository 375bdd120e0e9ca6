"""`dsv2 ask` end to end: whole corpus when it fits, retrieval with citations when it does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app

runner = CliRunner()
FAST = ["--max-tokens", "24", "--temperature", "0"]


@pytest.fixture
def big_repo(tmp_path: Path) -> Path:
    """40 ordinary modules and one that holds the answer: far more than a 1024-token window."""
    root = tmp_path / "src"
    root.mkdir()
    for i in range(40):
        (root / f"module_{i:02d}.py").write_text(
            "\n".join(
                f"def helper_{i}_{k}(value):\n    '''Scale value by {k}.'''\n    return value * {k}\n" for k in range(6)
            )
        )
    (root / "ferry_fares.py").write_text(
        "RESIDENT_FARE_CAP_EUR = 4.50\n\n\n"
        "def resident_fare(standard_fare):\n"
        "    '''Island residents never pay more than the regional fare cap.'''\n"
        "    return min(standard_fare, RESIDENT_FARE_CAP_EUR)\n"
    )
    return root


def test_ask_whole_corpus_when_it_fits(tmp_path: Path) -> None:
    doc = tmp_path / "fares.md"
    doc.write_text("# Fares\n\nResidents pay at most 4.50 euros per crossing on the island routes.\n")
    result = runner.invoke(app, ["ask", "What do residents pay?", str(doc), "--json", *FAST])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["strategy"] == "whole" and payload["answer"]
    assert [s["path"] for s in payload["sources"]] == [str(doc)]
    assert payload["input_tokens"] + 24 <= payload["window"]


def test_question_comes_after_the_documents(tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("The harbour opens at six.")
    result = runner.invoke(app, ["ask", "When does the harbour open?", str(doc), "--dry-run"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.index("The harbour opens at six.") < text.index("Question: When does the harbour open?")


def test_ask_retrieves_the_planted_answer_from_a_repo_larger_than_the_window(big_repo: Path) -> None:
    args = [
        "ask",
        "--repo",
        str(big_repo),
        "What is RESIDENT_FARE_CAP_EUR used for in resident_fare?",
        "--ctx",
        "1024",
        *FAST,
    ]
    dry = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["strategy"] == "retrieve"
    assert plan["prompt_tokens"] + 24 <= plan["window"] == 1024
    paths = [Path(s["path"]).name for s in plan["sources"]]
    assert "ferry_fares.py" in paths
    assert all(s["score"] is not None and s["line_start"] for s in plan["sources"])
    # the real run answers from the same passages
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["strategy"] == "retrieve" and payload["answer"]
    assert "ferry_fares.py" in {Path(s["path"]).name for s in payload["sources"]}
    # the index persists and can be inspected and dropped
    status = json.loads(runner.invoke(app, ["index", "status", "--repo", str(big_repo), "--json"]).stdout)
    assert status["state"] == "ready" and status["files"] == 41 and status["chunks"] >= 41
    dropped = runner.invoke(app, ["index", "drop", "--repo", str(big_repo)])
    assert dropped.exit_code == 0 and "dropped" in dropped.stderr
    status = json.loads(runner.invoke(app, ["index", "status", "--repo", str(big_repo), "--json"]).stdout)
    assert status["state"] == "missing"


def test_empty_question_is_a_usage_error(tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("x")
    result = runner.invoke(app, ["ask", "  ", str(doc)])
    assert result.exit_code == 2
    assert "question is empty" in result.stderr
