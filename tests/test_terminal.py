"""What a person sees in a real terminal: the answer stays on screen, progress never draws over it.

Each command runs in a real pseudo-terminal (stdout and stderr the same tty, colours on) with the
real embedded model; pyte replays the bytes and the final screen must hold the whole text that
``--json`` returns for the same input (greedy decoding, no prefix cache, so both runs evaluate the
same tokens the same way). The same runs with stderr redirected leave no control sequence on
either stream.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import SAMPLES, dsv2_cmd
from .extract.conftest import INVOICE_SCHEMA
from .terminal import CONTROL, child_env, run_in_pty, squeeze

pytestmark = pytest.mark.slow

# One thread: on shared, busy cores llama.cpp's spinning thread barriers were up to 60x slower with two.
SAME = ["--temperature", "0", "--seed", "7", "--no-cache", "--threads", "1"]

REPORT = (
    "Harbor Light Ferries carried 4.1 million passengers in 2025, 6 percent more than in 2024. "
    "Revenue rose to 212 million euros, and the operating margin improved to 11.4 percent after the "
    "fuel hedges expired. Two battery-electric ferries ordered from the Brandt shipyard arrive in 2027 "
    "and 2028 and replace the last diesel vessels on the inner routes. The board proposes a dividend "
    "of 0.42 euros per share and plans to open a second maintenance base on the north island.\n"
)


def json_run(args: list[str]) -> list[dict[str, object]]:
    proc = subprocess.run([*dsv2_cmd(), *args, "--json"], capture_output=True, text=True, timeout=600, env=child_env())
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def assert_clean_redirected(args: list[str], tmp_path: Path) -> str:
    """The run with ``2> file``: neither the terminal's bytes nor the file hold a control sequence."""
    err = tmp_path / "stderr.txt"
    run = run_in_pty(args, child_env(), redirect_stderr=err)
    assert run.exit_code == 0, err.read_text()
    stdout = run.raw.decode().replace("\r\n", "\n")  # the pty's own newline translation
    assert not CONTROL.search(stdout), repr(stdout[:300])
    stderr = err.read_text()
    assert not CONTROL.search(stderr), repr(stderr[:300])
    return stderr


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.txt"
    path.write_text(REPORT)
    return path


def test_streamed_summary_stays_on_screen(report: Path, tmp_path: Path) -> None:
    args = ["summarize", str(report), "--max-tokens", "80", *SAME]
    [expected] = json_run(args)
    run = run_in_pty(args, child_env())
    assert run.exit_code == 0, run.text
    assert expected["summary"]
    assert squeeze(str(expected["summary"])) in squeeze(run.text), run.text
    assert "embedded test model" in run.text  # the notice stays too
    assert b"\x1b[" in run.raw  # a real terminal session: rich did draw
    assert_clean_redirected(args, tmp_path)


def test_map_reduce_stage_bars_end_before_the_final_summary_streams(tmp_path: Path) -> None:
    doc = tmp_path / "long.txt"
    doc.write_text("\n\n".join(REPORT.replace("2025", str(year)) for year in range(2010, 2018)))
    args = ["summarize", str(doc), "--ctx", "768", "--max-tokens", "48", *SAME]
    [expected] = json_run(args)
    assert expected["strategy"] == "map-reduce" and int(str(expected["calls"])) > 2
    run = run_in_pty(args, child_env())
    assert run.exit_code == 0, run.text
    assert squeeze(str(expected["summary"])) in squeeze(run.text), run.text
    assert b"map-reduce: map" in run.raw  # the stage bar was drawn while the chunks ran ...
    assert "map-reduce" not in run.text.replace("map-reduce over", "")  # ... and cleared
    assert_clean_redirected(args, tmp_path)


def test_two_questions_both_answers_stay(report: Path, tmp_path: Path) -> None:
    args = ["ask", "-q", "How many passengers?", "-q", "What dividend is proposed?", str(report)]
    args += ["--max-tokens", "40", *SAME]
    expected = json_run(args)
    assert len(expected) == 2
    run = run_in_pty(args, child_env())
    assert run.exit_code == 0, run.text
    screen = squeeze(run.text)
    at = 0
    for answer in expected:  # each heading, then its whole answer, in order
        at = screen.index(f"##{squeeze(str(answer['question']))}", at)
        at = screen.index(squeeze(str(answer["answer"])), at)
    assert_clean_redirected(args, tmp_path)


def test_extract_result_stays_on_screen(tmp_path: Path) -> None:
    invoice = tmp_path / "invoice.txt"
    invoice.write_text(
        "INVOICE No. INV-2026-0417\nBluewater Instruments Ltd, Galway. Bill to: Kestrel Survey GmbH.\n"
        "Invoice date: 3 February 2026. Due date: 5 March 2026. Total due: EUR 2,840.00.\n"
    )
    schema = tmp_path / "invoice.schema.json"
    schema.write_text(json.dumps(INVOICE_SCHEMA))
    args = ["extract", str(invoice), "--schema", str(schema), *[a for a in SAME if a != "--no-cache"]]
    proc = subprocess.run([*dsv2_cmd(), *args], capture_output=True, text=True, timeout=600, env=child_env())
    assert proc.returncode == 0, proc.stderr
    expected = json.loads(proc.stdout)
    run = run_in_pty(args, child_env())
    assert run.exit_code == 0, run.text
    for name, value in expected["fields"].items() if "fields" in expected else expected.items():
        if name in INVOICE_SCHEMA["properties"] and value is not None:
            assert squeeze(json.dumps(value["evidence"], ensure_ascii=False)) in squeeze(run.text), run.text
    assert squeeze(f'"source": "{invoice}"') in squeeze(run.text)
    assert_clean_redirected(args, tmp_path)


def test_first_ask_builds_the_index_with_a_progress_bar(tmp_path: Path) -> None:
    """A corpus over the window: the first ask embeds ~120 chunks behind a bar (done/total, rate,
    time left) that is cleared before the answer streams; redirected, stderr gets a start and an
    end line instead (120 chunks at the assumed 20 chunks/s: over the 3 s that are announced)."""
    root = tmp_path / "src"
    root.mkdir()
    for i in range(120):
        (root / f"route_{i:02d}.py").write_text(
            "\n\n".join(
                f"def timetable_{i}_{k}(day):\n    '''Departures of route {i}, variant {k}.'''\n    return day * {k}\n"
                for k in range(2)
            )
        )
    (root / "fares.py").write_text(
        "RESIDENT_FARE_CAP_EUR = 4.50\n\n\n"
        "def resident_fare(standard):\n    return min(standard, RESIDENT_FARE_CAP_EUR)\n"
    )
    args = ["ask", "--repo", str(root), "What is the resident fare cap?", "--ctx", "1024", "--max-tokens", "32"]
    run = run_in_pty([*args, *SAME], child_env())
    assert run.exit_code == 0, run.text
    assert b"indexing (embedding chunks)" in run.raw and b"chunks/s" in run.raw
    assert "indexing" not in run.text  # cleared before the answer
    [expected] = json_run([*args, *SAME])  # the index exists now: same retrieval, same prompt
    assert expected["strategy"] == "retrieve"
    assert squeeze(str(expected["answer"])) in squeeze(run.text), run.text

    # the same first ask with stderr redirected: one line when indexing starts, one when it ends
    home = tmp_path / "home2"
    env = {**child_env(), "DSV2_HOME": str(home)}
    err = tmp_path / "err.txt"
    redirected = run_in_pty([*args, *SAME], env, redirect_stderr=err)
    assert redirected.exit_code == 0
    stderr = err.read_text()
    assert not CONTROL.search(stderr)
    starts = [line for line in stderr.splitlines() if line.startswith("dsv2: indexing") and "about" in line]
    ends = [line for line in stderr.splitlines() if line.startswith("dsv2: indexing") and ": done," in line]
    assert len(starts) == 1 and len(ends) == 1, stderr
    assert "chunks" in starts[0] and "chunks/s" in ends[0]


def test_warning_after_a_streamed_answer_starts_on_a_fresh_line(report: Path) -> None:
    run = run_in_pty(["summarize", str(report), "--max-tokens", "6", *SAME], child_env())
    assert run.exit_code == 0
    warning = [line for line in run.screen if "reached --max-tokens" in line]
    assert len(warning) == 1 and warning[0].startswith("dsv2: warning"), run.text


def test_sample_report_in_a_terminal(tmp_path: Path) -> None:
    """The first thing a new user runs (README): the summary of the shipped sample stays visible."""
    args = ["summarize", str(SAMPLES / "harbor-light-annual-report.md"), "--ctx", "4096", "--max-tokens", "64"]
    # With the prompt-prefix cache: the terminal run loads the document prefix the --json run
    # evaluated (same tokens, same state), so the sample is evaluated once.
    cached = [a for a in SAME if a != "--no-cache"]
    [expected] = json_run([*args, *cached])
    run = run_in_pty([*args, *cached], child_env())
    assert run.exit_code == 0, run.text
    assert squeeze(str(expected["summary"])) in squeeze(run.text), run.text


@pytest.mark.parametrize(
    ("n", "unit", "shown"),
    [
        (1, "chunks", "1 chunk"),
        (3, "chunks", "3 chunks"),
        (0, "documents", "0 documents"),
        (1204, "tokens", "1,204 tokens"),
    ],
)
def test_progress_lines_count_in_the_singular_for_one(n: int, unit: str, shown: str) -> None:
    """The plain progress lines: 'map-reduce: final: done, 1 chunk in 2.0 s', never '1 chunks'."""
    from dsv2cli.render import counted

    assert counted(n, unit) == shown
