"""One call for ``dsv2 ask``: index the corpus (incrementally), rank, pack into the budget."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..sources.base import Document
from .embedder import Embedder, resolve_embedder
from .ranking import Fusion, ScoredChunk, default_fusion, rank
from .select import SelectedSource, pack_chunks
from .store import CorpusIndex, UpdateReport
from .vectors import DamagedStoreError, VectorStoreError, VectorStoreFactory

MIN_RECORDED_CHUNKS = 32


@dataclass
class Retrieval:
    """What retrieval chose, for the prompt and for ``--dry-run --json``."""

    sources: list[SelectedSource]
    method: str  # "hybrid" or "bm25" (no embedder)
    context_tokens: int
    candidates: int  # chunks in the index
    update: UpdateReport
    notices: list[str] = field(default_factory=list)  # one line each, for the user
    # The whole ranking and the counter it was packed with: repack() fits a smaller budget
    # without indexing, embedding or ranking again.
    ranked: list[ScoredChunk] = field(default_factory=list, repr=False)
    count_tokens: Callable[[str], int] | None = field(default=None, repr=False)

    def repack(self, budget: int) -> Retrieval:
        assert self.count_tokens is not None
        sources = pack_chunks(self.ranked, budget, self.count_tokens)
        return replace(self, sources=sources, context_tokens=sum(s.tokens for s in sources))

    def to_dict(self) -> dict[str, Any]:
        return {
            "retrieval": self.method,
            "context_tokens": self.context_tokens,
            "indexed_chunks": self.candidates,
            "sources": [s.to_dict() for s in self.sources],
            "notices": self.notices,
        }


def open_index(home: Path, corpus: Sequence[str | Path], vectors: VectorStoreFactory | None = None) -> CorpusIndex:
    """The index of the corpus named by its input paths (files and directories, as given on the
    command line): for ``dsv2 index status|rebuild|drop`` and for :func:`retrieve`. ``vectors``:
    where a new index keeps its vectors (an index server, ``server.server_from``; None: embedded)."""
    return CorpusIndex(home, [Path(p) for p in corpus], vectors=vectors)


def retrieve(
    question: str,
    documents: Sequence[Document],
    *,
    corpus: Sequence[str | Path],
    home: Path,
    budget: int,
    count_tokens: Callable[[str], int],
    embed_model: str | Path | None = None,
    embedder: Embedder | None = None,
    threads: int | None = None,
    gpu_layers: int | None = None,
    fusion: Fusion | None = None,
    progress: Callable[[int, int], None] | None = None,
    vectors: VectorStoreFactory | None = None,
) -> Retrieval:
    """Update the corpus index, rank its chunks for ``question`` and pack the best into ``budget``.

    ``documents`` is the whole corpus as the source layer read it (``load_inputs``); ``corpus`` is
    the input paths that name it (they choose the index directory).

    ``embedder`` (an object) wins over ``embed_model`` (a GGUF path); with neither, the default
    MiniLM is used if installed, else BM25 alone and a notice says so. ``fusion``: by default
    ``ranking.default_fusion`` (dense-leaning for a paged corpus such as PDFs). ``vectors``: see
    :func:`open_index`.
    """
    notices: list[str] = []
    if embedder is None:
        choice = resolve_embedder(home, embed_model, threads=threads, gpu_layers=gpu_layers)
        embedder = choice.embedder
        if choice.notice:
            notices.append(choice.notice)
    index = open_index(home, corpus, vectors)
    try:
        report = index.update(documents, embedder, progress=progress)
    except VectorStoreError as exc:
        # The manifest (every chunk) is written before the vectors: BM25 still covers everything,
        # and the BUILDING marker left behind makes the next run finish the vectors.
        notices.append(f"{exc}: the vectors could not be updated; ranked with BM25 alone")
        report = UpdateReport(files=len(documents))
        embedder = None
    if embedder is not None:
        record_build_rate(home, embedder, threads, gpu_layers, report)
    notices += report.notices
    if report.recovered and not report.notices:
        notices.append("the index was left incomplete by an interrupted run; it has been repaired")
    chunks = index.chunks()
    dense: dict[str, float] | None = None
    method = "bm25"
    if embedder is not None and chunks and question.strip():
        try:
            try:
                dense = index.dense_scores(question, embedder)
            except DamagedStoreError as exc:  # found on reading: rebuild from the sources, then read
                notices.append(index.set_aside_damaged(exc))
                report = index.update(documents, embedder, progress=progress)
                dense = index.dense_scores(question, embedder)
        except VectorStoreError as exc:
            notices.append(f"{exc}: ranked with BM25 alone")
            dense = None
        if dense:
            method = "hybrid"
        elif dense is not None:
            notices.append("the index has no vectors for this embedder: ranked with BM25 alone")
    ranked = rank(chunks, question, dense=dense, fusion=fusion or default_fusion(chunks), method=method)
    sources = pack_chunks(ranked, budget, count_tokens)
    return Retrieval(
        sources, method, sum(s.tokens for s in sources), len(chunks), report, notices, list(ranked), count_tokens
    )


def record_build_rate(
    home: Path, embedder: Embedder, threads: int | None, gpu_layers: int | None, report: UpdateReport
) -> None:
    """An index build's chunks/s (chunking, embedding and writing), for ``dsv2 plan``'s estimate;
    builds of fewer than MIN_RECORDED_CHUNKS say too little about the rate (loading dominates)."""
    from ..parallel import default_threads
    from .embedder import record_rate

    if report.embedded < MIN_RECORDED_CHUNKS:
        return
    used = getattr(embedder, "threads", None) or threads or default_threads()
    offload = getattr(embedder, "gpu_layers", gpu_layers)  # what the embedder ran with (None: the default)
    with contextlib.suppress(OSError):  # a read-only cache directory: the answer does not depend on it
        record_rate(home, embedder.fingerprint, used, offload, report.embedded, report.seconds, "index build")
