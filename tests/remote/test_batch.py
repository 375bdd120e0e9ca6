"""``summarize --each`` as a batch against a real HTTP server on loopback: packing many documents
into one request and splitting the answer back, re-running what it missed, resuming an
interrupted batch without sending a finished document again, and the progress line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dsv2cli.batch import BatchStatus, OutDir, pack_groups, split_packed
from dsv2cli.cli import app
from dsv2cli.render import batch_line
from dsv2cli.sources.base import Document, Location, Segment

from ..conftest import dsv2_cmd
from .servers import last_user_message, serve

runner = CliRunner()
NUMBERED = re.compile(r'<document source="(\d+): ([^"]+)">\n(.*?)\n</document>', re.DOTALL)


def write_docs(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for n in range(1, count + 1):
        path = folder / f"note{n:02d}.txt"
        path.write_text(f"Note {n}: the ferry Kittiwake made crossing number {n * 7} on schedule.\n")
        paths.append(path)
    return paths


def packed_answer(body: dict[str, Any]) -> str:
    """Like a model that follows the packed format, except that it skips any document saying MISSME."""
    message = last_user_message(body)
    found = NUMBERED.findall(message)
    if not found:  # a request for one document
        return "Alone: " + message.split("\n", 1)[0][:60]
    return "\n".join(
        f"### {number}\nSummary of {Path(source).name}." for number, source, text in found if "MISSME" not in text
    )


def remote(url: str) -> list[str]:
    return ["--backend", "openai", "--base-url", url, "--api-model", "smol", "--ctx", "4096"]


def test_pack_splits_the_answer_back_and_reruns_the_one_it_missed(dsv2_home: Path, tmp_path: Path) -> None:
    paths = write_docs(tmp_path / "notes", 5)
    paths[2].write_text("Note 3: MISSME the timetable changes in March.\n")
    with serve(answer=packed_answer) as server:
        run = runner.invoke(app, ["summarize", "--each", *map(str, paths), *remote(server.url), "--pack", "--json"])
        chats = server.chats()
    assert run.exit_code == 0, run.output
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["source"] for r in records] == [str(p) for p in paths]  # input order
    for n, record in enumerate(records, 1):
        if n == 3:
            assert record["strategy"] == "whole" and record["summary"].startswith("Alone: ")
        else:
            assert record["strategy"] == "packed" and record["summary"] == f"Summary of note{n:02d}.txt."
    assert len(chats) == 2  # one packed request and the re-run of the one it missed
    packed = NUMBERED.findall(last_user_message(chats[0]))
    assert [(int(n), s) for n, s, _ in packed] == [(n, str(p)) for n, p in enumerate(paths, 1)]
    assert "Note 4: the ferry Kittiwake made crossing number 28" in packed[3][2]
    assert chats[0]["max_tokens"] == 5 * 200  # each document's share of the output
    assert "MISSME" in last_user_message(chats[1]) and '<document source="3:' not in last_user_message(chats[1])
    assert "packing: 5 document(s) in 1 request(s)" in run.stderr
    assert "prompt tokens (estimated) in 1 request(s)" in run.stderr  # the privacy line counts the packed request
    assert re.search(r"batch: 5 of 5 documents \(1 re-run alone\), 2 request\(s\)", run.stderr)


def test_packing_stops_when_the_model_ignores_the_packed_form(dsv2_home: Path, tmp_path: Path) -> None:
    """A model that answers prose to packed requests: after two useless packed requests the rest of
    the batch goes one document per request instead of paying for a third."""
    paths = write_docs(tmp_path / "notes", 25)  # three packs of at most 10
    with serve(answer=lambda body: "These documents are about ferries.") as server:
        args = ["summarize", "--each", *map(str, paths), *remote(server.url), "--pack", "--concurrency", "1"]
        run = runner.invoke(app, [*args, "--json"])  # one at a time: packs in flight are not called back
        chats = server.chats()
    assert run.exit_code == 0, run.output
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["source"] for r in records] == [str(p) for p in paths]
    assert all(r["strategy"] == "whole" for r in records)
    packed = [c for c in chats if NUMBERED.search(last_user_message(c))]
    assert len(packed) == 2 and len(chats) == 2 + 25  # two packed tries, then every document alone
    assert "packing off: the model answered none of the first 2 packed requests" in run.stderr


def test_the_cost_of_a_batch_is_reported_as_it_goes(dsv2_home: Path, tmp_path: Path) -> None:
    paths = write_docs(tmp_path / "notes", 3)
    usage = {"prompt_tokens": 100, "completion_tokens": 10}
    env = {"DSV2_PRICE_INPUT": "1.0", "DSV2_PRICE_OUTPUT": "2.0", "NO_COLOR": "1"}
    with serve(usage=lambda body: usage) as server:
        run = runner.invoke(app, ["summarize", "--each", *map(str, paths), *remote(server.url), "--json"], env=env)
    assert run.exit_code == 0, run.output
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["cost_usd"] for r in records] == [0.00012] * 3
    assert re.search(
        r"batch: 3 of 3 documents, 3 request\(s\), [\d.]+ documents/s, done in .*, \$0\.0004$", run.stderr, re.M
    )


def test_an_interrupted_batch_resumes_without_sending_a_finished_document_again(
    dsv2_home: Path, tmp_path: Path
) -> None:
    paths = write_docs(tmp_path / "notes", 8)
    out = tmp_path / "summaries"
    args = ["summarize", "--each", *map(str, paths), *remote("URL"), "--concurrency", "2", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSV2_")}
    env.update(DSV2_HOME=str(dsv2_home), NO_COLOR="1")
    with serve(delay_s=0.4) as server:
        argv = [*dsv2_cmd(), *[server.url if a == "URL" else a for a in args]]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 60
            while len(server.chats()) < 4 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 130, stderr
        assert stdout == ""  # with --out the summaries go to the folder
        first = [json.loads(line) for line in (out / "summaries.jsonl").read_text().splitlines() if line.strip()]
        assert 1 <= len(first) < 8
        sent_first = len(server.chats())
        server.delay_s = 0.0
        rerun = runner.invoke(app, [a if a != "URL" else server.url for a in args])
        assert rerun.exit_code == 0, rerun.output
        assert len(server.chats()) - sent_first == 8 - len(first)  # only what was not finished went out
        again = runner.invoke(app, [a if a != "URL" else server.url for a in args])
        assert again.exit_code == 0, again.output
        assert len(server.chats()) - sent_first == 8 - len(first)  # a third run sends nothing
    records = [json.loads(line) for line in (out / "summaries.jsonl").read_text().splitlines() if line.strip()]
    assert sorted(r["source"] for r in records) == sorted(map(str, paths))  # each document once
    assert f"{len(first)} of 8 document(s) already summarized in {out}: skipped" in rerun.stderr
    assert "0 summarized, 8 already there, 0 failed" in again.stderr
    for record in records:
        md = (out / record["file"]).read_text()
        assert md.startswith(f"# {record['source']}\n\n") and record["summary"] in md


def test_other_settings_do_not_reuse_a_folder_and_force_starts_afresh(dsv2_home: Path, tmp_path: Path) -> None:
    paths = write_docs(tmp_path / "notes", 2)
    out = tmp_path / "summaries"
    with serve() as server:
        base = ["summarize", "--each", *map(str, paths), *remote(server.url), "--out", str(out)]
        assert runner.invoke(app, base).exit_code == 0
        assert runner.invoke(app, [*base, "--style", "bullets"]).exit_code == 0  # another prompt: sent again
        assert len(server.chats()) == 4
        assert runner.invoke(app, [*base, "--force"]).exit_code == 0
        assert len(server.chats()) == 6
        bad = runner.invoke(app, ["summarize", str(paths[0]), *remote(server.url), "--out", str(out)])
    assert bad.exit_code == 2 and "go with --each" in bad.stderr
    lines = (out / "summaries.jsonl").read_text().splitlines()
    assert len(lines) == 2  # --force started the file afresh


def test_a_line_cut_off_by_a_crash_is_ignored_and_that_document_redone(tmp_path: Path) -> None:
    doc = Document("a.txt", "text", [Segment("The ferry left at nine.", Location("a.txt"))])
    folder = OutDir(tmp_path / "out", "k1")
    folder.write(doc, {"source": "a.txt", "summary": "It left at nine."})
    with (tmp_path / "out" / "summaries.jsonl").open("a") as fh:
        fh.write('{"source": "b.txt", "summ')  # the process died mid-write
    again = OutDir(tmp_path / "out", "k1")
    assert again.has(doc) and "ignored 1 unreadable line(s)" in again.notes[0]
    other = OutDir(tmp_path / "out", "k2")
    assert not other.has(doc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("### 1\nOne.\n### 2\nTwo.", {1: "One.", 2: "Two."}),
        ("## Document 1: One here.\n\n**2.** Two.\n", {1: "One here.", 2: "Two."}),
        ("### 2\nTwo.\n### 1\nOne.", {1: "One.", 2: "Two."}),  # out of order: still by number
        ("### 1\nOne.\n### 1\nAgain.\n### 3\nThree.", {1: "One.\n### 1\nAgain.", 3: "Three."}),
        ("### 1\n\n### 2\nTwo.", {2: "Two."}),  # an empty summary is no summary
        (
            "### 1\nIn 2025 revenue rose.\n3 ferries run.\n### 7\nx",
            {1: "In 2025 revenue rose.\n3 ferries run.\n### 7\nx"},
        ),
        ("Here are the summaries. 1. One. 2. Two.", {}),
    ],
)
def test_split_packed(text: str, expected: dict[int, str]) -> None:
    assert split_packed(text, 3) == expected


def test_a_summary_cut_by_the_output_limit_is_redone() -> None:
    assert split_packed("### 1\nOne.\n### 2\nTw", 2, cut_short=True) == {1: "One."}


def test_pack_groups_fill_the_room_and_keep_big_documents_alone() -> None:
    assert pack_groups([100, 100, 100, None, 100, 900, 100], 1000, 200, 10) == [[0, 1, 2], [3], [4], [5], [6]]
    assert pack_groups([10] * 7, 10_000, 50, 3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_batch_line_says_what_is_left_and_what_it_cost() -> None:
    status = BatchStatus(total=1000, done=117, skipped=10, failed=3, requests=40, cost_usd=0.0123)
    status.started -= 60.0  # 120 documents sent in a minute
    line = batch_line(status)
    assert line.startswith("batch: 130 of 1,000 documents (3 failed, 10 skipped), 40 request(s), 2.00 documents/s")
    assert line.endswith(", about 7 min 15 s left, $0.0123 so far")


def test_on_a_terminal_the_batch_bar_shows_the_cost_and_never_covers_the_summaries(
    dsv2_home: Path, tmp_path: Path
) -> None:
    from ..terminal import child_env, run_in_pty

    paths = write_docs(tmp_path / "notes", 4)
    env = {**child_env(), "DSV2_PRICE_INPUT": "1.0", "DSV2_PRICE_OUTPUT": "2.0"}
    usage = {"prompt_tokens": 100, "completion_tokens": 10}
    with serve(delay_s=0.5, usage=lambda body: usage, answer=lambda body: "Summary " + "x" * 20) as server:
        run = run_in_pty(["summarize", "--each", *map(str, paths), *remote(server.url), "--concurrency", "1"], env)
    assert run.exit_code == 0, run.text
    headings = [line for line in run.screen if line.startswith("## ")]
    assert headings == [f"## {p}" for p in paths]  # every block, in order, none drawn over
    assert run.text.count("Summary " + "x" * 20) == 4
    assert b"summarizing documents, $0.0001 so far" in run.raw  # the live bar carried the cost
    assert "summarizing documents" not in run.text  # and it was cleared at the end


def test_an_extract_batch_reports_its_progress_and_cost(dsv2_home: Path, tmp_path: Path) -> None:
    from ..extract.conftest import write_invoices

    paths = write_invoices(tmp_path / "in")
    answer = json.dumps(
        {
            "invoice_number": {"evidence": "INVOICE No. INV-2026", "value": "INV-2026"},
            "due_date": None,
            "total": None,
        }
    )
    env = {"DSV2_PRICE_INPUT": "1.0", "DSV2_PRICE_OUTPUT": "2.0", "NO_COLOR": "1"}
    usage = {"prompt_tokens": 300, "completion_tokens": 20}
    with serve(answer=lambda body: answer, usage=lambda body: usage) as server:
        args = ["extract", str(paths["a"]), str(paths["b"]), "--schema", str(paths["schema"]), *remote(server.url)]
        run = runner.invoke(app, args, env=env)
    assert run.exit_code == 0, run.output
    assert len(server.chats()) == 2
    assert re.search(r"^dsv2: batch: 2 of 2 documents, 2 request\(s\), .*done in .*, \$0\.0007$", run.stderr, re.M)


def test_an_input_is_skipped_only_when_that_input_is_done_not_another_with_the_same_text(tmp_path: Path) -> None:
    """Resuming a batch of identical texts under different names (form letters, copies): each
    input still gets its own summary file."""
    text = [Segment("The ferry left at nine.", Location("a.txt"))]
    a, b = Document("a.txt", "text", text), Document("b.txt", "text", text)
    folder = OutDir(tmp_path / "out", "k1")
    folder.write(a, {"source": "a.txt", "summary": "It left at nine."})
    again = OutDir(tmp_path / "out", "k1")
    assert again.has(a) and not again.has(b)
    edited = Document("a.txt", "text", [Segment("The ferry left at ten.", Location("a.txt"))])
    assert not again.has(edited)  # the same name with other text is summarized again
