from __future__ import annotations

from dsv2cli.index.ranking import DEFAULT_FUSION, PAGES_FUSION, default_fusion, rank
from dsv2cli.index.store import StoredChunk
from dsv2cli.sources.base import Location


def page_chunk(name: str, text: str, page: int) -> StoredChunk:
    return StoredChunk(name, text, Location("report.pdf", page=page), 0)


def line_chunk(name: str, text: str) -> StoredChunk:
    return StoredChunk(name, text, Location("app.py", line_start=1, line_end=1), 0)


def test_a_paged_corpus_gets_the_dense_leaning_fusion_and_code_keeps_the_default() -> None:
    pages = [page_chunk(f"p{i}", "text", i) for i in range(1, 4)]
    lines = [line_chunk(f"l{i}", "text") for i in range(3)]
    assert default_fusion(pages) == PAGES_FUSION
    assert default_fusion(lines) == DEFAULT_FUSION
    assert default_fusion(pages[:1] + lines) == DEFAULT_FUSION  # most chunks are not from pages
    assert default_fusion([]) == DEFAULT_FUSION


def test_on_pages_the_dense_first_chunk_wins_where_bm25_would_win_on_code() -> None:
    # BM25 ranks A first (the question's words twice), dense ranks B first.
    a_text, b_text = "effective tax rate effective tax rate", "effective tax rate and income"
    dense = {"A": 0.1, "B": 0.9}
    question = "effective tax rate"
    paged = [page_chunk("A", a_text, 10), page_chunk("B", b_text, 55)]
    coded = [line_chunk("A", a_text), line_chunk("B", b_text)]
    assert [s.chunk.hash for s in rank(paged, question, dense=dense, fusion=default_fusion(paged))] == ["B", "A"]
    assert [s.chunk.hash for s in rank(coded, question, dense=dense, fusion=default_fusion(coded))] == ["A", "B"]
