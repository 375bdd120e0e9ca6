"""The log of every run: rows with their fields, secrets redacted, bounded size, concurrent writers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.logs import Conversation, LogStore, Response, log_path, new_conversation_id

runner = CliRunner()
FAST = ["--max-tokens", "16", "--temperature", "0", "--threads", "1", "--ctx", "1024"]
SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4a1B2c3D4"  # the shape of a GitHub token


def _rows(home: Path) -> list[dict]:
    result = runner.invoke(app, ["logs", "-n", "0", "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_store_redacts_secrets_and_reads_back(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db")
    conv = Conversation(new_conversation_id(), "prompt", "hi")
    store.write(conv, [Response(conv.id, "prompt", prompt=f"my key is {SECRET}", output="ok", prompt_tokens=7)])
    (row,) = store.responses()
    assert SECRET not in (row.prompt or "") and "[REDACTED:" in (row.prompt or "")
    assert row.redacted == 1 and row.prompt_tokens == 7 and row.exit_status == 0
    assert SECRET.encode() not in (tmp_path / "logs.db").read_bytes()


def test_size_is_bounded_and_the_oldest_go_first(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db", max_bytes=256 * 1024)
    conv = Conversation(new_conversation_id(), "prompt")
    for i in range(60):
        store.write(conv, [Response(conv.id, "prompt", prompt=f"turn {i}", output=f"{i} " + "x" * 20_000)])
    assert store.size() <= 256 * 1024
    kept = store.responses(limit=None)
    assert 0 < len(kept) < 60
    assert kept[-1].prompt == "turn 59"  # the newest stays
    assert [r.id for r in kept] == sorted(r.id for r in kept) and kept[0].id is not None and kept[0].id > 1


WRITER = """
import sys
from pathlib import Path
from dsv2cli.logs import Conversation, LogStore, Response, new_conversation_id
store = LogStore(Path(sys.argv[1]))
conv = Conversation(new_conversation_id(), "prompt")
for i in range(int(sys.argv[3])):
    store.write(conv, [Response(conv.id, "prompt", prompt=f"{sys.argv[2]} {i}", output="o")])
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "150"], stderr=subprocess.PIPE)
        for name in ("first", "second")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    rows = LogStore(path).responses(limit=None)
    assert len(rows) == 300
    for name in ("first", "second"):
        assert sorted(int((r.prompt or "").split()[1]) for r in rows if (r.prompt or "").startswith(name)) == list(
            range(150)
        )


@pytest.mark.slow
def test_ask_summarize_and_a_failure_each_write_a_row_with_its_fields(tmp_path: Path, dsv2_home: Path) -> None:
    doc = tmp_path / "fares.md"
    doc.write_text(f"# Fares\n\nResidents pay at most 4.50 euros per crossing.\n\nAPI_KEY={SECRET}\n")
    asked = runner.invoke(app, ["ask", "What do residents pay?", str(doc), *FAST])
    assert asked.exit_code == 0, asked.output
    summed = runner.invoke(app, ["summarize", str(doc), *FAST])
    assert summed.exit_code == 0, summed.output
    missing = runner.invoke(app, ["ask", "What?", str(tmp_path / "gone.txt"), *FAST])
    assert missing.exit_code == 3
    skipped = runner.invoke(app, ["ask", "What do residents pay?", str(doc), "--no-log", *FAST])
    assert skipped.exit_code == 0
    prompted = runner.invoke(app, ["prompt", "Say hello.", "-s", "Be brief.", *FAST])
    assert prompted.exit_code == 0, prompted.output
    extracted = runner.invoke(app, ["extract", str(tmp_path / "gone.pdf")])
    assert extracted.exit_code == 3

    ask_row, summary_row, failed, prompt_row, extract_row = _rows(dsv2_home)
    assert ask_row["command"] == "ask" and ask_row["prompt"] == "What do residents pay?"
    assert ask_row["output"] and ask_row["output_tokens"] > 0 and ask_row["prompt_tokens"] > 20
    assert ask_row["cached_tokens"] == 0 and ask_row["exit_status"] == 0
    assert ask_row["model"] and ask_row["backend"]["backend"] == "local"
    assert ask_row["answered_by"]["backend"] == "local"
    assert "careful reader" in ask_row["system"]
    (given,) = ask_row["inputs"]
    assert given["source"] == str(doc) and len(given["sha256"]) == 64
    assert ask_row["sources"][0]["path"] == str(doc)
    assert set(ask_row["timings"]) >= {"prompt_eval_s", "generation_s"}
    assert summary_row["command"] == "summarize" and summary_row["output"] and summary_row["output_tokens"] > 0
    assert failed["command"] == "ask" and failed["exit_status"] == 3 and "gone.txt" in failed["error"]
    assert prompt_row["command"] == "prompt" and prompt_row["system"] == "Be brief." and prompt_row["output"]
    assert prompt_row["prompt"] == "Say hello." and prompt_row["inputs"] == [] and prompt_row["output_tokens"] > 0
    assert extract_row["command"] == "extract" and extract_row["exit_status"] == 3
    assert extract_row["inputs"][0]["source"] == str(tmp_path / "gone.pdf")
    assert SECRET.encode() not in log_path(dsv2_home).read_bytes()

    found = runner.invoke(app, ["logs", "-q", "what do RESIDENTS pay", "--json"])  # --no-log left no row
    assert [json.loads(line)["command"] for line in found.stdout.splitlines()] == ["ask"]
    one = runner.invoke(app, ["logs", "--cid", summary_row["conversation_id"], "--json"])
    assert [json.loads(line)["command"] for line in one.stdout.splitlines()] == ["summarize"]
    assert runner.invoke(app, ["logs", "path"]).stdout.strip() == str(log_path(dsv2_home))


def test_logs_off_records_nothing_until_on(tmp_path: Path, dsv2_home: Path) -> None:
    assert runner.invoke(app, ["logs", "off"]).exit_code == 0
    runner.invoke(app, ["ask", "What?", str(tmp_path / "gone.txt")])
    assert _rows(dsv2_home) == []
    assert runner.invoke(app, ["logs", "on"]).exit_code == 0
    runner.invoke(app, ["ask", "What?", str(tmp_path / "gone.txt")])
    assert [r["exit_status"] for r in _rows(dsv2_home)] == [3]
    assert runner.invoke(app, ["logs", "sideways"]).exit_code == 2
