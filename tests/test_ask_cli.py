"""`dsv2 ask` end to end: whole corpus when it fits, retrieval with citations when it does not."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.errors import ExitCode

from .scripted_server import ScriptedModel

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


# --- citations: every marker checked against the passages sent, a Sources block after the answer ---

FARES = "Fares. Island residents pay at most 4.50 euros per crossing on the inner routes."
TIMETABLE = "Timetable. The first ferry leaves the harbour at 06:10 on weekdays."
# A real marker with a quote that is on its page, an invented page, and the example the old
# prompt template showed (`[src/app.py:12-20]`), which a small model copied into answers about PDFs.
ANSWER = (
    'Residents "pay at most 4.50 euros per crossing" [fares.pdf p. 1], kids nothing [fares.pdf p. 7] '
    "[src/app.py:12-20]."
)


@pytest.fixture
def fares_pdf(tmp_path: Path) -> Path:
    from .sources.pdfs import write_pdf

    return write_pdf(tmp_path / "fares.pdf", [FARES, TIMETABLE])


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedModel]]:
    made: list[ScriptedModel] = []

    def make(*replies: str) -> ScriptedModel:
        made.append(ScriptedModel(*replies))
        return made[-1]

    yield make
    for server in made:
        server.close()


def on(server: ScriptedModel) -> list[str]:
    return ["--backend", "openai", "--base-url", server.url, "--api-model", "scripted", "--ctx", "4096"]


def test_text_mode_lists_sources_and_flags_invented_and_copied_markers(
    fares_pdf: Path, scripted: Callable[..., ScriptedModel]
) -> None:
    model = scripted(ANSWER)
    result = runner.invoke(app, ["ask", "What do residents pay?", str(fares_pdf), *on(model)])
    assert result.exit_code == 0, result.output
    answer, block = result.stdout.split("\n\nSources:\n")
    assert answer == ANSWER  # the answer as the model wrote it, then the block
    assert block.splitlines() == [
        f"  [fares.pdf p. 1]  {fares_pdf}, p. 1",
        "  [fares.pdf p. 7]  NOT SENT: page 7 of fares.pdf was not sent",
        "  [src/app.py:12-20]  NOT SENT: no passage of src/app.py was sent",
        "Quotes:",
        '  "pay at most 4.50 euros per crossing" [fares.pdf p. 1]: found in the cited passage',
        "Sent but not cited:",
        f"  {fares_pdf}: p. 2",
    ]
    warnings = [line for line in result.stderr.splitlines() if "match nothing" in line]
    assert warnings == [
        "dsv2: warning: 2 citations match nothing that was sent: [fares.pdf p. 7] (page 7 of fares.pdf was not "
        "sent), [src/app.py:12-20] (no passage of src/app.py was sent)"
    ]
    # the prompt showed the citation format with this document's own first marker, no made-up example
    prompt = model.bodies[0]["messages"][-1]["content"]
    assert f"for example [{fares_pdf} p. 1]" in prompt
    assert "src/app.py" not in prompt and "report.pdf" not in prompt


def test_json_keeps_its_fields_and_adds_citations(fares_pdf: Path, scripted: Callable[..., ScriptedModel]) -> None:
    model = scripted(ANSWER)
    result = runner.invoke(app, ["ask", "What do residents pay?", str(fares_pdf), *on(model), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    for key in ("answer", "question", "model", "strategy", "sources", "input_tokens", "output_tokens", "timings"):
        assert key in payload
    assert payload["answer"] == ANSWER
    cites = payload["citations"]
    assert cites["verified"] is False and cites["passages_sent"] == 2
    [used] = cites["used"]
    assert used["marker"] == "[fares.pdf p. 1]" and used["path"] == str(fares_pdf) and used["page"] == 1
    assert used["passages"] == [f"{fares_pdf} p. 1"]
    assert [(u["marker"], u["reason"]) for u in cites["unknown"]] == [
        ("[fares.pdf p. 7]", "page 7 of fares.pdf was not sent"),
        ("[src/app.py:12-20]", "no passage of src/app.py was sent"),
    ]
    assert [(p["path"], p["page"]) for p in cites["uncited"]] == [(str(fares_pdf), 2)]
    assert cites["quotes"] == [
        {
            "quote": "pay at most 4.50 euros per crossing",
            "marker": "[fares.pdf p. 1]",
            "verified": True,
            "found_in": None,
        }
    ]
    assert "Sources:" not in result.stdout


def test_strict_citations_exits_8_after_the_answer_and_its_sources(
    fares_pdf: Path, scripted: Callable[..., ScriptedModel]
) -> None:
    model = scripted(ANSWER, f"Residents pay at most 4.50 euros [{fares_pdf.name} p. 1].")
    args = ["ask", "What do residents pay?", str(fares_pdf), *on(model), "--strict-citations"]
    failed = runner.invoke(app, args)
    assert failed.exit_code == 8 == ExitCode.CITATION
    assert failed.stdout.startswith(ANSWER) and "NOT SENT" in failed.stdout
    assert failed.stderr.splitlines()[-1].startswith("dsv2: error: the citations do not check out")
    as_json = runner.invoke(app, [*args, "--json", *on(scripted(ANSWER))])  # the JSON line is written first
    assert as_json.exit_code == 8 and json.loads(as_json.stdout)["citations"]["verified"] is False
    passed = runner.invoke(app, [*args, "--no-sources"])  # the second answer cites only what was sent
    assert passed.exit_code == 0, passed.output
    assert passed.stdout == "Residents pay at most 4.50 euros [fares.pdf p. 1].\n"  # --no-sources: the answer alone


def test_a_quote_the_cited_page_does_not_hold_is_named(fares_pdf: Path, scripted: Callable[..., ScriptedModel]) -> None:
    model = scripted('The first ferry "leaves the harbour at 06:10" [fares.pdf p. 1].')
    result = runner.invoke(app, ["ask", "When is the first ferry?", str(fares_pdf), *on(model), "--strict-citations"])
    assert result.exit_code == 8
    assert (
        f'  "leaves the harbour at 06:10" [fares.pdf p. 1]: NOT FOUND in the cited passage (it is in {fares_pdf} p. 2)'
        in result.stdout.splitlines()
    )
    assert "1 quote not found in the passage cited" in result.stderr


def test_each_of_several_questions_gets_its_own_check(fares_pdf: Path, scripted: Callable[..., ScriptedModel]) -> None:
    replies = ("Residents pay 4.50 euros [fares.pdf p. 1].", "At 06:10 [fares.pdf p. 3].")
    args = ["ask", "-q", "What do residents pay?", "-q", "When is the first ferry?", str(fares_pdf)]
    result = runner.invoke(app, [*args, *on(scripted(*replies))])
    assert result.exit_code == 0, result.output
    first, second = result.stdout.split("## When is the first ferry?")
    assert "[fares.pdf p. 1]  " in first and "NOT SENT" not in first
    assert "  [fares.pdf p. 3]  NOT SENT: page 3 of fares.pdf was not sent" in second
    assert "dsv2: warning: question 2: 1 citation matches nothing that was sent" in result.stderr
    again = runner.invoke(app, [*args, *on(scripted(*replies)), "--json"])
    records = [json.loads(line) for line in again.stdout.splitlines()]
    assert [r["citations"]["verified"] for r in records] == [True, False]


def test_library_users_get_the_check_on_the_answer(fares_pdf: Path, scripted: Callable[..., ScriptedModel]) -> None:
    from dsv2cli.api import Session

    model = scripted(ANSWER)
    with Session(backend="openai", base_url=model.url, api_model="scripted", ctx=4096) as dsv2:
        answer = dsv2.ask("What do residents pay?", dsv2.load([str(fares_pdf)]))
    check = answer.citations
    assert answer.answer == ANSWER and not check.ok
    assert [u.marker.text for u in check.unknown] == ["[fares.pdf p. 7]", "[src/app.py:12-20]"]
    assert [q.verified for q in check.quotes] == [True]


def test_a_continued_ask_checks_its_citations_like_ask(fares_pdf: Path, scripted: Callable[..., ScriptedModel]) -> None:
    """ask -c answers after the conversation's history, over its documents, and its answers get
    the same Sources block, --json citations and --strict-citations as ask's."""
    first = runner.invoke(app, ["ask", "What do residents pay?", str(fares_pdf), *on(scripted(ANSWER))])
    assert first.exit_code == 0, first.output
    invented = "The first ferry leaves at 06:10 [fares.pdf p. 7]."
    model = scripted(invented, invented, "It leaves at 06:10 [fares.pdf p. 2].")
    args = ["ask", "-c", "When is the first ferry?", *on(model)]
    failed = runner.invoke(app, [*args, "--strict-citations"])
    assert failed.exit_code == 8 == ExitCode.CITATION, failed.output
    assert failed.stdout.startswith(invented) and "Sources:" in failed.stdout
    assert "  [fares.pdf p. 7]  NOT SENT: page 7 of fares.pdf was not sent" in failed.stdout
    assert failed.stderr.splitlines()[-1].startswith("dsv2: error: the citations do not check out")
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    cites = json.loads(as_json.stdout)["citations"]
    assert cites["verified"] is False and cites["unknown"][0]["marker"] == "[fares.pdf p. 7]"
    passed = runner.invoke(app, [*args, "--strict-citations", "--no-sources"])
    assert passed.exit_code == 0, passed.output
    assert passed.stdout == "It leaves at 06:10 [fares.pdf p. 2].\n"
