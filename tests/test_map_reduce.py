"""Map-reduce: chunking is in order, complete and within budget; a real run reduces to one summary."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.sources.base import Document, Location, Segment
from dsv2cli.strategies.map_reduce import MapReduce, Piece, piece_tokens, plan_chunks, split_counted, split_segment
from dsv2cli.tokens import Tokenizer

runner = CliRunner()


def words(text: str) -> int:
    return len(text.split())


def page_doc(pages: int, words_per_page: int) -> Document:
    segs = [
        Segment(" ".join(f"p{n}w{i}" for i in range(words_per_page)), Location("r.pdf", page=n))
        for n in range(1, pages + 1)
    ]
    return Document("r.pdf", "pdf", segs)


@pytest.mark.parametrize(
    ("tokens", "budget", "expected"),
    [
        ([10, 10, 10], 100, [[0, 1, 2]]),
        ([40, 40, 40], 100, [[0], [1], [2]]),  # each chunk also pays for its document header
        ([20, 20, 20, 20], 80, None),
    ],
)
def test_plan_chunks_is_greedy_and_in_order(tokens: list[int], budget: int, expected: list[list[int]] | None) -> None:
    pieces = [Piece("a", Segment(str(i), Location("a", page=i)), t, header_tokens=20) for i, t in enumerate(tokens)]
    chunks = plan_chunks(pieces, budget)
    flat = [int(p.segment.text) for c in chunks for p in c.pieces]
    assert flat == list(range(len(tokens)))  # every piece exactly once, in order
    assert all(c.tokens <= budget or len(c.pieces) == 1 for c in chunks)
    if expected is not None:
        assert [[int(p.segment.text) for p in c.pieces] for c in chunks] == expected


def test_split_segment_keeps_every_line_and_its_numbers() -> None:
    text = "\n".join(f"line {i} " + "word " * 5 for i in range(1, 41))
    seg = Segment(text, Location("notes.txt", line_start=1, line_end=40))
    parts = split_segment(seg, 30, words)
    assert len(parts) > 1
    assert all(words(p.text) <= 30 for p in parts)
    assert "\n".join(p.text for p in parts).split() == text.split()
    assert parts[0].location.line_start == 1 and parts[-1].location.line_end == 40
    for before, after in itertools.pairwise(parts):
        assert after.location.line_start == before.location.line_end + 1  # type: ignore[operator]


def test_split_segment_handles_one_enormous_line() -> None:
    seg = Segment("x" * 5000, Location("min.js", line_start=1, line_end=1))
    parts = split_segment(seg, 100, lambda t: len(t) // 10)
    assert "".join(p.text for p in parts) == "x" * 5000
    assert all(len(p.text) // 10 <= 100 for p in parts)


def test_a_long_paragraph_is_split_with_a_few_counts_per_piece(smollm2_tokenizer: Tokenizer) -> None:
    """One count per line added made a 3,600-line file take thousands of counts of ever longer
    texts (a 47 s `summarize --dry-run` on `rich`); now a piece takes a few, doubling then halving."""
    text = "\n".join(f"    value_{i} = compute(item[{i}], scale={i % 7}.5)  # step {i}" for i in range(1, 1501))
    seg = Segment(text, Location("big.py", line_start=1, line_end=1500))
    calls: list[int] = []

    def count(t: str) -> int:
        calls.append(1)
        return smollm2_tokenizer.count(t)

    parts = split_counted(seg, 3000, count, numbered=True)
    assert len(parts) > 10
    assert [line for p, _ in parts for line in p.text.split("\n")] == text.split("\n")
    for piece, tokens in parts:  # the tokens reported are the piece's own, and within the limit
        assert tokens == piece_tokens(piece, smollm2_tokenizer.count, numbered=True) <= 3000
    assert len(calls) <= 16 * len(parts)  # one count per line added would be ~1,500


def test_every_page_reaches_exactly_one_chunk(smollm2: Path, smollm2_tokenizer: Tokenizer) -> None:
    doc = page_doc(pages=30, words_per_page=120)
    mr = MapReduce(smollm2_tokenizer, "llama", None, "sys", "{{ document }}\nSummarize.", window=1024, max_tokens=64)
    chunks = mr.chunks([doc])
    pages = [p.segment.location.page for c in chunks for p in c.pieces]
    assert sorted(set(pages)) == list(range(1, 31))
    # a page split into pieces appears in consecutive pieces only; text is never repeated
    joined = " ".join(p.segment.text for c in chunks for p in c.pieces)
    assert joined.split() == doc.text.split()
    assert len(chunks) > 3


def test_markdown_chunks_cover_every_line_once(tmp_path: Path) -> None:
    sections = [
        f"## Section {n}\n\n" + f"Harbor Light ran {n * 7} crossings to island {n} this week. " * 12
        for n in range(1, 9)
    ]
    doc = tmp_path / "long.md"
    doc.write_text("\n\n".join(sections))
    dry = runner.invoke(app, ["summarize", str(doc), "--ctx", "1024", "--max-tokens", "48", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["strategy"] == "map-reduce" and plan["chunks"] >= 2
    lines = sorted((s["line_start"], s["line_end"]) for s in plan["sources"])
    assert lines[0][0] == 1 and lines[-1][1] == doc.read_text().count("\n") + 1
    for (_, end), (start, _) in itertools.pairwise(lines):
        assert start > end  # no line in two chunks


@pytest.mark.slow
def test_map_reduce_on_a_multi_page_pdf(tmp_path: Path) -> None:
    """A real PDF over a small --ctx: every page reaches exactly one chunk; the run reduces to one summary."""
    from .sources.pdfs import write_pdf

    pages = [
        f"PAGEMARK{n:02d}. " + f"On page {n} the Kessel ferry board reviewed route {n} and its fares. " * 9
        for n in range(1, 13)
    ]
    pdf = write_pdf(tmp_path / "board-minutes.pdf", pages)
    args = ["summarize", str(pdf), "--ctx", "1024", "--max-tokens", "32", "--temperature", "0"]
    shown = runner.invoke(app, [*args, "--dry-run"])
    assert shown.exit_code == 0, shown.output
    for n in range(1, 13):
        assert shown.stdout.count(f"PAGEMARK{n:02d}") == 1  # no page dropped, none repeated
    plan = json.loads(runner.invoke(app, [*args, "--dry-run", "--json"]).stdout)
    assert plan["strategy"] == "map-reduce"
    assert sorted({s["page"] for s in plan["sources"]}) == list(range(1, 13))
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["strategy"] == "map-reduce" and payload["summary"]
    assert len(payload["chunks"]) == plan["chunks"] >= 2
    assert payload["calls"] >= plan["chunks"] + 1  # a map call per chunk, then the final pass
    assert " p. " in payload["chunks"][0]["source"]
