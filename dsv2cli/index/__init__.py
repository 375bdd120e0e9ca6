"""Retrieval over corpora larger than the window: chunking, BM25 + dense ranking, a persistent
chromadb index per corpus, and greedy packing into a token budget.

Nothing here prints; chromadb and llama_cpp are imported only when an index or embedder is used.
"""

from __future__ import annotations

from .chunking import Chunk, chunk_document
from .embedder import Embedder, EmbedderChoice, LlamaEmbedder, default_model_path, resolve_embedder
from .ranking import DEFAULT_FUSION, Fusion, ScoredChunk, rank
from .retrieve import Retrieval, open_index, record_build_rate, retrieve
from .select import SelectedSource, pack_chunks
from .store import (
    CorpusIndex,
    IndexBusyError,
    IndexStatus,
    StoredChunk,
    UpdateReport,
    corpus_id,
    list_indexes,
    status_of,
)
from .vectors import ChromaVectorStore, EmbeddedChroma, VectorStore, VectorStoreFactory

__all__ = [
    "DEFAULT_FUSION",
    "ChromaVectorStore",
    "Chunk",
    "CorpusIndex",
    "EmbeddedChroma",
    "Embedder",
    "EmbedderChoice",
    "Fusion",
    "IndexBusyError",
    "IndexStatus",
    "LlamaEmbedder",
    "Retrieval",
    "ScoredChunk",
    "SelectedSource",
    "StoredChunk",
    "UpdateReport",
    "VectorStore",
    "VectorStoreFactory",
    "chunk_document",
    "corpus_id",
    "default_model_path",
    "list_indexes",
    "open_index",
    "pack_chunks",
    "rank",
    "record_build_rate",
    "resolve_embedder",
    "retrieve",
    "status_of",
]
