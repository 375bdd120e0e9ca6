"""The prompt-prefix cache: a follow-up question reuses the evaluated document, answers unchanged."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.engines.prefix_cache import PrefixCache

runner = CliRunner()
FAST = ["--ctx", "1024", "--max-tokens", "12", "--temperature", "0", "--json"]


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.md"
    path.write_text(
        "\n\n".join(
            f"## Route {n}\n\nThe ferry on route {n} carried {n * 1234} passengers and ran {n * 11} crossings in 2025."
            for n in range(1, 16)
        )
    )
    return path


def ask(report: Path, *extra: str) -> list[dict]:
    result = runner.invoke(app, ["ask", "Which route carried the most passengers?", str(report), *FAST, *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_same_answer_with_and_without_the_cache_and_after_corruption(report: Path, dsv2_home: Path) -> None:
    (off,) = ask(report, "--no-cache")
    (first,) = ask(report)
    (second,) = ask(report)
    assert (off["prefix_cache"], first["prefix_cache"], second["prefix_cache"]) == ("off", "miss", "hit")
    assert off["answer"] == first["answer"] == second["answer"]
    assert second["prefix_reused_tokens"] > 256
    assert second["prefix_reused_tokens"] < second["input_tokens"]  # the question is evaluated anew
    (entry,) = (dsv2_home / "cache" / "prefix").glob("*.state")
    entry.write_bytes(b"not a llama.cpp state file" * 100)  # corrupt it
    result = runner.invoke(app, ["ask", "Which route carried the most passengers?", str(report), *FAST])
    assert result.exit_code == 0, result.output
    assert "discarded a prefix-cache entry" in result.stderr
    assert json.loads(result.stdout)["answer"] == off["answer"]
    (fourth,) = ask(report)
    assert fourth["prefix_cache"] == "hit" and fourth["answer"] == off["answer"]  # rewritten, usable again


def test_several_questions_share_one_evaluated_prefix(report: Path) -> None:
    result = runner.invoke(
        app,
        [
            "ask",
            "-q",
            "How many crossings on route 3?",
            "-q",
            "How many passengers on route 2?",
            str(report),
            *FAST,
            "--no-cache",
        ],
    )
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["question"].endswith("route 3?") and second["question"].endswith("route 2?")
    assert second["prefix_cache"] == "memory"
    assert 256 < second["prefix_reused_tokens"] < second["input_tokens"]


def test_cache_status_and_clear(report: Path) -> None:
    ask(report)
    status = json.loads(runner.invoke(app, ["cache", "status", "--json"]).stdout)
    assert status["entries"] == 1 and status["size_bytes"] > 0
    cleared = runner.invoke(app, ["cache", "clear"])
    assert "1 entries removed" in cleared.stderr
    assert json.loads(runner.invoke(app, ["cache", "status", "--json"]).stdout)["entries"] == 0


def test_least_recently_used_entries_go_first(tmp_path: Path) -> None:
    cache = PrefixCache(tmp_path, max_bytes=250)
    for i, key in enumerate(["a", "b", "c"]):
        tmp = cache.reserve(key)
        tmp.write_bytes(b"x" * 100)
        os.utime(tmp, (time.time() - 100 + i, time.time() - 100 + i))
        cache.commit(key, tmp)
        os.utime(cache.path(key), (time.time() - 100 + i * 10, time.time() - 100 + i * 10))
    assert cache.status().entries == 2  # the third write evicted the oldest
    assert not cache.path("a").exists()
    assert cache.lookup("b") is not None  # a hit refreshes b
    tmp = cache.reserve("d")
    tmp.write_bytes(b"x" * 100)
    cache.commit("d", tmp)
    assert cache.path("b").exists() and not cache.path("c").exists()
