"""Where the index keeps its vectors: a small ``VectorStore`` protocol and its chromadb implementation.

The index (``store.py``) names each vector by its chunk's content hash and keeps the vectors of one
embedder at a time; everything else about chunks lives in its manifest. So a vector store needs
only to upsert, delete, list, count and search vectors by id. A ``VectorStoreFactory`` opens the
store of one index directory and embedder, and discards an index's vectors.

``EmbeddedChroma`` (the default) keeps them in a chromadb ``PersistentClient`` under the index
directory; a chromadb server (``HttpClient``) hands out the same collections, so a factory for it
can reuse ``ChromaVectorStore``. chromadb is imported only when a store is opened.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import Dsv2Error, one_line

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection as ChromaCollection

# Records per chromadb call: chromadb refuses more than its max batch size (5461 for the embedded
# client of chromadb 1.5).
CHROMA_BATCH = 5000


class VectorStoreError(Dsv2Error):
    """The vector store failed. Retrieval goes on with BM25 alone and says so (retrieve.py)."""


class DamagedStoreError(VectorStoreError):
    """The embedded store's database cannot be read (not a database, malformed). Its vectors are
    derived data: the index moves it aside and embeds the sources again (store.py)."""


# sqlite's result codes in chromadb's messages ("error returned from database: (code: 26) file is
# not a database"): 26 SQLITE_NOTADB, 11 SQLITE_CORRUPT. Seen with chromadb 1.5.9 on a file
# overwritten with garbage, with a garbage header, and cut to a third.
_DAMAGE_MARKS = ("(code: 26)", "(code: 11)", "file is not a database", "malformed")


@contextlib.contextmanager
def chroma_errors(where: Path) -> Iterator[None]:
    """chromadb's errors from the embedded store at ``where`` as VectorStoreError / DamagedStoreError."""
    from chromadb.errors import ChromaError

    try:
        yield
    except ChromaError as exc:
        text = one_line(str(exc).strip()) or type(exc).__name__
        kind = DamagedStoreError if any(mark in text for mark in _DAMAGE_MARKS) else VectorStoreError
        raise kind(f"vector store {where}: {text[:200]}") from exc


class VectorStore(Protocol):
    """The vectors of one index for one embedder, by id. Vectors are unit length (``Embedder.embed``)."""

    def add(self, ids: Sequence[str], embeddings: Sequence[Sequence[float]]) -> None:
        """Store ``embeddings[i]`` under ``ids[i]``, replacing a vector already stored under that id."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove the vectors of ``ids``; ids not present are ignored."""
        ...

    def query(
        self, embedding: Sequence[float], n: int, *, among: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` stored vectors nearest to ``embedding``, best first, as (id, cosine similarity).

        ``among`` restricts the search to those ids (ids not present are ignored)."""
        ...

    def count(self) -> int:
        """How many vectors are stored."""
        ...

    def ids(self) -> set[str]:
        """The ids of every stored vector (to reconcile with the manifest after a crash)."""
        ...


class VectorStoreFactory(Protocol):
    """Opens the vector store of an index directory (``$DSV2_HOME/index/<corpus-id>``)."""

    def open(self, directory: Path, fingerprint: str) -> VectorStore | None:
        """The store of the embedder ``fingerprint``; None when there is none (nothing is created)."""
        ...

    def create(self, directory: Path, fingerprint: str) -> VectorStore:
        """The store of the embedder ``fingerprint``, made if missing; the vectors of any other
        embedder of this index are discarded (an index keeps one embedder's vectors)."""
        ...

    def drop(self, directory: Path) -> None:
        """Discard every vector of the index (its embedder is gone, or the index is dropped)."""
        ...


class ChromaVectorStore:
    """A ``VectorStore`` over one chromadb collection made with ``embedding_function=None`` (dsv2
    embeds; chromadb's default function would download a model) in its default space, squared L2.

    Each method runs inside :meth:`_errors`, where a subclass turns chromadb's failures into its
    own error type; the base lets them through."""

    def __init__(self, collection: ChromaCollection) -> None:
        self.collection = collection

    def _errors(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def add(self, ids: Sequence[str], embeddings: Sequence[Sequence[float]]) -> None:
        with self._errors():
            for start in range(0, len(ids), CHROMA_BATCH):
                batch = slice(start, start + CHROMA_BATCH)
                vectors: list[Sequence[float] | Sequence[int]] = list(embeddings[batch])
                self.collection.upsert(ids=list(ids[batch]), embeddings=vectors)

    def delete(self, ids: Sequence[str]) -> None:
        with self._errors():
            for start in range(0, len(ids), CHROMA_BATCH):  # chromadb refuses an empty list: no call then
                self.collection.delete(ids=list(ids[start : start + CHROMA_BATCH]))

    def query(
        self, embedding: Sequence[float], n: int, *, among: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        with self._errors():
            restrict: list[str] | None = None
            if among is not None:
                # chromadb fails the whole query when a restricting id is not stored, and refuses an
                # empty list of ids
                restrict = self.collection.get(ids=list(among), include=[])["ids"] if among else []
                n = min(n, len(restrict))
            if n <= 0:
                return []
            queries: list[Sequence[float] | Sequence[int]] = [embedding]
            result = self.collection.query(query_embeddings=queries, n_results=n, ids=restrict, include=["distances"])
            distances = result["distances"]
            assert distances is not None  # asked for in include
            # for unit vectors, squared L2 distance d = 2 - 2 cos, so cos = 1 - d/2
            return [(i, 1.0 - float(d) / 2.0) for i, d in zip(result["ids"][0], distances[0], strict=True)]

    def count(self) -> int:
        with self._errors():
            return self.collection.count()

    def ids(self) -> set[str]:
        with self._errors():
            return set(self.collection.get(include=[])["ids"])


class EmbeddedVectorStore(ChromaVectorStore):
    """``ChromaVectorStore`` of the embedded client; chromadb's failures as VectorStoreError or
    DamagedStoreError (the index server wraps them its own way: server.py)."""

    def __init__(self, collection: ChromaCollection, where: Path) -> None:
        super().__init__(collection)
        self.where = where

    def _errors(self) -> AbstractContextManager[None]:
        return chroma_errors(self.where)


@dataclass(frozen=True)
class EmbeddedChroma:
    """The default ``VectorStoreFactory``: a chromadb ``PersistentClient`` in ``<index>/chroma``,
    one collection per embedder fingerprint, telemetry off (nothing leaves the machine)."""

    subdirectory: str = "chroma"

    def open(self, directory: Path, fingerprint: str) -> EmbeddedVectorStore | None:
        from chromadb.errors import NotFoundError

        where = directory / self.subdirectory
        if not where.is_dir():
            return None  # never made: nothing to open (and nothing is created)
        with chroma_errors(where):
            client = self._client(directory)
            try:
                collection = client.get_collection(collection_name(fingerprint), embedding_function=None)
            except NotFoundError:
                return None
        return EmbeddedVectorStore(collection, where)

    def create(self, directory: Path, fingerprint: str) -> EmbeddedVectorStore:
        where = directory / self.subdirectory
        name = collection_name(fingerprint)
        with chroma_errors(where):
            client = self._client(directory)
            for existing in client.list_collections():
                other = existing if isinstance(existing, str) else existing.name
                if other != name:
                    client.delete_collection(other)  # vectors of an embedder no longer in use
            collection = client.get_or_create_collection(name, embedding_function=None)
        return EmbeddedVectorStore(collection, where)

    def set_aside(self, directory: Path) -> Path | None:
        """Move a damaged store out of the way (to ``chroma.damaged``, replacing an older one), so
        the next ``create`` starts empty; where it went, or None when there was none."""
        path = directory / self.subdirectory
        if not path.exists():
            return None
        target = directory / f"{self.subdirectory}.damaged"
        shutil.rmtree(target, ignore_errors=True)
        try:
            path.rename(target)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
            target = path
        forget_chroma_clients()
        return target

    def drop(self, directory: Path) -> None:
        path = directory / self.subdirectory
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            forget_chroma_clients()

    def _client(self, directory: Path) -> ClientAPI:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        return chromadb.PersistentClient(
            path=str(directory / self.subdirectory),
            settings=ChromaSettings(anonymized_telemetry=False),
        )


def collection_name(fingerprint: str) -> str:
    """The chromadb collection of an embedder's vectors (as dsv2 has always named it, so existing
    indexes stay readable)."""
    return f"vectors-{fingerprint}"[:60]


def forget_chroma_clients() -> None:
    """chromadb caches one client per path in-process; forget them after deleting files under it."""
    if "chromadb" in sys.modules:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
