"""Map-reduce: every page reaches one chunk, in order and within budget; a real run reduces to one summary."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.sources.base import Document, Location, Segment
from dsv2cli.strategies.map_reduce import MapReduce
from dsv2cli.tokens import Tokenizer

runner = CliRunner()


def page_doc(pages: int, words_per_page: int) -> Document:
    segs = [
        Segment(" ".join(f"p{n}w{i}" for i in range(words_per_page)), Location("r.pdf", page=n))
        for n in range(1, pages + 1)
    ]
    return Document("r.pdf", "pdf", segs)


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
