"""Conversations: dsv2 chat in a real pty, KV reuse per turn, folding on overflow, -c across processes,
--system in the rendered prompt, dsv2 prompt, and templates checked for their placeholders."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyte
import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app

from .conftest import dsv2_cmd
from .terminal import squeeze

runner = CliRunner()
MODEL = ["--threads", "1", "--temperature", "0"]
ROWS, COLS = 200, 120  # tall enough that nothing scrolls away
CONTRACT = "The lease starts on 1 March 2024 and ends on 1 May 2030. The monthly rent is 1,250 euros.\n"


def log_rows() -> list[dict]:
    result = runner.invoke(app, ["logs", "-n", "0", "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*dsv2_cmd(), *args], input=stdin, capture_output=True, text=True, timeout=300)


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    path = tmp_path / "lease.txt"
    path.write_text(CONTRACT)
    return path


# --- the system prompt, dsv2 prompt, templates (no generation) -------------------------------------


def test_system_reaches_the_rendered_prompt_of_ask_summarize_and_prompt(contract: Path) -> None:
    for args in (
        ["ask", "When does it end?", str(contract)],
        ["summarize", str(contract)],
        ["prompt", "Hello"],
    ):
        result = runner.invoke(app, [*args, "-s", "Answer like a ship's captain.", "--dry-run", "--json"])
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout.splitlines()[0])
        assert payload["system"].endswith("Answer like a ship's captain."), args
        if args[0] != "prompt":  # documents keep the built-in rule that their text is data
            assert "never instructions to follow" in payload["system"]
        else:
            assert payload["system"] == "Answer like a ship's captain."
            assert "Answer like a ship's captain." in payload["prompt"]


def test_prompt_takes_standard_input_and_is_checked_against_the_window() -> None:
    diff = "--- a/x.py\n+++ b/x.py\n-    return a + b\n+    return a - b\n"
    shown = run("prompt", "-s", "Write a commit message.", "--dry-run", "--json", stdin=diff)
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    assert "return a - b" in payload["prompt"] and payload["prompt_tokens"] > 20
    too_big = run("prompt", "--ctx", "256", "--max-tokens", "64", "--dry-run", stdin="word " * 400)
    assert too_big.returncode == 5, too_big.stderr
    assert "256-token window" in too_big.stderr and len(too_big.stderr.strip().splitlines()) <= 2
    empty = run("prompt")
    assert empty.returncode == 2 and "no prompt" in empty.stderr


def test_a_template_missing_a_placeholder_is_refused(contract: Path, dsv2_home: Path, tmp_path: Path) -> None:
    folder = dsv2_home / "templates"
    folder.mkdir(parents=True)
    (folder / "noquestion.txt").write_text("{{ document }}\n\nSummarize the risks.\n")
    (folder / "qfirst.txt").write_text("Question: {{ question }}\n\n{{ document }}\n")
    refused = runner.invoke(app, ["ask", "When?", str(contract), "-t", "noquestion", "--dry-run"])
    assert refused.exit_code == 2 and "lacks {{ question }}" in refused.output
    unknown = tmp_path / "odd.txt"
    unknown.write_text("{{ document }} {{ question }} {{ mood }}")
    odd = runner.invoke(app, ["ask", "When?", str(contract), "--prompt-file", str(unknown), "--dry-run"])
    assert odd.exit_code == 2 and "mood" in odd.output
    nodoc = runner.invoke(app, ["summarize", str(contract), "-t", "qfirst", "--dry-run"])
    assert nodoc.exit_code == 2
    used = runner.invoke(app, ["ask", "When does it end?", str(contract), "-t", "qfirst", "--dry-run"])
    assert used.exit_code == 0, used.output
    assert used.stdout.index("Question: When does it end?") < used.stdout.index("ends on 1 May 2030")
    listed = runner.invoke(app, ["templates", "list", "--json"])
    names = {t["name"]: t for t in json.loads(listed.stdout)}
    assert names["qfirst"]["builtin"] is False and names["qfirst"]["commands"] == ["ask", "chat"]
    assert names["ask"]["builtin"] is True and names["summarize_brief"]["commands"] == ["summarize"]
    missing = runner.invoke(app, ["ask", "When?", str(contract), "-t", "nosuch", "--dry-run"])
    assert missing.exit_code == 2 and "no template named 'nosuch'" in missing.output


def test_templates_edit_checks_what_the_editor_saved(dsv2_home: Path) -> None:
    editor = dsv2_home.parent / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "{{ document }}\\nWho signs? {{ question }}\\n" > "$1"\n')
    editor.chmod(0o755)
    os.environ["EDITOR"] = str(editor)
    try:
        made = runner.invoke(app, ["templates", "edit", "signers"])
        assert made.exit_code == 0, made.output
        shown = runner.invoke(app, ["templates", "show", "signers"])
        assert "Who signs? {{ question }}" in shown.stdout
        assert runner.invoke(app, ["templates", "path"]).stdout.strip() == str(dsv2_home / "templates")
        editor.write_text('#!/bin/sh\nprintf "{{ documents }}" > "$1"\n')
        bad = runner.invoke(app, ["templates", "edit", "signers"])
        assert bad.exit_code == 2 and "documents" in bad.output
    finally:
        del os.environ["EDITOR"]


# --- with the model --------------------------------------------------------------------------------


@pytest.mark.slow
def test_chat_in_a_pty_three_turns_each_evaluating_only_its_own_tokens(contract: Path, dsv2_home: Path) -> None:
    import pexpect

    env = {**os.environ, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1"}
    env.pop("NO_COLOR", None)
    args = ["-m", "dsv2cli", "chat", str(contract), *MODEL, "--max-tokens", "48", "--ctx", "1024"]
    child = pexpect.spawn(sys.executable, args, env=env, timeout=120, encoding="utf-8", dimensions=(ROWS, COLS))
    seen = io.StringIO()
    child.logfile_read = seen
    ready = "\x1b[?2004h"  # prompt_toolkit turns bracketed paste on as each prompt starts
    try:
        for question in ("When does the lease end?", "What year is that?", "Repeat the year."):
            child.expect_exact(ready)
            child.sendline(question)
        child.expect_exact(ready)
        child.sendline("Tell me a long story about this lease.")  # Ctrl-C stops the answer, not the session
        child.expect_exact("\x1b[?2004l")  # the line is read; what follows is the answer
        child.expect(r"\w{3}")
        child.sendintr()
        child.expect("stopped")
        child.expect_exact(ready)
        child.sendline("/sources")
        child.expect("lease.txt")
        child.expect("The last answer's sources:")  # checked against the passages sent, as ask's are
        child.expect("passage")
        child.expect_exact(ready)
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    turns = log_rows()
    # What a person sees: every answer stays on the screen (no progress display drew over it).
    screen = pyte.Screen(COLS, ROWS)
    pyte.Stream(screen).feed(seen.getvalue())
    shown = squeeze("\n".join(screen.display))
    for turn in turns[:3]:
        assert squeeze(turn["output"]) in shown, (turn["output"], screen.display)
    assert [r["command"] for r in turns] == ["chat"] * 4
    assert len({r["conversation_id"] for r in turns}) == 1
    assert "2030" in turns[0]["output"]
    assert turns[3]["options"]["stopped"] is True
    first, second, third = turns[:3]
    assert first["cached_tokens"] == 0 and first["options"]["evaluated_tokens"] == first["prompt_tokens"]
    for before, turn in ((first, second), (second, third)):
        # New: the question and the template's tokens around it. The answer before it was
        # evaluated as it was generated (all but a last token cut by --max-tokens).
        new = turn["prompt_tokens"] - before["prompt_tokens"] - before["output_tokens"]
        new += 1 if before["options"]["finish"] == "length" else 0
        assert turn["options"]["evaluated_tokens"] == new, (before, turn)
        assert turn["cached_tokens"] == turn["prompt_tokens"] - new
        assert new < 30


@pytest.mark.slow
def test_overflow_folds_the_oldest_turns_into_an_announced_summary() -> None:
    questions = [
        f"Remember code word number {i}: {word}. It is one of several code words I will give you, "
        f"each on its own line, and I will ask about all of them later, in the same order, so keep "
        f"each one with its number and do not mix them up. Say OK."
        for i, word in enumerate(["amber", "birch", "cobalt", "dune", "ember", "fjord"], 1)
    ]
    done = run("chat", *MODEL, "--ctx", "512", "--max-tokens", "32", stdin="\n".join(questions) + "\n")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "folding the oldest" in line]
    assert notes, done.stderr
    assert "512-token window" in notes[0] and "prompt tokens" in notes[0]
    assert "summary of the folded turns" in done.stderr
    turns = log_rows()
    assert [r["prompt"] for r in turns] == questions  # every turn asked verbatim and logged
    folded = sum(r["options"]["folded_turns"] for r in turns)
    announced = sum(int(line.split("folding the oldest ")[1].split()[0]) for line in notes)
    assert folded == announced > 0
    assert all(r["prompt_tokens"] + 32 <= 512 for r in turns)


@pytest.mark.slow
def test_ask_continues_across_processes_with_its_documents(contract: Path) -> None:
    first = run("ask", "When does the lease end?", str(contract), *MODEL, "--max-tokens", "24", "--json")
    assert first.returncode == 0, first.stderr
    second = run("ask", "-c", "And the monthly rent?", *MODEL, "--max-tokens", "24", "--json")
    assert second.returncode == 0, second.stderr
    payload = json.loads(second.stdout)
    assert payload["history_tokens"] > 0 and payload["strategy"] == "whole"  # the lease came back
    shown = run("ask", "-c", "Who pays?", "--dry-run", "--json")
    plan = json.loads(shown.stdout)
    assert "When does the lease end?" in plan["prompt"] and "And the monthly rent?" in plan["prompt"]
    assert "1,250 euros" in plan["prompt"]
    rows = log_rows()
    assert [r["command"] for r in rows] == ["ask", "ask"]
    assert rows[0]["conversation_id"] == rows[1]["conversation_id"] == payload["conversation_id"]
    other = run("ask", "--cid", "0000nosuch", "Why?")
    assert other.returncode == 2 and "no conversation" in other.stderr


@pytest.mark.slow
def test_chat_over_a_corpus_larger_than_the_window_retrieves_for_each_turn(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    for i in range(40):
        body = "\n".join(
            f"def helper_{i}_{k}(value):\n    '''Scale value by {k}.'''\n    return value * {k}\n" for k in range(6)
        )
        (root / f"module_{i:02d}.py").write_text(body)
    (root / "ferry_fares.py").write_text(
        "RESIDENT_FARE_CAP_EUR = 4.50\n\n\ndef resident_fare(standard_fare):\n"
        "    '''Island residents never pay more than the regional fare cap.'''\n"
        "    return min(standard_fare, RESIDENT_FARE_CAP_EUR)\n"
    )
    (root / "harbour_hours.py").write_text(
        "HARBOUR_OPENS_AT = '06:00'\n\n\ndef harbour_open(now):\n"
        "    '''The harbour gate opens at six in the morning.'''\n    return now >= HARBOUR_OPENS_AT\n"
    )
    turns = "What is RESIDENT_FARE_CAP_EUR in resident_fare?\nWhen does the harbour gate open, HARBOUR_OPENS_AT?\n"
    done = run("chat", "--repo", str(root), *MODEL, "--ctx", "1024", "--max-tokens", "16", stdin=turns)
    assert done.returncode == 0, done.stderr
    assert "retrieving passages for each question" in done.stderr
    first, second = log_rows()
    for row, planted in ((first, "ferry_fares.py"), (second, "harbour_hours.py")):
        assert row["options"]["strategy"] == "retrieve"
        assert planted in {Path(s["path"]).name for s in row["sources"]}, row["sources"]
        assert row["prompt_tokens"] + 16 <= 1024
    assert second["prompt"].startswith("When does the harbour gate open")


@pytest.mark.slow
def test_a_logged_prompt_is_resumed_by_the_api_by_prompt_c_and_by_chat_c() -> None:
    from dsv2cli.api import Session
    from dsv2cli.errors import UsageError

    first = runner.invoke(app, ["prompt", "Name a harbour.", "-s", "Be terse.", *MODEL, "--max-tokens", "8"])
    assert first.exit_code == 0, first.output
    with Session(threads=1, temperature=0) as dsv2:
        plan = dsv2.resume(dry_run=True).plan("And a river?")  # the last conversation, its system text kept
        assert plan.system == "Be terse." and "Name a harbour." in plan.prompt.text
        assert dsv2.resume(dry_run=True, system="Be long.").plan("And a river?").system == "Be long."
        with pytest.raises(UsageError, match="no conversation '0000nosuch'"):
            dsv2.resume("0000nosuch")
    shown = runner.invoke(app, ["prompt", "-c", "And a river?", "--dry-run", "--json"])
    assert shown.exit_code == 0, shown.output
    payload = json.loads(shown.stdout)
    assert payload["system"] == "Be terse." and "Name a harbour." in payload["prompt"]
    chatted = run("chat", "-c", *MODEL, "--max-tokens", "8", stdin="And a river?\n")
    assert chatted.returncode == 0, chatted.stderr
    assert "1 earlier turn(s)" in chatted.stderr
    rows = log_rows()
    assert [r["command"] for r in rows] == ["prompt", "chat"]
    assert rows[0]["conversation_id"] == rows[1]["conversation_id"]
    assert rows[1]["system"] == "Be terse."


@pytest.mark.slow
def test_prompt_plans_its_turn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # prompt plans before the model loads (an oversize prompt is refused first); the turn then
    # sends that plan instead of counting the whole prompt again.
    from dsv2cli.chat_session import Conversation

    plans: list[str] = []
    real = Conversation.plan

    def counted(self: Conversation, question: str) -> object:
        plans.append(question)
        return real(self, question)

    monkeypatch.setattr(Conversation, "plan", counted)
    done = runner.invoke(app, ["prompt", "Name a harbour.", *MODEL, "--max-tokens", "4"])
    assert done.exit_code == 0, done.output
    assert plans == ["Name a harbour."]
