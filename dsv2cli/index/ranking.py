"""Rank chunks for a question: BM25, dense similarity, or both fused.

Fusion is weighted reciprocal rank fusion: ``w_bm25 / (k + rank_bm25) + w_dense / (k + rank_dense)``.
Plain RRF (equal weights, k=60) recalled less than BM25 alone at an 8k window on code questions
(0.65 vs 0.75: the answer's line inside the packed context, 20 questions over five Python
packages); bench/retrieval.py measured the weights chosen here (see DEFAULT_FUSION).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .bm25 import BM25, BM25Doc
from .store import StoredChunk


@dataclass(frozen=True)
class Fusion:
    k: float = 60.0
    bm25_weight: float = 1.0
    dense_weight: float = 1.0


# bench/retrieval.py on rich (100 files, 899 chunks, 30 questions), recall at 4k / 8k / 32k:
# BM25 0.83/0.87/1.00, dense 0.73/0.83/0.83, plain RRF 0.73/0.87/0.97, this 0.87/0.93/1.00.
DEFAULT_FUSION = Fusion(k=20.0, bm25_weight=3.0, dense_weight=1.0)

# Paged documents (PDF filings, reports) favour the dense ranking instead: their questions name a
# figure in other words than the statement prints it ("effective tax rate", "COGS"). Measured by
# bench/financebench_recall.py on the tuning half only (29 questions over 40 public 10-K/10-Q
# filings), gold page inside the context at 8k / 32k: DEFAULT_FUSION 0.69/0.93, k60 1:1 0.76/0.97,
# k20 1:2 0.76/0.97, this 0.83/0.97.
PAGES_FUSION = Fusion(k=60.0, bm25_weight=1.0, dense_weight=2.0)


def default_fusion(chunks: Sequence[StoredChunk]) -> Fusion:
    """PAGES_FUSION when most chunks come from pages (a PDF corpus), else DEFAULT_FUSION."""
    paged = sum(1 for c in chunks if c.location.page is not None)
    return PAGES_FUSION if chunks and paged * 2 > len(chunks) else DEFAULT_FUSION


@dataclass(frozen=True)
class ScoredChunk:
    chunk: StoredChunk
    score: float
    bm25_rank: int | None = None  # 1-based; None when BM25 found no shared term
    dense_rank: int | None = None


def bm25_index(chunks: Sequence[StoredChunk]) -> BM25:
    return BM25([BM25Doc(c.index_text, c.path, c.symbol) for c in chunks])


def rank(
    chunks: Sequence[StoredChunk],
    question: str,
    *,
    dense: Mapping[str, float] | None = None,
    index: BM25 | None = None,
    fusion: Fusion = DEFAULT_FUSION,
    method: str = "hybrid",
) -> list[ScoredChunk]:
    """Chunks best first. ``dense`` maps chunk hash → similarity (from the vector store).

    ``method``: "bm25", "dense" or "hybrid" (hybrid with no dense scores is BM25 alone).
    Chunks neither ranking found are left out.
    """
    if method not in ("bm25", "dense", "hybrid"):
        raise ValueError(f"unknown ranking method {method!r}")
    bm25_ranks: dict[int, int] = {}
    if method != "dense":
        scores = (index or bm25_index(chunks)).scores(question)
        ordered = sorted(scores, key=lambda i: (-scores[i], i))
        bm25_ranks = {i: r for r, i in enumerate(ordered, 1)}
    dense_ranks: dict[int, int] = {}
    if method != "bm25" and dense:
        by_hash: dict[str, list[int]] = {}
        for i, chunk in enumerate(chunks):
            by_hash.setdefault(chunk.hash, []).append(i)
        ordered_hashes = sorted(dense, key=lambda h: -dense[h])
        position = 0
        for h in ordered_hashes:
            for i in by_hash.get(h, ()):
                position += 1
                dense_ranks[i] = position

    result: list[ScoredChunk] = []
    for i in set(bm25_ranks) | set(dense_ranks):
        b = bm25_ranks.get(i)
        d = dense_ranks.get(i)
        score = 0.0
        if b is not None:
            score += fusion.bm25_weight / (fusion.k + b)
        if d is not None:
            score += fusion.dense_weight / (fusion.k + d)
        result.append(ScoredChunk(chunks[i], score, b, d))
    result.sort(key=lambda s: (-s.score, s.chunk.path, s.chunk.ordinal))
    return result
