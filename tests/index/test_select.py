from __future__ import annotations

from dsv2cli.index.ranking import ScoredChunk
from dsv2cli.index.select import pack_chunks
from dsv2cli.index.store import StoredChunk
from dsv2cli.sources.base import Location


def tokens(text: str) -> int:
    return len(text.split())


def line_chunk(path: str, start: int, lines: list[str], ordinal: int = 0) -> StoredChunk:
    text = "\n".join(lines[start - 1 : start - 1 + 10])
    end = start + len(text.split("\n")) - 1
    return StoredChunk(f"{path}{start}", text, Location(path, line_start=start, line_end=end), ordinal)


FILE = [f"line {n} word word" for n in range(1, 101)]


def test_best_chunks_fill_the_budget_and_come_back_in_source_order() -> None:
    chunks = [line_chunk("b.py", 41, FILE), line_chunk("a.py", 1, FILE), line_chunk("b.py", 1, FILE)]
    ranked = [ScoredChunk(c, 1.0 / (i + 1)) for i, c in enumerate(chunks)]
    selected = pack_chunks(ranked, budget=90, count_tokens=tokens)
    assert [s.cite() for s in selected] == ["a.py:1-10", "b.py:41-50"]  # the third did not fit
    assert sum(s.tokens for s in selected) <= 90
    assert selected[1].score == 1.0


def test_overlapping_and_adjacent_chunks_of_one_file_merge_into_one_span() -> None:
    chunks = [line_chunk("a.py", 1, FILE), line_chunk("a.py", 6, FILE), line_chunk("a.py", 16, FILE)]
    selected = pack_chunks([ScoredChunk(c, 1.0) for c in chunks], budget=1000, count_tokens=tokens)
    assert [s.cite() for s in selected] == ["a.py:1-25"]
    assert selected[0].text == "\n".join(FILE[0:25])


def test_chunks_of_one_page_become_one_source() -> None:
    a = StoredChunk("h1", "first part", Location("r.pdf", page=3), 4)
    b = StoredChunk("h2", "second part", Location("r.pdf", page=3), 5)
    selected = pack_chunks([ScoredChunk(b, 2.0), ScoredChunk(a, 1.0)], budget=100, count_tokens=tokens)
    assert len(selected) == 1
    assert selected[0].text == "first part\n\nsecond part"
    assert selected[0].to_dict()["page"] == 3
