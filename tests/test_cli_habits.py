"""The habits of well-liked CLIs: -h, completion, clean help with examples, one-line usage errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SAMPLES, dsv2_cmd

COMMANDS = [
    ["summarize"],
    ["ask"],
    ["extract"],
    ["pack"],
    ["plan"],
    ["models"],
    ["models", "pull"],
    ["models", "list"],
    ["models", "rm"],
    ["models", "default"],
    ["index", "status"],
    ["index", "rebuild"],
    ["index", "drop"],
    ["index", "list"],
    ["cache", "status"],
    ["cache", "clear"],
    ["logs"],
    ["chat"],
    ["prompt"],
    ["templates", "list"],
    ["templates", "show"],
    ["templates", "edit"],
    ["templates", "path"],
    ["config", "path"],
    ["config", "show"],
    ["completion"],
]


def dsv2(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*dsv2_cmd(), *args], capture_output=True, text=True, timeout=60, env=env)


def test_dash_h_is_help() -> None:
    short, long = dsv2("-h"), dsv2("--help")
    assert short.returncode == long.returncode == 0
    assert short.stdout == long.stdout and "Commands:" in short.stdout
    sub_short, sub_long = dsv2("ask", "-h"), dsv2("ask", "--help")
    assert sub_short.stdout == sub_long.stdout and "--question" in sub_short.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_help_has_examples_and_no_stray_escapes(command: list[str]) -> None:
    proc = dsv2(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "\\[" not in proc.stdout and "\\]" not in proc.stdout, proc.stdout
    examples = proc.stdout.split("Examples:", 1)
    assert len(examples) == 2, f"no example block in dsv2 {' '.join(command)} --help"
    assert f"dsv2 {command[0]}" in examples[1]


def test_help_shows_defaults_and_required_without_backslashes() -> None:
    assert "[default: 10]" in dsv2("plan", "--help").stdout
    assert "[required]" in dsv2("extract", "--help").stdout


def test_bash_completion_completes_su_to_summarize(tmp_path: Path) -> None:
    """The generated script, sourced in a real bash, asked for `dsv2 su<TAB>` and `dsv2 ask --que<TAB>`."""
    bash = shutil.which("bash")
    assert bash is not None
    script = tmp_path / "dsv2.bash"
    proc = dsv2("completion", "bash")
    assert proc.returncode == 0, proc.stderr
    script.write_text(proc.stdout)
    entry = Path(sys.executable).parent / "dsv2"
    assert entry.exists(), "the dsv2 entry point is installed next to this interpreter"
    env = {**os.environ, "PATH": f"{entry.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    probe = (
        f"source {script}\n"
        'COMP_WORDS=(dsv2 su); COMP_CWORD=1; _dsv2_completion dsv2; echo "1:${COMPREPLY[*]}"\n'
        'COMP_WORDS=(dsv2 ask --que); COMP_CWORD=2; _dsv2_completion dsv2; echo "2:${COMPREPLY[*]}"\n'
    )
    out = subprocess.run([bash, "-c", probe], capture_output=True, text=True, timeout=60, env=env)
    assert "1:summarize" in out.stdout.splitlines(), out.stdout + out.stderr
    assert "2:--question --questions-file" in out.stdout.splitlines(), out.stdout + out.stderr


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_ask_dsv2_for_completions(shell: str) -> None:
    """zsh and fish are not installed here: the script is generated, and the protocol it speaks
    (the variables it sets when it calls dsv2) answers `dsv2 su` with summarize."""
    script = dsv2("completion", shell).stdout
    assert f"_DSV2_COMPLETE=complete_{shell}" in script and "_TYPER_COMPLETE_ARGS" in script
    env = {**os.environ, "_DSV2_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": "dsv2 su"}
    if shell == "fish":
        env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    proc = subprocess.run(dsv2_cmd(), capture_output=True, text=True, timeout=60, env=env)
    assert "summarize" in proc.stdout, proc.stdout + proc.stderr
    assert "extract" not in proc.stdout


def test_show_completion_prints_a_script_for_the_calling_shell() -> None:
    """typer's --show-completion detects the shell from the parent processes: run it from bash."""
    import shlex

    cmd = shlex.join([*dsv2_cmd(), "--show-completion"])
    proc = subprocess.run(["bash", "-c", f"{cmd}; exit $?"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "_DSV2_COMPLETE=complete_bash" in proc.stdout


def test_unknown_shell_is_a_usage_error() -> None:
    proc = dsv2("completion", "tcsh")
    assert proc.returncode == 2 and "tcsh" in proc.stderr and "bash" in proc.stderr


def test_misspelt_command_suggests_once() -> None:
    proc = dsv2("summarise")
    assert proc.returncode == 2
    assert proc.stderr.lower().count("did you mean") == 1, proc.stderr
    assert "summarize" in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 2


def test_flag_typo_is_one_line_and_a_hint() -> None:
    proc = dsv2("summarize", "--modle", "x.gguf", str(SAMPLES / "harbor-light-annual-report.md"))
    assert proc.returncode == 2
    error, hint = proc.stderr.strip().splitlines()
    assert error == "dsv2 summarize: no such option '--modle' (did you mean --model?)"
    assert hint == "Try 'dsv2 summarize -h' for help."


def test_question_after_the_document_gets_the_right_order() -> None:
    pdf = SAMPLES / "contract-msa.pdf"
    proc = dsv2("ask", str(pdf), "What is the liability cap?")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "the question comes first" in proc.stderr
    assert f"dsv2 ask 'What is the liability cap?' {pdf}" in proc.stderr
    assert "no such file" not in proc.stderr


def test_a_missing_document_is_still_named() -> None:
    proc = dsv2("ask", "What is the cap?", "nothere.pdf")
    assert proc.returncode == 3 and "nothere.pdf: no such file" in proc.stderr
